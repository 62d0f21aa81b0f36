"""Sample-ratio mismatch: do the bucket counts fit the declared weights?

A mismatch means the split itself is broken (a skewed hash, a variant that drops leads, a
bot hitting one arm), so no comparison of the arms can be trusted: the verdict is Invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from scipy import special

THRESHOLD: Final = 0.001  # p below this is a mismatch (a strict bar: checked at every look)


def p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square goodness-of-fit p-value of `counts` against shares `weights` (any scale)."""
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValueError("need one weight per count, at least two")
    if any(w <= 0 for w in weights) or any(c < 0 for c in counts):
        raise ValueError("weights must be positive and counts non-negative")
    total = sum(counts)
    if total == 0:
        return 1.0
    expected = [total * w / sum(weights) for w in weights]
    statistic = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
    # The chi-square survival function directly: scipy.stats.chisquare costs ~1 ms a call.
    return float(special.chdtrc(len(counts) - 1, statistic))


def mismatch(counts: Sequence[int], weights: Sequence[float]) -> bool:
    return p_value(counts, weights) < THRESHOLD
