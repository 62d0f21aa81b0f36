"""No planted PII survives anywhere: a real scorer, a real redis-server, a generated corpus.

Leads and chat messages carry every kind of PII the detector knows (email, phone in US, UK and
international formats, card, SSN, IBAN, IP address) in every field a caller fills: name,
phone, email, details, source, attribute values (text and numbers), attribute names,
chat_id and messages, plus the hostile inputs of issue #13 (zero-width characters, dotted
cards, a lone surrogate, two numbers joined by a slash, formula-led text). Afterwards none of
the planted values may occur in any Redis key name or value (SCAN, each value read by type,
and its DUMP bytes), in the outcomes export, in /metrics, or in the server's whole DEBUG log;
and every lead the scorer accepted is stored.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = pytest.mark.redis

SEED = 13
LEADS = 160
# Planted values by kind: each is searched for verbatim in everything the scorer keeps or says.
EMAILS = [
    "zebulon.quimby@example.com",
    "JANE.DOE+crm@Example.CO.UK",
    "müller.k@beispiel.example.de",
    "a.b-c@sub.example.org",
]
PHONES = [
    "+1 415 555 2671",
    "(415) 555-2672",
    "415.555.2673",
    "+44 20 7946 0958",
    "020 7946 0959",
    "07700 900123",
    "0044 7700 900124",
    "+49 151 23456789",
]
CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444", "4111.1111.1111.1111", "378282246310005"]
OTHERS = ["123-45-6789", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "203.0.113.77"]
NAMES = ["Zebulon Quimby", "Philomena Ashcroft-Vane", "Octavius Brindlecombe"]
# Hostile forms of the values above; the detector must see through each.
HOSTILE = [
    "jane\u200b.doe\u200b@example.com",  # zero-width spaces inside an email
    "tel 415 555 2674/415 555 2675",  # two numbers, the first one used to be missed
]
PLANTED_TEXT = EMAILS + PHONES + CARDS + OTHERS + HOSTILE
# Numbers whose digits are a card or a phone number, sent as JSON numbers.
NUMERIC = [4111111111111111, 4155552676, 5555555555554444]
# Formula-led text (CSV injection). No digit right before the planted value: the detector
# misses a national number that follows a digit and a space ("A0 07700 900123"), a gap
# reported on issue #13 rather than hidden here.
FORMULAS = ['=HYPERLINK("http://x.example/?{}","go")', "+cmd|' /C calc'!A0; {}", "@SUM(A:A) {}"]


@dataclass
class Corpus:
    leads: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    planted: set[str] = field(default_factory=set)


def _digits_core(value: str) -> str | None:
    """The value's digits when long enough to be distinctive (a number written another way)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits if len(digits) >= 9 else None


def build_corpus(rng: random.Random) -> Corpus:
    corpus = Corpus()

    def pii() -> str:
        return rng.choice(PLANTED_TEXT)

    for i in range(LEADS):
        lead: dict[str, Any] = {
            "name": rng.choice([*NAMES, pii()]),
            "phone": rng.choice(PHONES),
            "email": rng.choice(EMAILS),
            "details": f"Lead {i}: reach me at {pii()} or {pii()}; budget approved",
            "source": f"web {pii()}"[:100],
            "chat_id": rng.choice([pii(), rng.choice(NAMES), f"{rng.choice(NAMES)} {pii()}"])[:100],
            "attributes": {
                "contact": f"ask for {pii()}",
                "plan": rng.choice(FORMULAS).format(pii()),
                "budget": rng.choice(NUMERIC),
                "visits": float(rng.randint(1, 30)),
                # An attribute *name* holding a phone number: never stored, never logged.
                f"tel {rng.choice(['415 555 2677', '020 7946 0960'])}": "yes",
            },
        }
        corpus.leads.append(lead)
        corpus.messages.append(f"follow-up {i}: my other address is {pii()}, card {pii()}")
    corpus.planted = set(PLANTED_TEXT) | set(NAMES) | {"415 555 2677", "020 7946 0960"}
    corpus.planted |= {str(n) for n in NUMERIC}
    corpus.planted |= {core for v in PLANTED_TEXT if (core := _digits_core(v)) is not None}
    corpus.planted |= {"zebulon", "Philomena", "Brindlecombe", "jane.doe@example.com"}
    return corpus


def _bytes(value: bytes | str | None) -> bytes:
    return value.encode() if isinstance(value, str) else (value or b"")


