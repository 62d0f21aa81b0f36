"""Pacing: an upper bound on the backfill's rate of Redis commands."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Keeps the average rate of Redis commands at or below `max_ops_per_sec` (None: no limit)."""

    def __init__(
        self,
        max_ops_per_sec: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = max_ops_per_sec
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.ops = 0

    def take(self, ops: int) -> None:
        self.ops += ops
        if self.rate is None:
            return
        due = self.started + self.ops / self.rate
        ahead = due - self.clock()
        if ahead > 0:
            self.sleep(ahead)
