"""How long Redis keeps what the scorer stores, and the trim of the export indexes.

A lead record and its chat memory expire `lead_seconds` after their last write (the TTL is
set by the same script as the write, so no write is left without one); recording an outcome
re-arms the record's TTL to `outcome_seconds` (training reads it that long). Chat memory is
not extended: training never reads it. The indexes (outcomes, experiment leads) list ids, not
records; the trimmer removes the ids whose records are gone, in batches of at most
TRIM_BATCH, so they shrink with the records (the exports already skip a missing record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# Ids checked and removed per round trip: one ZRANGE, one pipeline of EXISTS, one ZREM.
TRIM_BATCH = 1000
# The trim runs every tenth of the shortest retention, within these bounds.
TRIM_EVERY_MIN_SECONDS = 1.0
TRIM_EVERY_MAX_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Retention:
    """Seconds a record is kept after its last write; 0 keeps it until erased."""

    lead_seconds: int = 0
    outcome_seconds: int = 0

    def problems(self) -> list[str]:
        """Why this pair cannot hold (a lead with an outcome must outlive one without)."""
        if self.lead_seconds == 0 and self.outcome_seconds > 0:
            return [
                "outcome retention needs lead retention (a kept lead would expire once labelled)"
            ]
        if 0 < self.outcome_seconds < self.lead_seconds:
            return ["outcome retention must be at least the lead retention"]
        return []

    @property
    def expires(self) -> bool:
        return self.lead_seconds > 0

    @property
    def trim_every_seconds(self) -> float:
        shortest = min(s for s in (self.lead_seconds, self.outcome_seconds) if s > 0)
        return min(max(shortest / 10, TRIM_EVERY_MIN_SECONDS), TRIM_EVERY_MAX_SECONDS)


KEEP_FOREVER = Retention()


class Trimmable(Protocol):
    async def trim_indexes(self) -> int:
        """Remove the ids of expired records from the export indexes; how many were removed."""
        ...


class Trimmer:
    """The background task that keeps the export indexes to the records that still exist."""

    def __init__(self, target: Trimmable, *, every: float) -> None:
        self._target = target
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leadops-retention-trim")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                removed = await self._target.trim_indexes()
            except Exception as exc:  # the next round retries; trimming loses nothing
                logger.warning("Export indexes not trimmed (%s)", type(exc).__name__)
                continue
            if removed:
                logger.info("Trimmed %d expired lead ids from the export indexes", removed)
