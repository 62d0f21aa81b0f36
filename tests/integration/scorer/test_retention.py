"""Retention on real Redis, standalone and Cluster, through a real scorer over HTTP: records and
chat memory expire, an outcome keeps its lead longer, the export never lists an expired lead,
and the indexes are trimmed (in bounded batches) as their records go."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from leadops.scorer import retention, store
from leadops.scorer.cluster_store import ClusterStore
from tests.fixtures.artifacts import Built
from tests.fixtures.redis_cluster import RedisClusterServer
from tests.fixtures.scorer import StartScorer, chat_key
from tests.integration.scorer.test_api import lead

pytestmark = pytest.mark.redis

LEAD_SECONDS = 3
OUTCOME_SECONDS = 8


@dataclass(frozen=True)
class Backend:
    url: str
    mode: str
    client: redis.Redis | RedisCluster


@pytest.fixture(params=["standalone", "cluster"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "standalone":
        url = request.getfixturevalue("redis_url")
        return Backend(url, "standalone", redis.Redis.from_url(url, decode_responses=True))
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    url = request.getfixturevalue("redis_cluster_url")
    return Backend(url, "cluster", cluster.cluster_client())


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def exported(http: Any) -> set[str]:
    answer = http.get("/ops/export/outcomes.csv")
    assert answer.status_code == 200, answer.text
    return {row["lead_id"] for row in csv.DictReader(io.StringIO(answer.text))}


def test_leads_expire_an_outcome_extends_and_the_export_index_is_trimmed(
    start_scorer: StartScorer, good_model: Built, backend: Backend
) -> None:
    r = backend.client
    server = start_scorer(
        model=good_model.path,
        redis_url=backend.url,
        redis_mode=backend.mode,
        retention_seconds=str(LEAD_SECONDS),
        outcome_retention_seconds=str(OUTCOME_SECONDS),
    )
    with server.client() as http:
        ids = []
        for i in range(6):
            scored = http.post("/v1/lead", json=lead(chat_id=f"chat{i}"))
            assert scored.status_code == 200, scored.text
            ids.append(scored.json()["lead_id"])
        for lead_id in ids[:2]:
            outcome = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
            assert outcome.status_code == 200, outcome.text
        added = http.post(f"/v1/lead/{ids[2]}/messages", json={"text": "a second message"})
        assert added.status_code == 200, added.text

        # Every write carries its TTL: leads and chat lists the lead retention, labelled leads
        # the outcome retention.
        for lead_id in ids[2:]:
            assert 0 < r.ttl(store.lead_key(lead_id)) <= LEAD_SECONDS
        for i in range(6):
            assert 0 < r.ttl(chat_key("default", f"chat{i}")) <= LEAD_SECONDS
        for lead_id in ids[:2]:
            assert LEAD_SECONDS < r.ttl(store.lead_key(lead_id)) <= OUTCOME_SECONDS
        assert exported(http) == set(ids[:2])

        # Unlabelled leads and every chat list go; the labelled leads stay and are exported.
        wait_for(
            lambda: r.exists(*(store.lead_key(i) for i in ids[2:])) == 0,
            what="unlabelled records to expire",
        )
        wait_for(
            lambda: all(r.exists(chat_key("default", f"chat{i}")) == 0 for i in range(6)),
            what="chat memory to expire",
        )
        assert all(r.exists(store.lead_key(i)) == 1 for i in ids[:2])
        assert exported(http) == set(ids[:2])

        # Then the labelled leads expire too: the export lists none, and the index is trimmed.
        wait_for(
            lambda: r.exists(*(store.lead_key(i) for i in ids[:2])) == 0,
            what="labelled records to expire",
        )
        assert exported(http) == set()
        wait_for(lambda: r.zcard(store.OUTCOMES_KEY) == 0, what="the outcome index trimmed")
        assert "Trimmed 2 expired lead ids" in server.log()


def test_the_trim_removes_only_gone_ids_in_bounded_batches(backend: Backend) -> None:
    # 2,500 indexed ids, past two TRIM_BATCHes: those whose records are gone are removed, the
    # ones whose records remain (an experiment lead kept by its outcome) stay, wherever they sort.
    r = backend.client
    old = time.time() - 3600
    live = {f"{i:032x}" for i in range(0, 2500, 25)}
    r.zadd(store.EXPERIMENT_KEY, {f"{i:032x}": old + i for i in range(2500)})
    r.zadd(store.OUTCOMES_KEY, {f"{i:032x}": old + i for i in range(2500)})
    for lead_id in live:
        r.hset(store.lead_key(lead_id), mapping={"tenant": "default", "converted": "1"})
    fresh = "f" * 32  # indexed just now: not old enough to check, whatever its record
    r.zadd(store.OUTCOMES_KEY, {fresh: time.time()})

    async def trim() -> int:
        keep = retention.Retention(lead_seconds=60, outcome_seconds=120)
        if backend.mode == "cluster":
            lead_store: store.RedisStore = ClusterStore(backend.url, timeout=5.0, keep=keep)
        else:
            lead_store = store.RedisStore(backend.url, timeout=5.0, keep=keep)
        try:
            return await lead_store.trim_indexes()
        finally:
            await lead_store.close()

    assert asyncio.run(trim()) == 2 * (2500 - len(live))
    assert set(r.zrange(store.EXPERIMENT_KEY, 0, -1)) == live
    assert set(r.zrange(store.OUTCOMES_KEY, 0, -1)) == live | {fresh}
