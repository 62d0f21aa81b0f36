"""Lead batches against a real redis-server: wide batches, idempotent retries (also of a whole
request, by its Idempotency-Key), a deadline past which a batch the client gave up on never
lands, and exact counts when a batch fails midway."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest

from leadops.scorer import metrics, store, writer
from leadops.scorer.settings import Durability
from tests.fixtures.artifacts import Built
from tests.fixtures.metrics import metric_value
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import StartScorer, chat_key

pytestmark = pytest.mark.redis


def _write(i: int, *, attributes: int = 0, memory: str | None = None) -> store.LeadWrite:
    lead_id = f"{i:032x}"
    # Attribute names unique to each lead: a batch of them is wide in columns.
    extra = {f"attr_{i}_{j}": str(j) for j in range(attributes)}
    record = {"details": f"lead {i}", "tenant": "t", "chat_id": lead_id} | extra
    return store.LeadWrite(
        lead_id=lead_id,
        record=record,
        columns=["details", "tenant", *extra],
        memory=memory or store.memory_key("t", lead_id),
        message=f"hello {i}",
    )


def _write_through_writer(
    redis_url: str, batch: list[store.LeadWrite], *, capacity: int
) -> metrics.Metrics:
    """Submit `batch` to a bestEffort RecordWriter on real Redis, flush it, return its metrics."""

    async def run() -> metrics.Metrics:
        m = metrics.Metrics()
        lead_store = store.RedisStore(redis_url, timeout=5.0)
        w = writer.RecordWriter(
            lead_store, m=m, capacity=capacity, durability=Durability.BEST_EFFORT
        )
        await w.start()
        for write in batch:
            w.submit(write)
        await w.stop()
        await lead_store.close()
        return m

    return asyncio.run(run())


def _dropped(m: metrics.Metrics) -> float:
    exposition = generate_latest(m.registry).decode()
    return metric_value(exposition, "leadops_records_dropped_total", {"kind": "lead"})


def test_a_batch_of_wide_leads_is_stored_whole(redis_url: str) -> None:
    # 256 leads x 50 attributes each (the Lead maximum): 12,800 distinct columns, past the
    # ~8,000 values Lua's unpack() takes at once (issue: `too many results to unpack`).
    batch = [_write(i, attributes=50) for i in range(writer.MAX_BATCH)]

    m = _write_through_writer(redis_url, batch, capacity=1000)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert _dropped(m) == 0.0
    assert client.scard(store.COLUMNS_KEY) == 2 + 50 * writer.MAX_BATCH
    for write in (batch[0], batch[-1]):
        assert client.hgetall(store.lead_key(write.lead_id)) == write.record
        assert client.lrange(write.memory, 0, -1) == [write.message]


def test_a_retried_batch_stores_each_lead_once(redis_url: str) -> None:
    batch = [_write(i) for i in range(3)]

    async def run() -> None:
        lead_store = store.RedisStore(redis_url, timeout=5.0)
        await lead_store.save_leads(batch[:2])
        await lead_store.save_leads(batch)  # a retry of a batch that did land, plus one more
        await lead_store.close()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for write in batch:
        assert client.lrange(write.memory, 0, -1) == [write.message]


def test_a_batch_that_failed_midway_counts_only_what_is_missing(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set("mem:t:not-a-list", "x")  # the second lead's RPUSH fails: WRONGTYPE
    batch = [_write(0), _write(1, memory="mem:t:not-a-list"), _write(2)]

    m = _write_through_writer(redis_url, batch, capacity=10)
    # Leads 0 and 1 were written before the error; the retry writes lead 2 only.
    assert [client.exists(store.lead_key(w.lead_id)) for w in batch] == [1, 1, 1]
    assert client.lrange(batch[0].memory, 0, -1) == ["hello 0"]
    assert client.lrange(batch[2].memory, 0, -1) == ["hello 2"]
    assert _dropped(m) == 0.0


def test_a_batch_the_client_gave_up_on_never_lands(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        lead_store = store.RedisStore(server.url, timeout=0.3)

        async def attempt() -> None:
            # Connect and load the script while Redis answers: the stalled call is then the
            # write itself (EVALSHA), which Redis runs once resumed.
            await lead_store.save_leads([_write(6)])
            server.pause()
            try:
                with pytest.raises(store.StoreUnavailable):
                    await lead_store.save_leads([_write(7)])
            finally:
                server.resume()
            await lead_store.close()

        asyncio.run(attempt())
        client = server.client()
        client.ping()  # Redis has now read and run everything queued while it was stopped
        assert client.exists(store.lead_key(f"{6:032x}")) == 1
        assert client.exists(store.lead_key(f"{7:032x}")) == 0
        assert client.exists(store.memory_key("t", f"{7:032x}")) == 0
    finally:
        server.stop()


def test_unconfirmed_leads_are_looked_up_and_retracted(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    shared = store.memory_key("t", "shared-chat")
    client.rpush(shared, "earlier message")
    batch = [_write(1, memory=shared), _write(2)]

    async def run() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        lead_store = store.RedisStore(redis_url, timeout=5.0)
        await lead_store.save_leads(batch[:1])  # lead 2 never landed
        looked = await lead_store.confirm(batch, retract=False)
        retracted = await lead_store.confirm(batch, retract=True)
        after = await lead_store.confirm(batch, retract=False)
        await lead_store.close()
        return looked, retracted, after

    looked, retracted, after = asyncio.run(run())
    assert looked == retracted == {batch[0].lead_id}
    assert after == frozenset()
    assert client.exists(store.lead_key(batch[0].lead_id)) == 0
    assert client.lrange(shared, 0, -1) == ["earlier message"]


def test_a_lead_retried_with_its_idempotency_key_is_stored_once(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    lead = {"details": "price quote please", "chat_id": "chat-7"}
    with server.client() as http:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first, again = (http.post("/v1/lead", json=lead, headers=key) for _ in range(2))
        other = http.post("/v1/lead", json=lead, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json() == again.json()
    assert other.json()["lead_id"] != first.json()["lead_id"]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert len(client.keys("lead:*")) == 2
    assert client.lrange(chat_key("default", "chat-7"), 0, -1) == ["price quote please"] * 2
