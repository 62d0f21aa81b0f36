"""The AUC to expect from the serving model's recent leads, before their outcomes arrive (CBPE).

Scoring only writes the lead's score into a fixed-size ring buffer (one array store, no lock:
the event loop scores one lead at a time). The estimate itself (`leadops.stats.cbpe`: the
artifact's calibration map applied to those scores) is computed when someone asks
(/ops/model-status?estimate=true, a metrics scrape) and cached until new leads arrive.
A model without a calibration map (trained before it was recorded) has no estimate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from leadops.contract.artifact import Calibration
from leadops.stats import cbpe


@dataclass(frozen=True, slots=True)
class Estimate:
    """The estimated AUC and how many recent leads it rests on."""

    auc: float
    leads: int


class ScoreWindow:
    """The last `window` scores of one model version and the AUC they let one expect."""

    def __init__(self, calibration: Calibration | None, *, window: int, min_leads: int) -> None:
        self._calibration = calibration
        # Without a map there is nothing to estimate: keep no buffer at all.
        self._buffer = np.zeros(window if calibration is not None else 0, dtype=np.float64)
        self._window = window
        self._min_leads = min(min_leads, window)
        self._seen = 0
        self._estimated_at_seen = -1
        self._estimate: Estimate | None = None
        self._lock = threading.Lock()

    def add(self, score: float) -> None:
        if self._calibration is None:
            return
        self._buffer[self._seen % self._window] = score
        self._seen += 1

    @property
    def seen(self) -> int:
        return self._seen

    def scores(self) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        """The scores in the window (in buffer order; the estimate does not depend on order)."""
        return self._buffer[: min(self._seen, self._window)].copy()

    def estimate(self) -> Estimate | None:
        """The estimate over the window, None without a calibration map, before `min_leads`
        leads were scored, or when the map expects only conversions (or none) on them."""
        calibration, seen = self._calibration, self._seen
        if calibration is None or seen < self._min_leads:
            return None
        if seen != self._estimated_at_seen:
            with self._lock:
                scores = self.scores()
                auc = cbpe.estimate(calibration.scores, calibration.probabilities, scores)
                self._estimate = None if auc is None else Estimate(auc=auc, leads=scores.size)
                self._estimated_at_seen = seen
        return self._estimate
