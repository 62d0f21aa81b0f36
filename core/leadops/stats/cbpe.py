"""Confidence-based performance estimation: the AUC to expect before outcomes arrive.

NannyML's CBPE idea in a few lines of numpy: calibrate the model's scores on held-out rows with
known outcomes (isotonic regression: monotone, so it keeps the ranking), then treat each recent
lead's calibrated probability p as "p of a conversion and 1 - p of a non-conversion". The ROC
curve built from those expected counts gives the AUC the model should reach on these leads,
provided the score-to-probability relation still holds (it measures the effect of covariate
shift, not of concept drift: a warning signal, never grounds for a rollback by itself).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MAX_POINTS: Final = 256  # the artifact carries the map; more points add bytes, not accuracy


def fit_isotonic(
    scores: npt.ArrayLike, labels: npt.ArrayLike, *, max_points: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """Monotone map score -> conversion probability (pool-adjacent-violators), as knots."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or s.size == 0:
        raise ValueError("scores and labels must be non-empty and the same length")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # Blocks of (mean score, mean label, weight); merge while a block's mean label is below
    # the one before it.
    means: list[float] = []
    weights: list[float] = []
    xs: list[float] = []
    for score, label in zip(s.tolist(), y.tolist(), strict=True):
        means.append(label)
        weights.append(1.0)
        xs.append(score)
        while len(means) > 1 and means[-2] >= means[-1]:
            w = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            xs[-2] = (xs[-2] * weights[-2] + xs[-1] * weights[-1]) / w
            weights[-2] = w
            del means[-1], weights[-1], xs[-1]
    if len(xs) > max_points:
        pick = np.unique(np.linspace(0, len(xs) - 1, max_points).round().astype(int))
        xs = [xs[i] for i in pick]
        means = [means[i] for i in pick]
    return [round(x, 6) for x in xs], [round(m, 6) for m in means]


def calibrate(
    knots_x: list[float], knots_p: list[float], scores: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Calibrated probabilities for `scores` (linear between knots, flat beyond them)."""
    return np.interp(np.asarray(scores, dtype=np.float64), knots_x, knots_p)


def expected_auc(scores: npt.ArrayLike, probabilities: npt.ArrayLike) -> float | None:
    """AUC of `scores` if each lead converts with its calibrated probability; None if undefined."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    positives, negatives = p.sum(), (1.0 - p).sum()
    if s.size == 0 or positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    # One ROC point per distinct score, so tied scores make one diagonal step, as in the AUC.
    last_of_group = np.append(s[1:] != s[:-1], True)
    tpr = np.concatenate([[0.0], np.cumsum(p)[last_of_group] / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1.0 - p)[last_of_group] / negatives])
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def estimate(knots_x: list[float], knots_p: list[float], scores: npt.ArrayLike) -> float | None:
    """The AUC to expect on `scores` (recent leads) under the artifact's calibration map."""
    return expected_auc(scores, calibrate(knots_x, knots_p, scores))
