"""Model quality on the hold-out: ROC AUC (rank formula, ties averaged), its bootstrap interval,
and log loss. numpy only: no scikit-learn at runtime."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

EPS: Final = 1e-15
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _tie_groups(scores: Floats) -> tuple[Ints, Ints]:
    """Order that sorts `scores`, and for each sorted position the id of its tie group."""
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    starts = np.concatenate(([True], ranked[1:] != ranked[:-1]))
    return order.astype(np.int64), (np.cumsum(starts) - 1).astype(np.int64)


def auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC = P(score of a random positive > a random negative), ties counting one half."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    order, group = _tie_groups(s)
    # Average rank (1-based) of each tie group, then Mann-Whitney U of the positives.
    counts = np.bincount(group)
    ends = np.cumsum(counts)
    mid_rank = ends - (counts - 1) / 2.0
    ranks = mid_rank[group]
    positive_rank_sum = float(ranks[y[order] == 1].sum())
    return (positive_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def weighted_auc(labels: Ints, order: Ints, group: Ints, weights: Floats) -> Floats:
    """AUC for several weightings of the same scored rows at once (weights: k x n)."""
    y = labels[order]
    w = weights[:, order]
    pos = w * (y == 1)
    neg = w * (y == 0)
    n_groups = int(group[-1]) + 1
    k = w.shape[0]
    if n_groups == len(group):  # no tied scores: each group is one row, summing is a copy
        neg_per_group, pos_per_group = neg, pos
    else:
        neg_per_group = np.zeros((k, n_groups))
        pos_per_group = np.zeros((k, n_groups))
        for row in range(k):
            neg_per_group[row] = np.bincount(group, weights=neg[row], minlength=n_groups)
            pos_per_group[row] = np.bincount(group, weights=pos[row], minlength=n_groups)
    neg_below = np.cumsum(neg_per_group, axis=1) - neg_per_group
    wins = (pos_per_group * (neg_below + neg_per_group / 2.0)).sum(axis=1)
    total = pos_per_group.sum(axis=1) * neg_per_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: Floats = wins / total
    return result


def auc_bootstrap_ci(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    chunk: int = 50,
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the AUC (rows resampled with replacement)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n = len(y)
    rng = np.random.default_rng(seed)
    order, group = _tie_groups(s)
    estimates: list[Floats] = []
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        # Multinomial counts = how often each row is drawn in each resample.
        draws = rng.integers(0, n, size=(k, n))
        weights = np.zeros((k, n))
        for row in range(k):
            weights[row] = np.bincount(draws[row], minlength=n)
        estimates.append(weighted_auc(y, order, group, weights))
    values = np.concatenate(estimates)
    values = values[~np.isnan(values)]
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def logloss(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped away from 0 and 1."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
