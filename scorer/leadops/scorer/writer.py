"""Write-behind for lead records: scoring answers at once, records reach the store in batches.

One Redis round trip per batch instead of per lead keeps scoring throughput near
a bare endpoint's. A lead's outcome or message waits for its record's batch, so
`POST /v1/outcome` right after `POST /v1/lead` always finds the lead. If the
store is down the batch is dropped, counted and logged; scoring never fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from leadops.scorer import metrics, store

logger = logging.getLogger(__name__)

MAX_BATCH = 256
# After the first record of a batch arrives, wait this long for more: a Redis round trip costs
# far more Python time than a lead, so batches of one would cap scoring throughput.
LINGER_SECONDS = 0.005


class RecordWriter:
    """Queue of lead records and the one task that flushes them to the store."""

    def __init__(self, lead_store: store.LeadStore, *, m: metrics.Metrics, capacity: int) -> None:
        self._store = lead_store
        self._metrics = m
        self._queue: asyncio.Queue[store.LeadWrite] = asyncio.Queue(maxsize=capacity)
        self._pending: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leadops-record-writer")

    async def stop(self) -> None:
        """Flush what is queued, then stop the task."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, write: store.LeadWrite) -> None:
        try:
            self._queue.put_nowait(write)
        except asyncio.QueueFull:
            self._metrics.records_dropped.labels(kind="lead").inc()
            logger.warning("Dropped a lead record: the write queue is full (store too slow)")
            return
        self._pending[write.lead_id] = asyncio.Event()

    async def flushed(self, lead_id: str) -> None:
        """Return once the lead's record has been written (or dropped)."""
        event = self._pending.get(lead_id)
        if event is not None:
            await event.wait()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._queue.qsize() < MAX_BATCH - 1:
                await asyncio.sleep(LINGER_SECONDS)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
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
            finally:
                for write in batch:
                    event = self._pending.pop(write.lead_id, None)
                    if event is not None:
                        event.set()
                    self._queue.task_done()

    def _set_health(self, *, ok: bool) -> None:
        self.healthy = ok
        self._metrics.store_up.set(1 if ok else 0)
