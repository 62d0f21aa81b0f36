"""`leadops synth`: realistic synthetic leads with a known conversion probability.

Each lead gets a name, an international phone number (valid for its country, or sometimes
missing or junk), an email (free, business or education mailbox), a source, a tenant, a
timestamp, attributes (company size, budget, industry with "Select" placeholders, pages viewed)
and free-text details carrying intent signals and sometimes contact data. The conversion
probability is an explicit logistic function of what ends up in the lead's row, so a model can
learn it; the labels are drawn from it, and the AUC of the true probabilities on those labels
(the best any model can do on this draw) is reported on stderr and in `--truth`.

`--drift D` moves the lead mix (sources, company sizes, intent, industries) by D "units"
without changing how a given lead converts: covariate drift for the drift score to find.

Formats: `csv` = outcome rows (lead_id, the canonical row of each lead, `converted` last), as
the scorer's /ops/export/outcomes.csv; `jsonl` = one Lead JSON object per line plus
`converted`, to POST to the scorer.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt
import phonenumbers

from leadops import cliutil
from leadops.contract import quality
from leadops.contract.columns import LABEL_COLUMN
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row

START: Final = datetime(2026, 1, 5, tzinfo=UTC)
DAYS: Final = 90

FIRST: Final = [
    "Aisha",
    "Akira",
    "Ana",
    "Andrea",
    "Arjun",
    "Ben",
    "Camille",
    "Carlos",
    "Chen",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Emma",
    "Fatima",
    "Felix",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jakob",
    "James",
    "Jin",
    "Julia",
    "Kofi",
    "Lars",
    "Laura",
    "Leila",
    "Liam",
    "Lucas",
    "Maya",
    "Mateo",
    "Mei",
    "Mohammed",
    "Nadia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Rafael",
    "Rosa",
    "Sakura",
    "Sofia",
    "Tomas",
    "Yusuf",
    "Zara",
]
LAST: Final = [
    "Adeyemi",
    "Andersson",
    "Bauer",
    "Chen",
    "Costa",
    "Dubois",
    "Fischer",
    "Garcia",
    "Gonzalez",
    "Haddad",
    "Hansen",
    "Ito",
    "Jones",
    "Kim",
    "Kowalski",
    "Kumar",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Muller",
    "Nakamura",
    "Novak",
    "Okafor",
    "Patel",
    "Petrov",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Wang",
    "Weber",
    "Williams",
    "Yilmaz",
]
REGIONS: Final = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "NG", "MX", "CA", "ES")
REGION_P: Final = (0.22, 0.14, 0.1, 0.07, 0.12, 0.06, 0.05, 0.05, 0.05, 0.05, 0.05, 0.04)
REGION_EFFECT: Final = (0.2, 0.2, 0.3, 0.0, -0.3, -0.2, 0.2, 0.1, -0.4, -0.2, 0.2, 0.0)
SOURCES: Final = (
    "web_form",
    "referral",
    "google_ads",
    "linkedin",
    "partner",
    "cold_call",
    "facebook",
)
SOURCE_P: Final = (0.3, 0.1, 0.2, 0.1, 0.08, 0.1, 0.12)
SOURCE_EFFECT: Final = (0.3, 1.0, 0.0, 0.3, 0.6, -0.9, -0.5)
SOURCE_DRIFT: Final = (-0.8, -0.8, 0.0, 0.0, -0.8, 2.2, 2.2)  # drift favours cold/social leads
TENANTS: Final = ("acme", "globex", "initech", "umbrella")
TENANT_P: Final = (0.4, 0.3, 0.2, 0.1)
TENANT_EFFECT: Final = (0.2, 0.0, -0.3, 0.1)
INDUSTRIES: Final = ("Software", "Retail", "Finance", "Healthcare", "Education", "Manufacturing")
INDUSTRY_EFFECT: Final = (0.5, 0.0, 0.3, 0.1, -0.6, -0.1)
INDUSTRY_P: Final = (0.22, 0.2, 0.15, 0.15, 0.13, 0.15)
INDUSTRY_DRIFT: Final = (-0.8, 0.0, 0.0, 0.0, 1.5, 0.5)
FREE_MAIL: Final = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "icloud.com")
COMPANY_WORDS: Final = [
    "north",
    "blue",
    "apex",
    "quant",
    "nova",
    "delta",
    "green",
    "pixel",
    "atlas",
    "orbit",
    "crest",
]
TLDS: Final = ("com", "io", "de", "co.uk", "fr", "in", "com.br")

# Intent levels: what the details say, and how much that moves the odds.
HIGH: Final = (
    "We are ready to buy, please send a quote for {n} seats.",
    "Need pricing for {n} licenses asap, budget is approved.",
    "Can we book a demo this week? We want to sign before the quarter ends.",
    "Our team wants to purchase the annual plan, please send the contract.",
    "Looking to order {n} seats, what is the price with onboarding?",
)
MEDIUM: Final = (
    "Comparing a few vendors, does it integrate with our CRM?",
    "How does onboarding work for a team of {n}?",
    "Interested in the product, can you share a case study?",
    "What support plans do you offer?",
    "Could someone explain the reporting features?",
)
LOW: Final = (
    "Just browsing for now, maybe later.",
    "Student here, researching tools for a class project.",
    "Curious what this does, no budget at the moment.",
    "Saw an ad, not sure this is for us.",
    "Please unsubscribe me from the newsletter.",
)
INTENT_EFFECT: Final = (1.4, 0.2, -1.3)
INTENT_P: Final = (0.25, 0.4, 0.35)
INTENT_DRIFT: Final = (-0.9, 0.0, 1.2)
BASE_LOGIT: Final = -1.55


@dataclass(frozen=True)
class Drawn:
    """One synthetic lead, its true conversion probability and drawn outcome."""

    lead_id: str
    lead: Lead
    probability: float
    converted: int


def _phone_pool(rng: np.random.Generator, size: int = 60) -> dict[str, list[str]]:
    """Valid mobile numbers per region: the example number with its last digits varied."""
    pool: dict[str, list[str]] = {}
    for region in REGIONS:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        assert example is not None, region  # phonenumbers ships an example for every region
        numbers: list[str] = []
        attempts = 0
        while len(numbers) < size and attempts < size * 20:
            attempts += 1
            national = str(example.national_number)
            tail = "".join(str(d) for d in rng.integers(0, 10, 4))
            candidate = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=int(national[:-4] + tail)
            )
            if phonenumbers.is_valid_number(candidate):
                numbers.append(
                    phonenumbers.format_number(
                        candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL
                    )
                )
        pool[region] = numbers or [
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        ]
    return pool


def _shifted(p: Sequence[float], shift: Sequence[float], drift: float) -> npt.NDArray[np.float64]:
    weights = np.asarray(p, dtype=np.float64) * np.exp(np.asarray(shift) * drift)
    shares: npt.NDArray[np.float64] = weights / weights.sum()
    return shares


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    """One item, uniformly (rng.choice is ~20x slower per call)."""
    return items[int(rng.integers(len(items)))]


def _phone(rng: np.random.Generator, numbers: Sequence[str], region: int) -> tuple[str, float]:
    roll = rng.random()
    if roll < 0.08:
        return "", -0.3
    if roll < 0.12:
        return _pick(rng, ("555", "12345", "000000", "n/a")), -0.4
    return _pick(rng, numbers), REGION_EFFECT[region]


def _email(rng: np.random.Generator, first: str, last: str) -> tuple[str, float]:
    roll = rng.random()
    if roll < 0.12:
        return "", -0.2
    if roll < 0.55:
        return f"{first}.{last}{int(rng.integers(1, 99))}@{_pick(rng, FREE_MAIL)}".lower(), 0.0
    if roll < 0.62:
        return f"{first[0]}{last}@uni{int(rng.integers(1, 40))}.edu".lower(), -0.6
    company = f"{_pick(rng, COMPANY_WORDS)}{_pick(rng, COMPANY_WORDS)}"
    return f"{first}.{last}@{company}.{_pick(rng, TLDS)}".lower(), 0.5


def _attributes(
    rng: np.random.Generator, *, intent: int, drift: float, industry_p: npt.NDArray[np.float64]
) -> tuple[dict[str, str | float], float]:
    attributes: dict[str, str | float] = {}
    logit = 0.0
    log_size = rng.normal(3.5 - 1.2 * drift, 1.4)
    if rng.random() > 0.1:
        attributes["company_size"] = float(max(1, round(math.exp(log_size))))
        logit += 0.35 * (log_size - 3.5) / 1.4
    if rng.random() > 0.25:
        budget = math.exp(7.5 + 0.5 * (log_size - 3.5) + rng.normal(0, 0.8))
        attributes["budget"] = round(budget, 2)
        logit += 0.3 * (math.log(budget) - 7.5)
    roll = rng.random()
    if roll < 0.08:
        attributes["industry"] = "Select"  # the web form's untouched drop-down
    elif roll < 0.93:
        industry = int(np.searchsorted(industry_p, rng.random()))
        attributes["industry"] = INDUSTRIES[industry]
        logit += INDUSTRY_EFFECT[industry]
    pages = int(rng.poisson(max(0.5, 2.0 + 2.0 * (2 - intent) - 0.8 * drift)))
    attributes["pages_viewed"] = float(pages)
    return attributes, logit + 0.08 * min(pages, 12)


def _details(
    rng: np.random.Generator, *, intent: int, phone: str, email: str, name: str
) -> tuple[str, float]:
    template = _pick(rng, (HIGH, MEDIUM, LOW)[intent])
    details = template.format(n=int(rng.integers(2, 200)))
    logit = 0.0
    roll = rng.random()
    if roll < 0.15 and len(phone) > 6:
        details += f" Call me on {phone}."
        logit += 0.3
    elif roll < 0.25 and email:
        details += f" Reach me at {email}."
        logit += 0.3
    if name and rng.random() < 0.3:
        details = f"Hi, I'm {name}. " + details
    return details, logit


def generate(n: int, *, seed: int = 7, drift: float = 0.0) -> list[Drawn]:
    """n leads in time order, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    pool = _phone_pool(rng)
    source_p = _shifted(SOURCE_P, SOURCE_DRIFT, drift)
    intent_p = _shifted(INTENT_P, INTENT_DRIFT, drift)
    industry_p = np.cumsum(_shifted(INDUSTRY_P, INDUSTRY_DRIFT, drift))
    offsets = np.sort(rng.uniform(0, DAYS * 86400, n))
    regions = rng.choice(len(REGIONS), size=n, p=REGION_P)
    sources = rng.choice(len(SOURCES), size=n, p=source_p)
    tenants = rng.choice(len(TENANTS), size=n, p=TENANT_P)
    intents = rng.choice(3, size=n, p=intent_p)
    out: list[Drawn] = []
    for i in range(n):
        region, source, tenant = int(regions[i]), int(sources[i]), int(tenants[i])
        intent = int(intents[i])
        first, last = _pick(rng, FIRST), _pick(rng, LAST)
        name = "" if rng.random() < 0.03 else f"{first} {last}"
        phone, phone_effect = _phone(rng, pool[REGIONS[region]], region)
        email, email_effect = _email(rng, first, last)
        attributes, attribute_effect = _attributes(
            rng, intent=intent, drift=drift, industry_p=industry_p
        )
        details, details_effect = _details(rng, intent=intent, phone=phone, email=email, name=name)
        logit = (
            BASE_LOGIT
            + SOURCE_EFFECT[source]
            + TENANT_EFFECT[tenant]
            + INTENT_EFFECT[intent]
            + phone_effect
            + email_effect
            + attribute_effect
            + details_effect
        )
        probability = 1.0 / (1.0 + math.exp(-logit))
        lead = Lead(
            name=name,
            phone=phone,
            email=email,
            details=details,
            source=SOURCES[source],
            tenant=TENANTS[tenant],
            chat_id=f"chat-{i}" if rng.random() < 0.5 else None,
            received_at=START + timedelta(seconds=float(offsets[i])),
            attributes=attributes,
        )
        converted = int(rng.random() < probability)
        lead_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        out.append(Drawn(lead_id, lead, probability, converted))
    return out


