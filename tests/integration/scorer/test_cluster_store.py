"""The scorer on a real Redis Cluster (3 masters + 3 replicas): leads spread over every master,
the export's index and columns across slots, idempotent batches with the first message on
another slot than the record, retraction, erasure, MOVED/ASK and a master failover."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Callable

import pytest
from redis.cluster import RedisCluster

from leadops.scorer import retention, store
from leadops.scorer.cluster_store import ClusterStore, marker_key
from tests.fixtures.artifacts import Built
from tests.fixtures.redis_cluster import RedisClusterServer
from tests.fixtures.scorer import StartScorer, chat_key
from tests.integration.scorer.test_api import EMAIL, PHONE, lead

pytestmark = pytest.mark.redis


def _write(i: int, *, memory: str | None = None) -> store.LeadWrite:
    lead_id = f"{i:032x}"
    return store.LeadWrite(
        lead_id=lead_id,
        record={"details": f"lead {i}", "tenant": "t", "chat_key": memory or "x"},
        columns=["details", "tenant"],
        memory=memory or store.memory_key("t", lead_id),
        message=f"hello {i}",
    )


def test_scorer_round_trip_on_a_cluster(
    start_scorer: StartScorer,
    good_model: Built,
    redis_cluster: RedisClusterServer,
    redis_cluster_url: str,
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_cluster_url, redis_mode="cluster")
    r = redis_cluster.cluster_client()
    ids: list[str] = []
    with server.client() as http:
        for i in range(60):
            scored = http.post("/v1/lead", json=lead(chat_id=f"chat{i}", attributes={f"a{i}": 1.0}))
            assert scored.status_code == 200, scored.text
            assert scored.json()["stored"] is True
            ids.append(scored.json()["lead_id"])
        for lead_id in ids[::2]:
            outcome = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
            assert outcome.status_code == 200, outcome.text
        added = http.post(f"/v1/lead/{ids[0]}/messages", json={"text": f"mail {EMAIL}"})
        assert added.status_code == 200, added.text
        export = http.get("/ops/export/outcomes.csv")
        assert export.status_code == 200
        erased = http.delete(f"/v1/lead/{ids[2]}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"]["record"] is True
        assert erased.json()["erased"]["chat_memory"] is True
        again = http.delete(f"/v1/lead/{ids[2]}")
        assert again.json()["erased"]["record"] is False

    # Records on every master: the layout spreads, no tenant-wide slot.
    per_master = [m.client().dbsize() for m in redis_cluster.masters()]
    assert all(n > 0 for n in per_master), per_master
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {row["lead_id"] for row in rows} == set(ids[::2])
    assert {f"a{i}" for i in range(60)} <= set(rows[0])  # the columns set, on its own slot
    assert PHONE not in export.text
    assert EMAIL not in export.text
    for i, lead_id in enumerate(ids):
        if i == 2:
            continue
        assert r.hget(store.lead_key(lead_id), "tenant") == "default"
        assert len(r.lrange(chat_key("default", f"chat{i}"), 0, -1)) == (2 if i == 0 else 1)
    assert r.exists(store.lead_key(ids[2]), chat_key("default", "chat2")) == 0
    assert str(r.zscore(store.OUTCOMES_KEY, ids[2])) == "None"
    assert EMAIL not in r.lrange(chat_key("default", "chat0"), 0, -1)[1]


def test_a_retried_batch_stores_each_lead_and_message_once(redis_cluster_url: str) -> None:
    batch = [_write(i) for i in range(20)]

    async def run() -> frozenset[str]:
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0)
        await lead_store.save_leads(batch[:10])
        await lead_store.save_leads(batch)  # a retry of a batch that did land, plus more
        found = await lead_store.confirm(batch, retract=False)
        await lead_store.close()
        return found

    assert asyncio.run(run()) == {w.lead_id for w in batch}
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    for write in batch:
        assert client.lrange(write.memory, 0, -1) == [write.message]
        marker = marker_key(write.memory, write.lead_id)
        assert marker is not None
        assert client.cluster_keyslot(marker) == client.cluster_keyslot(write.memory)
        assert 0 < client.ttl(marker) <= 86_400


def test_first_messages_of_lists_sharing_a_slot_are_pushed_once_each(
    redis_cluster_url: str,
) -> None:
    """One script writes a slot's first messages: two lists on one slot (one of them shared by
    two leads) get each lead's message once, in order, through a retry, and their TTL."""
    lists = ["mem:{one-slot}:a", "mem:{one-slot}:b", "mem:{one-slot}:a"]
    batch = [_write(i, memory=memory) for i, memory in enumerate(lists)] + [_write(3)]

    async def run() -> None:
        keep = retention.Retention(lead_seconds=600, outcome_seconds=1200)
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0, keep=keep)
        await lead_store.save_leads(batch)
        await lead_store.save_leads(batch)  # a retry of a batch that did land
        await lead_store.close()

    asyncio.run(run())
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    assert client.lrange("mem:{one-slot}:a", 0, -1) == ["hello 0", "hello 2"]
    assert client.lrange("mem:{one-slot}:b", 0, -1) == ["hello 1"]
    assert client.lrange(batch[3].memory, 0, -1) == ["hello 3"]
    for memory in ("mem:{one-slot}:a", "mem:{one-slot}:b", batch[3].memory):
        assert 0 < client.ttl(memory) <= 600


