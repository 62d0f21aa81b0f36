"""The write-behind: leads reach the store in batches, waits end once written, stop flushes."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from leadops.scorer import metrics, store, writer
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
        w.start()
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
        w.start()
        for i in range(6):  # nothing flushes before the loop yields: 2 over capacity
            w.submit(_write(i))
        await asyncio.wait_for(w.flushed("f" * 32), timeout=1)
        await w.stop()
        return m, lead_store

    m, lead_store = asyncio.run(run())
    exposition = generate_latest(m.registry).decode()
    assert metric_value(exposition, "leadops_records_dropped_total", {"kind": "lead"}) == 2.0
    assert sorted(lead_store.records) == [store.lead_key(f"{i:032x}") for i in range(4)]
