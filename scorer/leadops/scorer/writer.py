"""Write-behind for lead records: scoring answers at once, records reach the store in batches.

One Redis round trip per batch instead of per lead keeps scoring throughput near
a bare endpoint's. A lead's outcome or message waits for its record's batch, so
`POST /v1/outcome` right after `POST /v1/lead` always finds the lead. If the
store is down the batch is dropped, counted and logged; scoring never fails.
"""

from __future__ import annotations

import asyncio
import logging

from leadops.scorer import metrics, store

logger = logging.getLogger(__name__)

MAX_BATCH = 256
# After the first record of a batch arrives, wait this long for more: a Redis round trip costs
# far more Python time than a lead, so batches of one would cap scoring throughput.
LINGER_SECONDS = 0.005


class RecordWriter:
    """Buffer of lead records and the one task that flushes them to the store.

    Leads buffered together share one Event, set once their batch is written (or dropped):
    a list append and a dict entry per lead on the scoring path, no Event or queue per lead.
    """

    def __init__(self, lead_store: store.LeadStore, *, m: metrics.Metrics, capacity: int) -> None:
        self._store = lead_store
        self._metrics = m
        self._capacity = capacity
        self._buffer: list[store.LeadWrite] = []
        self._buffer_written = asyncio.Event()
        self._pending: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="leadops-record-writer")

    async def stop(self) -> None:
        """Flush what is buffered, then stop the task."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    def submit(self, write: store.LeadWrite) -> None:
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            self._metrics.records_dropped.labels(kind="lead").inc()
            logger.warning("Dropped a lead record: the write queue is full (store too slow)")
            return
        if not buffer:
            self._wake.set()
        buffer.append(write)
        self._pending[write.lead_id] = self._buffer_written

    async def flushed(self, lead_id: str) -> None:
        """Return once the lead's record has been written (or dropped)."""
        event = self._pending.get(lead_id)
        if event is not None:
            await event.wait()

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()  # set by the first lead of a batch, or by stop()
                continue
            if len(self._buffer) < MAX_BATCH and not self._stopping:
                await asyncio.sleep(LINGER_SECONDS)
            taken, written = self._buffer, self._buffer_written
            self._buffer, self._buffer_written = [], asyncio.Event()
            try:
                for start in range(0, len(taken), MAX_BATCH):
                    await self._write(taken[start : start + MAX_BATCH])
            finally:
                for write in taken:
                    self._pending.pop(write.lead_id, None)
                written.set()

    async def _write(self, batch: list[store.LeadWrite]) -> None:
        try:
            await self._store.save_leads(batch)
            self._set_health(ok=True)
        except store.StoreUnavailable as exc:
            self._metrics.records_dropped.labels(kind="lead").inc(len(batch))
            logger.error("Dropped %d lead record(s): store unavailable (%s)", len(batch), exc)
            self._set_health(ok=False)
        except Exception:
            self._metrics.records_dropped.labels(kind="lead").inc(len(batch))
            logger.exception("Dropped %d lead record(s): unexpected store error", len(batch))
            self._set_health(ok=False)

    def _set_health(self, *, ok: bool) -> None:
        self.healthy = ok
        self._metrics.store_up.set(1 if ok else 0)
