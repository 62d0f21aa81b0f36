"""AUC by ranks (against the pairwise definition), its bootstrap interval, log loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leadops.contract import quality


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_the_pairwise_definition_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.round(y * 0.7 + rng.normal(size=500), 1)  # rounding makes many ties
    assert quality.auc(y, s) == pytest.approx(_pairwise_auc(y, s), abs=1e-12)


def test_auc_extremes_and_single_class() -> None:
    assert quality.auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert quality.auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert quality.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        quality.auc([1, 1], [0.2, 0.3])


def test_weighted_auc_with_unit_weights_is_the_auc() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300).astype(np.int64)
    s = np.round(rng.normal(size=300) + y, 1)
    order, group = quality._tie_groups(s)
    weights = np.ones((1, 300))
    assert quality.weighted_auc(y, order, group, weights)[0] == pytest.approx(quality.auc(y, s))
    # Weight 2 on a row equals listing it twice.
    doubled = np.ones((1, 300))
    doubled[0, 7] = 2
    y2, s2 = np.append(y, y[7]), np.append(s, s[7])
    assert quality.weighted_auc(y, order, group, doubled)[0] == pytest.approx(quality.auc(y2, s2))


def test_weighted_auc_without_ties_takes_the_copy_path_and_equals_the_auc() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400).astype(np.int64)
    s = rng.normal(size=400) + y  # distinct scores: one row per tie group
    order, group = quality._tie_groups(s)
    assert int(group[-1]) + 1 == len(s)
    weights = rng.integers(0, 3, size=(3, 400)).astype(np.float64)
    for row in range(3):
        listed = np.repeat(np.arange(400), weights[row].astype(np.int64))
        expected = quality.auc(y[listed], s[listed])
        assert quality.weighted_auc(y, order, group, weights)[row] == pytest.approx(expected)


def test_bootstrap_interval_brackets_the_auc_and_narrows_with_n() -> None:
    rng = np.random.default_rng(5)

    def width(n: int) -> tuple[float, float, float]:
        y = rng.integers(0, 2, n)
        s = y + rng.normal(size=n) * 1.5
        low, high = quality.auc_bootstrap_ci(y, s, resamples=400)
        return low, quality.auc(y, s), high

    low, mid, high = width(400)
    assert low < mid < high
    big_low, big_mid, big_high = width(6400)
    assert big_low < big_mid < big_high
    # Standard error shrinks like 1/sqrt(n): 16x the rows, about a quarter of the width.
    assert 0.15 < (big_high - big_low) / (high - low) < 0.4


def test_logloss() -> None:
    assert quality.logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert quality.logloss([1], [1.0]) < 1e-12
    assert quality.logloss([1], [0.0]) == pytest.approx(-math.log(1e-15))
