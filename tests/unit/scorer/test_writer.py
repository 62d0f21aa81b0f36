"""The write-behind: leads reach the store in batches, waits end once written, stop flushes;
what a batch's leads may be answered (stored, spooled, not) under each durability."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from leadops.scorer import metrics, spool, store, writer
from leadops.scorer.settings import Durability
from tests.fixtures.metrics import metric_value


def _write(i: int) -> store.LeadWrite:
    lead_id = f"{i:032x}"
    return store.LeadWrite(
        lead_id=lead_id,
        record={"details": f"lead {i}", "tenant": "t", "chat_id": lead_id},
        columns=["details", "tenant"],
        memory=store.memory_key("t", lead_id),
        message=f"lead {i}",
    )


class CountingStore(store.MemoryStore):
    """The dev store, recording the size of every batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def save_leads(self, batch: object) -> None:
        assert isinstance(batch, list)
        self.batches.append(len(batch))
        await asyncio.sleep(0.001)  # a round trip: leads submitted meanwhile go in a later batch
        await super().save_leads(batch)


def test_leads_are_written_in_batches_and_waits_end_once_written() -> None:
    async def run() -> CountingStore:
        lead_store = CountingStore()
        w = writer.RecordWriter(lead_store, m=metrics.Metrics(), capacity=10_000)
        await w.start()
        for i in range(3 * writer.MAX_BATCH + 5):
            w.submit(_write(i))
        last = f"{3 * writer.MAX_BATCH + 4:032x}"
        await w.flushed(last)
        assert store.lead_key(last) in lead_store.records
        w.submit(_write(10_000))  # after a flush: a new batch, written before stop returns
        await w.stop()
        return lead_store

    lead_store = asyncio.run(run())
    assert len(lead_store.records) == 3 * writer.MAX_BATCH + 6
    assert max(lead_store.batches) <= writer.MAX_BATCH
    assert sum(lead_store.batches) == 3 * writer.MAX_BATCH + 6
    assert lead_store.memory[store.memory_key("t", f"{7:032x}")] == ["lead 7"]


def test_a_full_buffer_drops_and_counts_and_an_unknown_lead_does_not_wait() -> None:
    async def run() -> tuple[metrics.Metrics, store.MemoryStore]:
        m = metrics.Metrics()
        lead_store = store.MemoryStore()
        w = writer.RecordWriter(lead_store, m=m, capacity=4)
        await w.start()
        for i in range(6):  # nothing flushes before the loop yields: 2 over capacity
            w.submit(_write(i))
        await asyncio.wait_for(w.flushed("f" * 32), timeout=1)
        await w.stop()
        return m, lead_store

    m, lead_store = asyncio.run(run())
    exposition = generate_latest(m.registry).decode()
    assert metric_value(exposition, "leadops_records_dropped_total", {"kind": "lead"}) == 2.0
    assert sorted(lead_store.records) == [store.lead_key(f"{i:032x}") for i in range(4)]


