"""Generate tests/data/pii_corpus.jsonl: Faker messages in many locales plus hand-written cases.

Run: .venv/bin/python -m bench.make_pii_corpus   (deterministic: fixed seeds)

Each line is {"id", "text", "region", "locale", "source", "spans": [{"type", "start", "end"}]}.
`region` is the phone region a deployment in that locale would configure
(LEADOPS_PII_DEFAULT_REGION). Faker sometimes emits phone strings with a digit
count no country dials (e.g. "+44(0)28 9018631", "00008063608"); those are not
phone numbers and are dropped (counted in the printed summary) rather than
labelled. Hand-written hard positives and negatives come from
tests/data/pii_hard_cases.jsonl, where PII is given as (type, substring).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import phonenumbers
from faker import Faker

from bench.pii_scoring import CORPUS
from leadops.pii.checksums import luhn_valid

HARD_CASES = CORPUS.parent / "pii_hard_cases.jsonl"
MESSAGES_PER_LOCALE = 300
SEED = 20261126

# locale -> phone region of a deployment there
LOCALES = {
    "en_US": "US",
    "en_GB": "GB",
    "de_DE": "DE",
    "fr_FR": "FR",
    "es_ES": "ES",
    "it_IT": "IT",
    "nl_NL": "NL",
    "pt_BR": "BR",
    "en_IN": "IN",
    "ja_JP": "JP",
}
IBAN_LOCALES = {"en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"}
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "jcb16", "diners")

PHRASES = {
    "EMAIL": ["my email is {}", "write to {}", "contact: {}", "send the brochure to {}", "{}"],
    "PHONE": ["call me on {}", "my number is {}", "tel. {}", "reach me at {} after 5pm", "{}"],
    "CARD": ["card number {}", "charge {} please", "my card is {}", "cc: {}"],
    "SSN": ["my SSN is {}", "social security {}", "SSN: {}", "ssn {} for the form"],
    "IBAN": ["IBAN {}", "pay to {}", "account IBAN: {}", "transfer to IBAN {} thanks"],
    "IP": ["logged in from {}", "server {} is down", "client ip={}", "my VPN gives {}"],
}


def _phone(fake: Faker, region: str) -> str | None:
    raw: str = fake.phone_number()
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    full_length = phonenumbers.ValidationResult.IS_POSSIBLE
    return raw if phonenumbers.is_possible_number_with_reason(number) == full_length else None


def _card(fake: Faker, rng: random.Random) -> str:
    digits: str = fake.credit_card_number(card_type=rng.choice(CARD_TYPES))
    style = rng.random()
    if len(digits) == 16 and style < 0.5:
        sep = rng.choice(" -")
        return sep.join(digits[i : i + 4] for i in range(0, 16, 4))
    if len(digits) == 15 and style < 0.5:
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    return digits


def _iban(fake: Faker, rng: random.Random) -> str:
    compact: str = fake.iban()
    if rng.random() < 0.5:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def _ip(fake: Faker, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return str(fake.ipv4_public())
    if kind < 0.6:
        return str(fake.ipv4_private())
    return str(fake.ipv6())


def _email(fake: Faker, rng: random.Random) -> str:
    address: str = rng.choice([fake.email, fake.free_email, fake.company_email])()
    if rng.random() < 0.1:
        user, domain = address.split("@")
        address = f"{user}+leads@{domain}"
    return address


def _luhn_invalid_run(rng: random.Random) -> str:
    while True:
        digits = str(rng.choice("3456")) + "".join(str(rng.randrange(10)) for _ in range(15))
        if not luhn_valid(digits):
            return digits


def _negative(fake: Faker, rng: random.Random) -> str:
    """Look-alikes the detector must leave alone."""
    makers = [
        lambda: f"order #{rng.randrange(10**5, 10**10)}",
        lambda: f"Order number {rng.randrange(10**6, 10**10)} has shipped",
        lambda: f"invoice INV-{rng.randrange(10**4, 10**8)}",
        lambda: f"ticket {rng.randrange(10**6, 10**9)}",
        lambda: f"on {fake.date()}",
        lambda: f"on {fake.date(pattern='%d/%m/%Y')}",
        lambda: f"on {fake.date(pattern='%d.%m.%Y')}",
        lambda: f"at {fake.time(pattern='%H:%M')}",
        lambda: f"at {fake.time()}",
        lambda: f"updated {fake.iso8601()}",
        lambda: f"for ${rng.randrange(1, 10**6):,}.{rng.randrange(100):02d}",
        lambda: f"costs {rng.randrange(1, 10**5)},{rng.randrange(100):02d} EUR",
        lambda: f"version {rng.randrange(10)}.{rng.randrange(30)}.{rng.randrange(100)}",
        lambda: f"v{rng.randrange(10)}.{rng.randrange(30)}.{rng.randrange(100)}.{rng.randrange(9)}",
        lambda: f"zip {fake.postcode()}",
        lambda: f"code {_luhn_invalid_run(rng)}",
        lambda: f"{rng.randrange(2, 40)} students, {rng.randrange(1, 12)} courses",
        lambda: f"unix time {rng.randrange(1_500_000_000, 1_900_000_000)}",
    ]
    return rng.choice(makers)()


def _message(fake: Faker, us_fake: Faker, rng: random.Random, locale: str, region: str) -> Any:
    parts: list[tuple[str | None, str, str]] = []  # (type, template, value)
    n_pii = rng.choices([0, 1, 2], weights=[35, 45, 20])[0]
    kinds = ["EMAIL", "PHONE", "CARD", "SSN", "IP"] + (["IBAN"] if locale in IBAN_LOCALES else [])
    for _ in range(n_pii):
        kind = rng.choice(kinds)
        value: str | None
        if kind == "EMAIL":
            value = _email(fake, rng)
        elif kind == "PHONE":
            value = _phone(fake, region)
        elif kind == "CARD":
            value = _card(us_fake, rng)
        elif kind == "SSN":
            value = us_fake.ssn()
        elif kind == "IBAN":
            value = _iban(fake, rng)
        else:
            value = _ip(fake, rng)
        if value is None:
            return None
        parts.append((kind, rng.choice(PHRASES[kind]), value))
    for _ in range(rng.choice([0, 1, 1, 2])):
        parts.append((None, "{}", _negative(fake, rng)))
    rng.shuffle(parts)
    text = fake.sentence()
    spans = []
    for piece_kind, template, piece in parts:
        before, after = template.split("{}")
        text += " " + before
        if piece_kind is not None:
            spans.append({"type": piece_kind, "start": len(text), "end": len(text) + len(piece)})
        text += piece + after + rng.choice([".", ",", "", "!"])
    return text, spans


def _hard_cases() -> list[dict[str, Any]]:
    records = []
    with HARD_CASES.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("//"):
                continue
            case = json.loads(line)
            text: str = case["text"]
            spans = []
            for kind, value in case.get("pii", []):
                start = text.index(value)
                spans.append({"type": kind, "start": start, "end": start + len(value)})
            records.append(
                {
                    "id": f"hard-{number}",
                    "text": text,
                    "region": case.get("region", "US"),
                    "locale": "hand",
                    "source": "hard",
                    "spans": spans,
                    **({"note": case["note"]} if "note" in case else {}),
                }
            )
    return records


def main() -> None:
    rng = random.Random(SEED)
    records: list[dict[str, Any]] = []
    dropped = Counter[str]()
    for locale, region in LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(2**32))
        us_fake = Faker("en_US")
        us_fake.seed_instance(rng.randrange(2**32))
        made = 0
        while made < MESSAGES_PER_LOCALE:
            message = _message(fake, us_fake, rng, locale, region)
            if message is None:
                dropped[locale] += 1
                continue
            text, spans = message
            records.append(
                {
                    "id": f"{locale}-{made}",
                    "text": text,
                    "region": region,
                    "locale": locale,
                    "source": "faker",
                    "spans": spans,
                }
            )
            made += 1
    records += _hard_cases()
    with CORPUS.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    kinds = Counter(span["type"] for record in records for span in record["spans"])
    print(f"wrote {len(records)} messages to {CORPUS}: {dict(kinds)}")
    print(f"messages dropped for impossible Faker phone numbers: {dict(dropped)}")


if __name__ == "__main__":
    main()
