"""Write-behind for lead records, with the durability the deployment chose.

Records reach the store in batches: one Redis round trip per batch instead of per lead keeps
scoring throughput near a bare endpoint's. Leads queued together share one `Batch`; what
the answer may say depends on the durability (settings.Durability):

- `acknowledged`: the request waits for its batch (group commit: every request of the batch
  shares one round trip; no linger: the next batch gathers while one is written); `stored`
  is True only once the store acknowledged the record, else the answer is a 503 and nothing
  was stored. While the store is known to be down, batches are refused at once.
- `spooled`: as acknowledged, but a record the store cannot take is appended to the local
  spool (fsync'd) and answered `"spooled"`; replayed once the store answers again. While the
  store is known to be down, batches go straight to the spool (no store timeout to wait).
- `bestEffort`: the request does not wait (`stored` False: queued); a record the store cannot
  take is dropped, counted exactly in `leadops_records_dropped_total{kind="lead"}` and logged.

A batch that fails is retried once (the store's write is idempotent by lead id and refused
past its deadline, so a timed-out attempt can never land later). A batch that still failed
may have been stored all the same (the script ran, its answer was lost: Redis stopped or
killed between the two), so its records stay *unconfirmed* until the store answers again,
and are then looked up: in bestEffort only the missing ones are counted dropped; in
acknowledged mode the ones found are retracted (deleted), because their caller was told
503, nothing stored, and will retry. That is what makes both the 503 and the counter exact.
While an experiment runs, a batch's records get the other variants' models' scores
(leadops.scorer.shadow) just before it is written: one model call per batch, not per lead.
A lead's outcome or message waits for its record's batch, so `POST /v1/outcome` right after
`POST /v1/lead` always finds the lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from leadops.scorer import metrics, shadow, spool, store
from leadops.scorer.settings import Durability

logger = logging.getLogger(__name__)

MAX_BATCH = 256
# bestEffort: after the first record of a batch arrives, wait this long for more: a Redis round
# trip costs far more Python time than a lead, so batches of one would cap scoring throughput.
# Modes whose requests wait for their batch do not linger (see _run).
LINGER_SECONDS = 0.005
# How often the store is pinged while nothing is written (keeps leadops_store_up true to life)
# and, in spooled mode, how often a spool backlog is retried.
WATCH_SECONDS = 1.0
ATTEMPTS = 2
# Unconfirmed records kept for the look-up; past this, lost records are counted at once.
MAX_UNCONFIRMED = 50_000

Stored = Literal[True, "spooled", False]


class Batch:
    """Leads queued together: one Event, set once their records are written, spooled or lost."""

    __slots__ = ("done", "outcomes")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.outcomes: dict[str, Stored] = {}

    def stored(self, lead_id: str) -> Stored:
        return self.outcomes.get(lead_id, False)


class RecordWriter:
    """Buffer of lead records and the task that flushes them to the store (or the spool)."""

    def __init__(
        self,
        lead_store: store.LeadStore,
        *,
        m: metrics.Metrics,
        capacity: int,
        durability: Durability = Durability.BEST_EFFORT,
        lead_spool: spool.Spool | None = None,
    ) -> None:
        if durability is Durability.SPOOLED and lead_spool is None:
            raise ValueError("spooled durability needs a spool")
        self._store = lead_store
        self._metrics = m
        self._capacity = capacity
        self.durability = durability
        self._spool = lead_spool
        self._buffer: list[store.LeadWrite] = []
        self._batch = Batch()
        self._pending: dict[str, Batch] = {}
        # Leads answered "spooled" and not yet replayed: their outcomes must wait, not 404.
        self.spooled_ids: set[str] = set()
        # Records whose write failed but may have landed: looked up once the store answers.
        self._unconfirmed: list[store.LeadWrite] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._store_lock = asyncio.Lock()
        self._last_contact = 0.0  # loop time of the latest store answer (or failure)
        self.healthy = True
        # Seconds spent on batches' shadow scores so far: they hold the event loop, so a lead
        # answered meanwhile waited for them; its variant's answer time leaves them out.
        self.shadow_seconds = 0.0

    @property
    def waits(self) -> bool:
        """Does a request wait for its record's batch before it is answered?"""
        return self.durability is not Durability.BEST_EFFORT

    async def start(self) -> None:
        self._stopping = False
        if self._spool is not None:
            self.spooled_ids = await asyncio.to_thread(self._spool.lead_ids)
            self._metrics.spool_records.set(len(self.spooled_ids))
            if self.spooled_ids:
                logger.warning("%d lead record(s) in the spool to replay", len(self.spooled_ids))
        self._set_health(ok=await self._store.ping())
        self._task = asyncio.create_task(self._run(), name="leadops-record-writer")
        self._watch = asyncio.create_task(self._watch_store(), name="leadops-store-watch")

    async def stop(self) -> None:
        """Flush what is buffered (one last replay too), then stop the tasks."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._unconfirmed:
            self._set_health(ok=await self._store.ping())
            if self.healthy:
                await self._confirm()
            if self._unconfirmed and self.durability is Durability.BEST_EFFORT:
                # Shutting down with the store still away: count them, they are most likely lost.
                self._count_dropped(len(self._unconfirmed))
                self._unconfirmed.clear()
        if self._spool is not None and self.spooled_ids and self.healthy:
            await self._replay()

    def submit(self, write: store.LeadWrite) -> Batch | None:
        """Queue a record; its Batch, or None when the queue is full (not queued)."""
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            if not self.waits:
                self._metrics.records_dropped.labels(kind="lead").inc()
                logger.warning("Dropped a lead record: the write queue is full (store too slow)")
            return None
        if not buffer:
            self._wake.set()
        buffer.append(write)
        batch = self._batch
        self._pending[write.lead_id] = batch
        return batch

    async def flushed(self, lead_id: str) -> None:
        """Return once the lead's record has been written (or spooled, or lost)."""
        batch = self._pending.get(lead_id)
        if batch is not None:
            await batch.done.wait()

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()  # set by the first lead of a batch, or by stop()
                continue
            if len(self._buffer) < MAX_BATCH and not self._stopping:
                # Waiting requests do not linger: a batch forms from the leads that arrive while
                # the previous one is written (group commit without an added delay).
                await asyncio.sleep(0 if self.waits else LINGER_SECONDS)
            taken, batch = self._buffer, self._batch
            self._buffer, self._batch = [], Batch()
            try:
                for start in range(0, len(taken), MAX_BATCH):
                    chunk = taken[start : start + MAX_BATCH]
                    # The experiment's other models' scores, a chunk at a time: a long backlog
                    # holds the event loop for one chunk's worth, not for all of it at once.
                    began = time.perf_counter()
                    shadow.complete(chunk)
                    self.shadow_seconds += time.perf_counter() - began
                    await self._flush(chunk, batch)
            finally:
                for write in taken:
                    self._pending.pop(write.lead_id, None)
                batch.done.set()

    async def _flush(self, chunk: list[store.LeadWrite], batch: Batch) -> None:
        if self.durability is Durability.SPOOLED and not self.healthy:
            lost = await self._to_spool(chunk, batch)  # down: no store timeout to wait for
        elif self.durability is Durability.ACKNOWLEDGED and not self.healthy:
            # Down: refuse at once (503, Retry-After) instead of after two store timeouts;
            # the store watch notices within WATCH_SECONDS when it answers again.
            logger.error("Refused %d lead(s) (503): the store is down", len(chunk))
            return
        else:
            lost = await self._write(chunk)
            outcomes = batch.outcomes
            lost_ids = {write.lead_id for write in lost}
            for write in chunk:
                if write.lead_id not in lost_ids:
                    outcomes[write.lead_id] = True
            if lost and self.durability is Durability.SPOOLED:
                lost = await self._to_spool(lost, batch)
        if not lost:
            return
        if self.durability is not Durability.BEST_EFFORT:
            logger.error("Refused %d lead(s) (503): not stored", len(lost))
            # A keyed lead is never retracted: its caller's retry (same Idempotency-Key, so
            # the same lead id) may already be answered 200 by this or another replica.
            lost = [write for write in lost if not write.keyed]
        room = MAX_UNCONFIRMED - len(self._unconfirmed)
        # Kept for the look-up without their pending shadow scores (done): no lead row or model.
        self._unconfirmed += [replace(write, shadow=None) for write in lost[:room]]
        self._metrics.records_unconfirmed.set(len(self._unconfirmed))
        if lost[room:] and self.durability is Durability.BEST_EFFORT:
            self._count_dropped(len(lost[room:]))

    async def _write(self, chunk: Sequence[store.LeadWrite]) -> list[store.LeadWrite]:
        """Write the records, retrying once; the ones still not written."""
        pending = list(chunk)
        async with self._store_lock:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await self._store.save_leads(pending)
                except store.PartlyWritten as exc:
                    pending = [w for w in pending if w.lead_id not in exc.written]
                    logger.error("Lead batch partly written (%s), attempt %d", exc, attempt)
                except store.StoreUnavailable as exc:
                    logger.warning("Lead batch not written (%s), attempt %d", exc, attempt)
                except Exception:
                    logger.exception("Lead batch not written: unexpected store error")
                else:
                    self._set_health(ok=True)
                    return []
        self._set_health(ok=False)
        return pending

    async def _to_spool(self, writes: list[store.LeadWrite], batch: Batch) -> list[store.LeadWrite]:
        """Append to the spool; [] when spooled, the records themselves when it is full."""
        assert self._spool is not None
        try:
            appended = await asyncio.to_thread(self._spool.append, writes)
        except OSError:
            logger.exception("Spool append failed")
            appended = False
        if not appended:
            logger.error("Spool full or failing: %d lead(s) refused", len(writes))
            return writes
        for write in writes:
            batch.outcomes[write.lead_id] = "spooled"
            self.spooled_ids.add(write.lead_id)
        self._metrics.spool_records.set(len(self.spooled_ids))
        return []

    async def _watch_store(self) -> None:
        """Ping the store while no write tells how it is; replay the spool once it answers."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                idle = loop.time() - self._last_contact >= WATCH_SECONDS
                if idle and not self._store_lock.locked():
                    async with self._store_lock:
                        self._set_health(ok=await self._store.ping())
                if self.healthy and self._unconfirmed:
                    await self._confirm()
                if self.healthy and self.spooled_ids:
                    await self._replay()
            except Exception:  # a spool I/O error, say: log it, and try again next round
                logger.exception("Store watch round failed")

    async def _confirm(self) -> None:
        """Look up unconfirmed records: count the missing (bestEffort) or retract the found."""
        retract = self.durability is not Durability.BEST_EFFORT
        while self._unconfirmed:
            chunk = self._unconfirmed[:MAX_BATCH]
            try:
                async with self._store_lock:
                    found = await self._store.confirm(chunk, retract=retract)
            except store.StoreUnavailable as exc:
                logger.warning("Unconfirmed lead records not looked up yet (%s)", exc)
                return
            del self._unconfirmed[: len(chunk)]
            self._metrics.records_unconfirmed.set(len(self._unconfirmed))
            if retract and found:
                logger.warning("Retracted %d lead record(s) stored after their 503", len(found))
            elif not retract and len(found) < len(chunk):
                self._count_dropped(len(chunk) - len(found))

    def _count_dropped(self, n: int) -> None:
        # Answered 200 already (bestEffort): these records are lost; the counter says how many.
        self._metrics.records_dropped.labels(kind="lead").inc(n)
        logger.error("Dropped %d lead record(s): store unavailable", n)

    async def _replay(self) -> None:
        assert self._spool is not None
        writes = await asyncio.to_thread(self._spool.take)
        for start in range(0, len(writes), MAX_BATCH):
            if await self._write(writes[start : start + MAX_BATCH]):
                return  # the store failed again: the rest stays in the spool for next time
        await asyncio.to_thread(self._spool.replayed)
        self.spooled_ids.difference_update(write.lead_id for write in writes)
        self._metrics.spool_records.set(len(self.spooled_ids))
        if writes:
            logger.info("Replayed %d lead record(s) from the spool", len(writes))

    def _set_health(self, *, ok: bool) -> None:
        self._last_contact = asyncio.get_running_loop().time()
        self.healthy = ok
        self._metrics.store_up.set(1 if ok else 0)
