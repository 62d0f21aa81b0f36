"""Score PSI between two variants: a guardrail on how differently their models score.

Scores are probabilities, binned in BINS equal-width bins on [0, 1]; the PSI formula is the
drift check's (leadops.contract.drift.psi, empty bins floored). It is biased upwards at small
samples (about BINS / n), so it is only judged from MIN_LEADS leads per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from leadops.contract import drift

BINS: Final = 10
MIN_LEADS: Final = 200


def shares(scores: Sequence[float]) -> list[float]:
    counts = [0] * BINS
    for score in scores:
        counts[min(BINS - 1, max(0, int(score * BINS)))] += 1
    n = len(scores)
    return [c / n for c in counts] if n else [0.0] * BINS


def score_psi(control: Sequence[float], variant: Sequence[float]) -> float | None:
    """PSI of the variant's scores against the control's; None below MIN_LEADS either side."""
    if len(control) < MIN_LEADS or len(variant) < MIN_LEADS:
        return None
    return drift.psi(shares(control), shares(variant))
