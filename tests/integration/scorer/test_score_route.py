"""POST /v1/lead's lean hot path answers exactly as a plain FastAPI endpoint would.

The scorer (real uvicorn, real Redis) is compared with a reference FastAPI app whose endpoint
takes `lead: Lead` the ordinary way: every refused body gets the same status and the same
JSON, and every accepted one is scored and recorded exactly once, whichever path took it.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import redis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from leadops.contract.lead import Lead
from leadops.scorer import app as scorer_app
from tests.fixtures.artifacts import Built
from tests.fixtures.metrics import metric_value
from tests.fixtures.scorer import StartScorer

pytestmark = pytest.mark.redis

JSON = "application/json"
GOOD = json.dumps({"details": "price quote for a demo please", "source": "referral"}).encode()


def _reference() -> TestClient:
    """FastAPI's own handling of a `Lead` body: what the hot path must reproduce (with the
    scorer's 422 body, which leaves out the refused values)."""
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, scorer_app.validation_error)

    @app.post("/v1/lead")
    async def score(lead: Lead) -> dict[str, str]:
        return {"ok": lead.source}

    return TestClient(app)


REFUSED = {
    "wrong-type": (b'{"details": 5}', JSON),
    "too-long": (b'{"name": "' + b"x" * 201 + b'"}', JSON),
    "unknown-field": (b'{"details": "hi", "ssn": "1"}', JSON),
    "truncated-json": (b'{"details": "hi",', JSON),
    "empty-body": (b"", JSON),
    "json-array": (b"[1, 2]", JSON),
    "json-null": (b"null", JSON),
    "not-utf8": (b"\xff\xfe{}", JSON),
    "nesting-bomb": (b"[" * 100_000 + b"]" * 100_000, JSON),
    "not-json-content-type": (GOOD, "text/plain"),
    "no-content-type": (GOOD, None),
}
JSON_TYPES = [
    JSON,
    "application/json; charset=utf-8",
    "application/vnd.leadops+json",
    "Application/JSON",
]


def test_refused_bodies_get_fastapis_own_answer(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    reference = _reference()
    server = start_scorer(model=good_model.path, redis_url=redis_url, max_body_bytes="300000")
    statuses: Counter[int] = Counter()
    with server.client() as http:
        for case, (body, content_type) in REFUSED.items():
            headers = {"content-type": content_type} if content_type else {}
            expected = reference.post("/v1/lead", content=body, headers=headers)
            got = http.post("/v1/lead", content=body, headers=headers)
            assert expected.status_code in (400, 422), case
            assert (got.status_code, got.json()) == (expected.status_code, expected.json()), case
            statuses[expected.status_code] += 1
        metrics = http.get("/metrics").text
    # Counted once each, by route template and status; nothing scored, nothing stored.
    for status, count in statuses.items():
        labels = {"route": "/v1/lead", "method": "POST", "status": str(status)}
        assert metric_value(metrics, "leadops_http_requests_total", labels) == count
    assert metric_value(metrics, "leadops_lead_score_count") == 0.0
    assert redis.Redis.from_url(redis_url).keys("lead:*") == []


def test_every_json_content_type_is_scored_and_recorded_once(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    with server.client() as http:
        answers = [
            http.post("/v1/lead", content=GOOD, headers={"content-type": content_type})
            for content_type in JSON_TYPES
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
        lead_ids = {a.json()["lead_id"] for a in answers}
        # An outcome waits for its lead's write-behind batch, so the records are in Redis now.
        for lead_id in lead_ids:
            outcome = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
            assert outcome.status_code == 200
        metrics = http.get("/metrics").text
    n = len(JSON_TYPES)
    assert len(lead_ids) == n
    assert all(re.fullmatch(r"[0-9a-f]{32}", lead_id) for lead_id in lead_ids)
    score = answers[0].json()["score"]
    assert all(a.json()["score"] == score for a in answers), "same lead, same score, either path"
    labels = {"route": "/v1/lead", "method": "POST", "status": "200"}
    assert metric_value(metrics, "leadops_http_requests_total", labels) == n
    assert metric_value(metrics, "leadops_lead_score_count") == n
    assert metric_value(metrics, "leadops_scoring_duration_seconds_count") == n
    stored = redis.Redis.from_url(redis_url, decode_responses=True)
    keys: list[str] = stored.keys("lead:*")  # type: ignore[assignment]
    assert sorted(k.removeprefix("lead:") for k in keys) == sorted(lead_ids)
    for lead_id in lead_ids:
        record = stored.hgetall(f"lead:{lead_id}")
        assert record["details"] == "price quote for a demo please"
        assert float(record["score"]) == score
        assert record["converted"] == "1"


def test_a_nan_in_the_body_is_a_422_naming_the_attribute(
    start_scorer: StartScorer, good_model: Built
) -> None:
    # Python's json reads NaN; FastAPI's own handler then fails to write it back (a 500).
    server = start_scorer(model=good_model.path)
    with server.client() as http:
        for literal in (b"NaN", b"Infinity", b"-Infinity"):
            body = b'{"attributes": {"visits": ' + literal + b"}}"
            refused = http.post("/v1/lead", content=body, headers={"content-type": JSON})
            assert refused.status_code == 422, refused.text
            (error,) = refused.json()["detail"]
            assert error["loc"] == ["body", "attributes"]
            assert "'visits' must be a finite number" in error["msg"]
            assert "input" not in error, "a refused value is never echoed"
        outcome = http.post(
            "/v1/outcome",
            content=b'{"lead_id": NaN, "converted": true}',
            headers={"content-type": JSON},
        )
        assert outcome.status_code == 422
        assert outcome.json()["detail"][0]["loc"] == ["body", "lead_id"]


def test_without_a_model_the_answers_keep_fastapis_order(start_scorer: StartScorer) -> None:
    server = start_scorer()
    with server.client() as http:
        good = http.post("/v1/lead", content=GOOD, headers={"content-type": JSON})
        invalid = http.post("/v1/lead", content=b'{"details": 5}', headers={"content-type": JSON})
        not_json = http.post("/v1/lead", content=b"{", headers={"content-type": JSON})
    # FastAPI parses JSON before dependencies (422), and solves dependencies (503, no
    # model) before validating the parsed body against the Lead schema.
    assert good.status_code == invalid.status_code == 503
    assert good.json() == invalid.json() == {"detail": "no model loaded"}
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"