class FlakyStore(store.MemoryStore):
    """The dev store, down while `down` is True or for the next `fail` attempts."""

    def __init__(self, *, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.down = False
        self.attempts = 0

    async def save_leads(self, batch: object) -> None:
        assert isinstance(batch, list)
        self.attempts += 1
        if self.down or self.fail > 0:
            self.fail -= 1
            raise store.StoreUnavailable("TimeoutError")
        await super().save_leads(batch)

    async def ping(self) -> bool:
        return not self.down


def _dropped(m: metrics.Metrics) -> float:
    exposition = generate_latest(m.registry).decode()
    return metric_value(exposition, "leadops_records_dropped_total", {"kind": "lead"})


def _run_batch(
    lead_store: store.LeadStore, n: int, *, durability: Durability, **kwargs: object
) -> tuple[metrics.Metrics, list[writer.Stored]]:
    async def run() -> tuple[metrics.Metrics, list[writer.Stored]]:
        m = metrics.Metrics()
        w = writer.RecordWriter(
            lead_store,
            m=m,
            capacity=10_000,
            durability=durability,
            **kwargs,  # type: ignore[arg-type]
        )
        await w.start()
        batches = [w.submit(_write(i)) for i in range(n)]
        stored = []
        for i, batch in enumerate(batches):
            assert batch is not None
            await batch.done.wait()
            stored.append(batch.stored(f"{i:032x}"))
        await w.stop()
        return m, stored

    return asyncio.run(run())


def test_a_failed_batch_is_retried_once_before_it_is_counted_lost() -> None:
    once = FlakyStore(fail=1)
    m, stored = _run_batch(once, 5, durability=Durability.BEST_EFFORT)
    assert (once.attempts, len(once.records), _dropped(m)) == (2, 5, 0.0)
    assert stored == [True] * 5  # the batch's outcome (bestEffort answers do not wait for it)
    twice = FlakyStore(fail=2)
    m, stored = _run_batch(twice, 5, durability=Durability.BEST_EFFORT)
    assert (twice.attempts, len(twice.records), _dropped(m)) == (2, 0, 5.0)
    assert stored == [False] * 5


def test_acknowledged_says_stored_only_for_records_the_store_took() -> None:
    m, stored = _run_batch(store.MemoryStore(), 3, durability=Durability.ACKNOWLEDGED)
    assert stored == [True] * 3
    down = FlakyStore()
    down.down = True
    m, stored = _run_batch(down, 3, durability=Durability.ACKNOWLEDGED)
    assert stored == [False] * 3
    assert down.records == {}
    assert _dropped(m) == 0.0  # refused with a 503, not dropped after a 200


def test_spooled_records_wait_in_the_spool_and_are_replayed_once_the_store_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "WATCH_SECONDS", 0.01)

    async def run() -> None:
        lead_store = FlakyStore()
        lead_store.down = True
        m = metrics.Metrics()
        lead_spool = spool.Spool(tmp_path / "spool", max_bytes=1 << 20)
        w = writer.RecordWriter(
            lead_store, m=m, capacity=100, durability=Durability.SPOOLED, lead_spool=lead_spool
        )
        await w.start()
        batches = [w.submit(_write(i)) for i in range(4)]
        for i, batch in enumerate(batches):
            assert batch is not None
            await batch.done.wait()
            assert batch.stored(f"{i:032x}") == "spooled"
        assert lead_store.records == {}
        assert len(w.spooled_ids) == 4
        assert lead_spool.size() > 0
        lead_store.down = False
        await asyncio.wait_for(_until(lambda: not w.spooled_ids), timeout=5)
        assert sorted(lead_store.records) == [store.lead_key(f"{i:032x}") for i in range(4)]
        assert lead_spool.size() == 0
        await w.stop()
        exposition = generate_latest(m.registry).decode()
        assert metric_value(exposition, "leadops_spool_records") == 0.0
        assert _dropped(m) == 0.0

    asyncio.run(run())


def test_a_full_spool_refuses_and_a_crashed_spool_is_replayed_at_start(tmp_path: Path) -> None:
    down = FlakyStore()
    down.down = True
    tiny = spool.Spool(tmp_path / "tiny", max_bytes=10)
    _, stored = _run_batch(down, 2, durability=Durability.SPOOLED, lead_spool=tiny)
    assert stored == [False, False]

    left = spool.Spool(tmp_path / "left", max_bytes=1 << 20)
    assert left.append([_write(1), _write(2)])
    with (tmp_path / "left" / spool.LIVE).open("ab") as torn:
        torn.write(b'["0000')  # a crash mid-append: never fsync'd, never answered
    lead_store = store.MemoryStore()
    _run_batch(lead_store, 0, durability=Durability.SPOOLED, lead_spool=left)
    assert sorted(lead_store.records) == [store.lead_key(f"{i:032x}") for i in (1, 2)]
    assert left.size() == 0
    assert lead_store.memory[store.memory_key("t", f"{1:032x}")] == ["lead 1"]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


class LostReplyStore(store.MemoryStore):
    """Stores every batch, but the answer to each of the first `lose` calls is lost."""

    def __init__(self, *, lose: int) -> None:
        super().__init__()
        self.lose = lose

    async def save_leads(self, batch: object) -> None:
        assert isinstance(batch, list)
        await super().save_leads(batch)
        if self.lose > 0:
            self.lose -= 1
            raise store.StoreUnavailable("TimeoutError")


def test_a_batch_stored_although_its_write_failed_is_not_counted_lost() -> None:
    lead_store = LostReplyStore(lose=2)
    m, stored = _run_batch(lead_store, 4, durability=Durability.BEST_EFFORT)
    assert stored == [False] * 4  # the writer could not know...
    assert len(lead_store.records) == 4
    assert _dropped(m) == 0.0  # ...but looked them up before counting


def test_a_batch_stored_although_answered_503_is_retracted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer, "WATCH_SECONDS", 0.01)
    lead_store = LostReplyStore(lose=2)
    m, stored = _run_batch(lead_store, 4, durability=Durability.ACKNOWLEDGED)
    assert stored == [False] * 4  # 503: nothing stored...
    assert lead_store.records == {}  # ...and made true once the store answered again
    assert all(messages == [] for messages in lead_store.memory.values())
    exposition = generate_latest(m.registry).decode()
    assert metric_value(exposition, "leadops_records_unconfirmed") == 0.0
