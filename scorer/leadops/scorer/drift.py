"""The drift score of recently scored leads, kept cheap on the scoring path.

Scoring only copies the lead's feature vector into a ring buffer; the score
itself (the contract's formula against the artifact's training stats) is
computed when someone asks, and cached until new leads arrive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


class DriftWindow:
    """The last `window` feature vectors and their drift score against training."""

    def __init__(
        self,
        *,
        n_features: int,
        window: int,
        min_samples: int,
        compute: Callable[[Matrix], float],
    ) -> None:
        self._buffer = np.full((window, n_features), np.nan, dtype=np.float32)
        self._window = window
        self._min_samples = min(min_samples, window)
        self._compute = compute
        self._seen = 0
        self._scored_at_seen = -1
        self._score: float | None = None
        self._lock = threading.Lock()

    def add(self, vector: npt.NDArray[np.float32]) -> None:
        self._buffer[self._seen % self._window] = vector
        self._seen += 1

    @property
    def seen(self) -> int:
        return self._seen

    def score(self, *, fresh: bool = False) -> float | None:
        """The drift score, None until min_samples leads were scored.

        fresh=False returns the cached value (the scoring path); fresh=True
        recomputes when leads arrived since (status, metrics scrape).
        """
        seen = self._seen
        if seen < self._min_samples:
            return None
        if fresh and seen != self._scored_at_seen:
            with self._lock:
                rows = self._buffer[: min(seen, self._window)].copy()
                self._score = float(self._compute(rows))
                self._scored_at_seen = seen
        return self._score