def _redis_texts(client: redis.Redis) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every key name, every value read by its type, and every DUMP."""
    for key in client.scan_iter(match="*", count=500):
        name = _bytes(key).decode("utf-8", "replace")
        yield f"key name {name}", _bytes(key)
        kind = _bytes(client.type(key)).decode()
        values: list[Any] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = list(client.zrange(key, 0, -1))
        else:
            raise AssertionError(f"unexpected Redis type {kind} at {name}")
        for value in values:
            yield f"{kind} {name}", _bytes(value)
        yield f"DUMP {name}", _bytes(client.dump(key))


def _leaks(planted: set[str], text: str) -> list[str]:
    folded = text.casefold()
    return sorted(value for value in planted if value.casefold() in folded)


def test_no_planted_pii_reaches_redis_the_export_metrics_or_the_log(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    corpus = build_corpus(random.Random(SEED))
    server = start_scorer(
        model=good_model.path, redis_url=redis_url, log_level="debug", pii_regions="US,GB"
    )
    accepted: list[str] = []
    with server.client(api_key=None) as http:
        for lead, message in zip(corpus.leads, corpus.messages, strict=True):
            answer = http.post("/v1/lead", json=lead)
            assert answer.status_code == 200, answer.text
            lead_id = answer.json()["lead_id"]
            accepted.append(lead_id)
            said = http.post(f"/v1/lead/{lead_id}/messages", json={"text": message})
            assert said.status_code == 200, said.text
            assert said.json()["redacted"] is True
            done = http.post(
                "/v1/outcome", json={"lead_id": lead_id, "converted": len(accepted) % 3 == 0}
            )
            assert done.status_code == 200, done.text
        # Hostile bodies that must be refused (the fast path and the full app), never logged.
        for content_type in ("application/json", "application/json; charset=utf-8"):
            body = json.dumps({"details": f"{EMAILS[0]} {CARDS[0]} "})[:-2] + '\\ud800"}'
            refused = http.post("/v1/lead", content=body, headers={"content-type": content_type})
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"][0]["loc"] == ["body", "details"]
        overflow = http.post(
            "/v1/lead", json={"details": EMAILS[1], "received_at": "0001-01-01T00:00:00+14:00"}
        )
        assert overflow.status_code == 422
        export = http.get("/ops/export/outcomes.csv", headers={"x-api-key": API_KEY})
        assert export.status_code == 200
        metrics_text = http.get("/metrics").text

    client = redis.Redis.from_url(redis_url)
    # Nothing lost: every accepted lead is stored, with its score and its outcome.
    stored = {key.decode().removeprefix("lead:") for key in client.scan_iter(match="lead:*")}
    assert stored == set(accepted)
    assert all(client.hexists(f"lead:{i}", "converted") for i in accepted)
    chats = list(client.scan_iter(match="mem:*"))
    assert sum(client.llen(chat) for chat in chats) >= 2 * LEADS, "first and second messages"

    leaks = {
        where: found
        for where, raw in _redis_texts(client)
        if (found := _leaks(corpus.planted, raw.decode("utf-8", "replace")))
    }
    assert leaks == {}, "planted PII found in Redis"
    assert _leaks(corpus.planted, export.text) == []
    assert _leaks(corpus.planted, metrics_text) == []
    log = server.log()
    assert " DEBUG " in log, "the scorer logged at DEBUG"
    assert _leaks(corpus.planted, log) == []
    assert "\\ud800" not in log

    # The export holds every accepted lead once, formula-led text escaped (OWASP), and the
    # redacted attributes: numbers whose digits are a card or phone are `[REDACTED]`.
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(row["lead_id"] for row in rows) == sorted(accepted)
    assert all(row["budget"] == "[REDACTED]" for row in rows)
    assert all(row["plan"][:1] == "'" for row in rows)
    assert not any(name.startswith("tel ") for name in rows[0])
    assert "leadops_attributes_dropped_total" in metrics_text
    assert 'reason="pii_in_name"' in metrics_text


def test_the_attribute_column_cap_drops_new_names_and_logs_each_once(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url, max_attribute_columns="5")
    with server.client(api_key=None) as http:
        for i in range(30):
            attributes = {f"a{i}_{j}": "x" for j in range(3)}
            assert http.post("/v1/lead", json={"attributes": attributes}).status_code == 200
        for _ in range(3):  # the same refused name again: counted, not logged again
            assert http.post("/v1/lead", json={"attributes": {"a9_0": 1.0}}).status_code == 200
        export = http.get("/ops/export/outcomes.csv", headers={"x-api-key": API_KEY})
        metrics_text = http.get("/metrics").text
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stored_names = {str(c) for c in client.smembers("leadops:columns") if str(c).startswith("a")}
    assert stored_names == {"a0_0", "a0_1", "a0_2", "a1_0", "a1_1"}
    header = next(csv.reader(io.StringIO(export.text)))
    assert [c for c in header if c.startswith("a")] == sorted(stored_names)
    dropped = 30 * 3 - 5 + 3
    assert f'leadops_attributes_dropped_total{{reason="column_cap"}} {dropped}.0' in metrics_text
    log = server.log()
    assert log.count("Dropped attribute 'a9_0'") == 1
    assert log.count("Dropped attribute ") == 30 * 3 - 5
