"""The scorer finds the national numbers of every region in LEADOPS_PII_REGIONS (what the
operator sets from spec.pii.regions), and refuses to start on an unknown region."""

from __future__ import annotations

import time

import pytest
import redis

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import StartScorer, chat_key

pytestmark = pytest.mark.redis

UK = "call 020 7946 0958 or 07700 900123"


def _stored_message(client: redis.Redis, key: str) -> str:
    deadline = time.monotonic() + 10  # the scorer writes behind: await its batch
    while not (stored := client.lrange(key, 0, -1)):
        assert time.monotonic() < deadline, "the lead was never stored"
        time.sleep(0.02)
    first = stored[0]
    return first.decode() if isinstance(first, bytes) else str(first)


@pytest.mark.parametrize(
    ("regions", "expected"),
    [("US,GB", "call [REDACTED] or [REDACTED]"), ("US", UK)],
)
def test_national_numbers_of_the_configured_regions_are_redacted(
    redis_url: str, start_scorer: StartScorer, good_model: Built, regions: str, expected: str
) -> None:
    scorer = start_scorer(model=good_model.path, redis_url=redis_url, pii_regions=regions)
    with scorer.client() as http:
        # Open ingest (no ingest keys): the one tenant `default`.
        answer = http.post("/v1/lead", json={"chat_id": "c1", "details": UK})
        assert answer.status_code == 200, answer.text
    client = redis.Redis.from_url(redis_url)
    assert _stored_message(client, chat_key("default", "c1")) == expected


def test_an_unknown_region_stops_the_start(
    redis_url: str, start_scorer: StartScorer, good_model: Built
) -> None:
    with pytest.raises(RuntimeError, match="LEADOPS_PII_REGIONS"):
        start_scorer(model=good_model.path, redis_url=redis_url, pii_regions="US,QQ")