def test_a_list_pushed_before_a_refused_push_keeps_its_ttl(redis_cluster_url: str) -> None:
    """A push refused mid-script (WRONGTYPE) leaves the lists pushed before it with their TTL:
    the retry skips their messages (markers set), so it would never set it."""
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    client.set("mem:{ttl-slot}:not-a-list", "x")
    batch = [_write(0, memory="mem:{ttl-slot}:a"), _write(1, memory="mem:{ttl-slot}:not-a-list")]

    async def run() -> None:
        keep = retention.Retention(lead_seconds=600, outcome_seconds=1200)
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0, keep=keep)
        with pytest.raises((store.PartlyWritten, store.StoreUnavailable)):
            await lead_store.save_leads(batch)
        await lead_store.close()

    asyncio.run(run())
    assert client.lrange("mem:{ttl-slot}:a", 0, -1) == ["hello 0"]
    assert 0 < client.ttl("mem:{ttl-slot}:a") <= 600


def test_a_batch_failing_on_one_slot_is_finished_by_the_retry(redis_cluster_url: str) -> None:
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    client.set("mem:t:not-a-list", "x")  # that lead's RPUSH fails: WRONGTYPE
    batch = [_write(0), _write(1, memory="mem:t:not-a-list"), _write(2)]

    async def run() -> None:
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0)
        with pytest.raises(store.PartlyWritten) as failed:
            await lead_store.save_leads(batch)
        assert failed.value.written == {batch[0].lead_id, batch[2].lead_id}
        client.delete("mem:t:not-a-list")
        await lead_store.save_leads([batch[1]])  # the writer's retry of what is missing
        await lead_store.close()

    asyncio.run(run())
    for write in batch:
        assert client.exists(store.lead_key(write.lead_id)) == 1
        assert client.lrange(write.memory, 0, -1) == [write.message]


def test_unconfirmed_leads_are_retracted_record_and_message(redis_cluster_url: str) -> None:
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    shared = store.memory_key("t", "shared-chat")
    client.rpush(shared, "earlier message")
    batch = [_write(1, memory=shared), _write(2)]

    async def run() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0)
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


def _migrate_slot(cluster: RedisClusterServer, key: str, *, finish: bool) -> tuple[int, str]:
    """Move `key`'s slot (and the key) to another master with CLUSTER SETSLOT and MIGRATE, as
    `redis-cli --cluster reshard` does; unfinished, the slot stays MIGRATING/IMPORTING (ASK)."""
    source = cluster.master_of(key)
    target = next(m for m in cluster.masters() if m.port != source.port)
    src, dst = source.client(), target.client()
    slot = int(src.cluster("keyslot", key))
    src_id, dst_id = src.cluster("myid"), dst.cluster("myid")
    dst.cluster("setslot", slot, "importing", src_id)
    src.cluster("setslot", slot, "migrating", dst_id)
    for k in src.cluster("getkeysinslot", slot, 1000):
        src.migrate("127.0.0.1", target.port, k, 0, 5000)
    if finish:
        _assign(cluster, slot, dst_id)
    return slot, dst_id


def _assign(cluster: RedisClusterServer, slot: int, node_id: str) -> None:
    for node in cluster.masters():
        node.client().cluster("setslot", slot, "node", node_id)


@pytest.mark.parametrize("finish", [True, False], ids=["MOVED", "ASK"])
def test_moved_and_ask_are_followed(
    redis_cluster: RedisClusterServer, redis_cluster_url: str, finish: bool
) -> None:
    first = _write(1)
    key = store.lead_key(first.lead_id)

    moved: list[tuple[int, str]] = []

    async def run() -> store.Outcome | None:
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0)
        await lead_store.save_leads([first])  # the client now holds the slot map
        moved.append(_migrate_slot(redis_cluster, key, finish=finish))
        outcome = await lead_store.record_outcome(first.lead_id, converted=True, at=1.0, tenant="t")
        await lead_store.close()
        return outcome

    try:
        assert asyncio.run(run()) == store.Outcome()
        client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
        assert client.hget(key, "converted") == "1"
    finally:
        if moved and not finish:  # leave a stable slot map for the next test
            _assign(redis_cluster, *moved[0])


