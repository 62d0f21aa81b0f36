"""CBPE: the AUC estimated from calibrated scores matches the AUC measured once outcomes arrive."""

from __future__ import annotations

import numpy as np
import pytest

from leadops.contract import quality
from leadops.stats import cbpe


def _leads(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """True conversion probabilities and a model score that ranks them but is miscalibrated."""
    z = rng.normal(shift, 1.0, n)
    truth = 1.0 / (1.0 + np.exp(-(1.3 * z - 1.0)))
    score = truth**0.5  # monotone, so the ranking is right, the probabilities are not
    return truth, score


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shift", [0.0, 0.6, -0.8])
def test_estimate_is_within_002_of_the_auc_measured_later(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    # 20,000 rows each: with 5,000 recent leads even the true probabilities estimate the AUC
    # measured later only to about +-0.02 (the outcomes' own sampling noise).
    truth, score = _leads(rng, 20_000, 0.0)
    held_out_labels = rng.random(truth.size) < truth
    knots = cbpe.fit_isotonic(score, held_out_labels)
    # Recent leads drawn from a shifted population (covariate shift): the AUC changes.
    recent_truth, recent_score = _leads(rng, 20_000, shift)
    estimate = cbpe.expected_auc(recent_score, cbpe.calibrate(*knots, recent_score))
    outcomes = rng.random(recent_truth.size) < recent_truth  # the outcomes that arrive later
    measured = quality.auc(outcomes.astype(int), recent_score)
    assert estimate is not None
    assert abs(estimate - measured) <= 0.02


def test_isotonic_map_is_monotone_bounded_and_small() -> None:
    rng = np.random.default_rng(1)
    truth, score = _leads(rng, 50_000, 0.0)
    xs, ps = cbpe.fit_isotonic(score, rng.random(truth.size) < truth)
    assert len(xs) <= cbpe.MAX_POINTS
    assert xs == sorted(xs)
    assert ps == sorted(ps)
    assert ps[0] >= 0.0
    assert ps[-1] <= 1.0
    # Calibrated: the mapped probability of a score is close to the true one.
    probe = np.quantile(score, [0.1, 0.5, 0.9])
    true_at = probe**2
    assert np.allclose(cbpe.calibrate(xs, ps, probe), true_at, atol=0.04)


def test_expected_auc_of_certain_outcomes_is_the_plain_auc() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.8, 0.2])
    labels = np.array([0, 0, 1, 1, 0, 1])
    assert cbpe.expected_auc(scores, labels) == pytest.approx(quality.auc(labels, scores))


def test_undefined_cases() -> None:
    assert cbpe.expected_auc([], []) is None
    assert cbpe.expected_auc([0.2, 0.4], [1.0, 1.0]) is None  # no expected non-conversions
    with pytest.raises(ValueError, match="same length"):
        cbpe.fit_isotonic([0.1, 0.2], [1])