def achievable_auc(drawn: Sequence[Drawn]) -> float:
    """AUC of the true probabilities on the drawn labels: the ceiling for any model."""
    return quality.auc([d.converted for d in drawn], [d.probability for d in drawn])


def default_redactor() -> Callable[[str], str]:
    """The shared PII detector when this build has it."""
    from leadops import pii  # noqa: PLC0415

    redact: Callable[[str], str] | None = getattr(pii, "redact", None)
    if redact is None:
        raise cliutil.UsageError("synth: leadops.pii.redact is not available in this build")
    return redact


def write_csv(drawn: Sequence[Drawn], out: TextIO, *, redact: Callable[[str], str]) -> None:
    rows = [lead_to_row(d.lead, redact=redact) for d in drawn]
    base = list(rows[0]) if rows else []
    extra = sorted({key for row in rows for key in row} - set(base))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["lead_id", *base, *extra, LABEL_COLUMN])
    for d, row in zip(drawn, rows, strict=True):
        writer.writerow([d.lead_id, *(row.get(c, "") for c in base + extra), str(d.converted)])


def write_jsonl(drawn: Sequence[Drawn], out: TextIO) -> None:
    for d in drawn:
        record = d.lead.model_dump(mode="json", exclude_none=True)
        record[LABEL_COLUMN] = d.converted
        out.write(json.dumps(record) + "\n")


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops synth", description="Generate realistic synthetic leads with known outcomes."
    )
    parser.add_argument("--n", type=int, default=5000, help="number of leads")
    parser.add_argument("--drift", type=float, default=0.0, help="covariate drift, 0 = none")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same leads)")
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="csv: outcome rows as the scorer exports them; jsonl: leads to POST",
    )
    parser.add_argument("--output", help="file to write (default: stdout)")
    parser.add_argument("--truth", help="also write the generator's truth (JSON) here")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.n <= 2_000_000:
        return cliutil.fail("synth: --n must be between 1 and 2000000")
    if not 0.0 <= args.drift <= 5.0:
        return cliutil.fail("synth: --drift must be between 0 and 5")
    redact = default_redactor() if args.format == "csv" else None
    drawn = generate(args.n, seed=args.seed, drift=args.drift)
    buffer = io.StringIO()
    if redact is not None:
        write_csv(drawn, buffer, redact=redact)
    else:
        write_jsonl(drawn, buffer)
    if args.output:
        Path(args.output).write_text(buffer.getvalue(), encoding="utf-8")
    else:
        sys.stdout.write(buffer.getvalue())
    labels = [d.converted for d in drawn]
    both = 0 < sum(labels) < len(labels)
    auc = round(achievable_auc(drawn), 4) if both else None
    truth = {
        "n": args.n,
        "seed": args.seed,
        "drift": args.drift,
        "positive_rate": round(sum(labels) / len(labels), 4),
        "achievable_auc": auc,
        "probabilities": [round(d.probability, 6) for d in drawn],
    }
    if args.truth:
        Path(args.truth).write_text(json.dumps(truth), encoding="utf-8")
    print(
        f"synth: {args.n} leads ({args.format}), positive rate {truth['positive_rate']:.3f}, "
        f"achievable AUC {auc} (AUC of the true probabilities on the drawn labels)",
        file=sys.stderr,
    )
    return cliutil.EXIT_OK
