"""Look at a LeadModel again after a delay, without kopf's retry machinery.

kopf retries a handler only when it raises, and logs every retry as an ERROR ("failed
temporarily"); waiting for a rollout is normal, not an error. One thread keeps a heap of
(when, namespace, name), the earliest request per LeadModel wins, and due ones are handed to
`call` one at a time (reconcile takes the LeadModel's own lock).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Wakeups:
    def __init__(self, call: Callable[[str, str], None]) -> None:
        self._call = call
        self._heap: list[tuple[float, str, str]] = []
        self._due: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def after(self, namespace: str, name: str, delay: float) -> None:
        at = time.monotonic() + delay
        key = (namespace, name)
        with self._cond:
            if key in self._due and self._due[key] <= at:
                return
            self._due[key] = at
            heapq.heappush(self._heap, (at, namespace, name))
            self._cond.notify()

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="leadops-wakeups", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._due.clear()
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=10)

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def _next(self) -> tuple[str, str] | None:
        with self._cond:
            while not self._stopping:
                if self._heap:
                    at, namespace, name = self._heap[0]
                    wait = at - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        if self._due.get((namespace, name)) != at:
                            continue  # superseded by an earlier request
                        del self._due[(namespace, name)]
                        return namespace, name
                    self._cond.wait(timeout=wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while (key := self._next()) is not None:
            try:
                self._call(*key)
            except Exception:  # the resync and the watches come back anyway
                logger.warning("look-again at %s/%s failed", *key, exc_info=True)