def _record_key(write: store.LeadWrite) -> str:
    return store.lead_key(write.lead_id)


def _chat_list(write: store.LeadWrite) -> str:
    return write.memory


# Not (ASK, chat list): a chat list and its marker are two keys, and Redis answers a two-key
# command in a half-migrated slot with TRYAGAIN until the migration ends, so such a lead is
# refused (503, retried by its caller) while a reshard moves its chat list's slot.
@pytest.mark.parametrize(
    ("finish", "key_of"),
    [(True, _record_key), (False, _record_key), (True, _chat_list)],
    ids=["MOVED-record", "ASK-record", "MOVED-chat-list"],
)
def test_a_batch_whose_slot_moved_is_stored_slot_by_slot(
    redis_cluster: RedisClusterServer,
    redis_cluster_url: str,
    finish: bool,
    key_of: Callable[[store.LeadWrite], str],
) -> None:
    """A batch goes by the slot map the client holds: one script per master for the records,
    one per slot for the first messages. A lead whose record's slot moved since makes its
    master's script fail having written nothing, and those leads go again slot by slot
    through the cluster client, which follows MOVED or ASK; a chat list whose slot moved is
    pushed by that path too."""
    base = uuid.uuid4().int % 10**12
    batch = [_write(base + i) for i in range(12)]
    moving = batch[0]
    key = key_of(moving)
    source = redis_cluster.master_of(key)
    neighbours = [w for w in batch[1:] if redis_cluster.master_of(key_of(w)) is source]
    moved: list[tuple[int, str]] = []

    async def run() -> frozenset[str]:
        lead_store = ClusterStore(redis_cluster_url, timeout=5.0)
        await lead_store.save_leads([_write(base + 100)])  # the client now holds the slot map
        moved.append(_migrate_slot(redis_cluster, key, finish=finish))
        await lead_store.save_leads(batch)
        stored = await lead_store.confirm(batch, retract=False)
        await lead_store.close()
        return stored

    try:
        assert asyncio.run(run()) == {w.lead_id for w in batch}
        client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
        for write in batch:
            assert client.hgetall(store.lead_key(write.lead_id)) == write.record
            assert client.lrange(write.memory, 0, -1) == [write.message]
        assert client.cluster_keyslot(key) == moved[0][0]
        assert neighbours, "no other lead of the batch shared the moved lead's master"
    finally:
        if moved and not finish:  # leave a stable slot map for the next test
            _assign(redis_cluster, *moved[0])


@pytest.mark.chaos
def test_a_master_killed_under_load_loses_no_acknowledged_lead(
    start_scorer: StartScorer,
    good_model: Built,
    redis_cluster: RedisClusterServer,
    redis_cluster_url: str,
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_cluster_url,
        redis_mode="cluster",
        redis_timeout_seconds="1.0",
    )
    acknowledged: list[tuple[str, str]] = []
    refused_before_kill = 0
    with server.client() as http:
        deadline = time.monotonic() + 30
        i = 0
        killed_at = None
        while time.monotonic() < deadline:
            chat = f"chat-{uuid.uuid4().hex[:8]}"
            scored = http.post("/v1/lead", json=lead(chat_id=chat))
            if scored.status_code == 200:
                acknowledged.append((scored.json()["lead_id"], chat))
            else:
                assert scored.status_code == 503, scored.text
                refused_before_kill += killed_at is None
            i += 1
            if i == 50:
                victim = redis_cluster.masters()[0]
                victim.kill()
                killed_at = time.monotonic()
            if killed_at and time.monotonic() - killed_at > 8 and scored.status_code == 200:
                break
        assert killed_at is not None
        status = http.get("/ready").json()
    assert time.monotonic() < deadline, "the scorer never stored again after the failover"
    assert status.get("store_ok", True) is True
    r = redis_cluster.cluster_client()
    for lead_id, chat in acknowledged:  # every 200 is in Redis, record and first message
        assert r.exists(store.lead_key(lead_id)) == 1
        assert len(r.lrange(chat_key("default", chat), 0, -1)) == 1
    assert len(acknowledged) > 50
    # A healthy cluster refuses nothing. (How many 503s the failover window holds depends on
    # how fast they come back, not on the store: 2,195 against 1,792 stored on a loaded run.)
    assert refused_before_kill == 0
