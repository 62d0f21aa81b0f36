"""DeLong's paired AUC comparison against the definition computed the slow way."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from leadops.contract import quality
from leadops.stats import paired_auc


def _kernel(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _brute_delong(
    y: npt.NDArray[np.int64], a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> tuple[float, float, float]:
    """DeLong et al. (1988) straight from the paper's structural components, O(m n)."""
    comps = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        v10 = np.array([np.mean([_kernel(p, q) for q in neg]) for p in pos])
        v01 = np.array([np.mean([_kernel(p, q) for p in pos]) for q in neg])
        comps.append((v10, v01))
    (a10, a01), (b10, b01) = comps
    m, n = len(a10), len(a01)
    var = (
        np.var(a10, ddof=1) / m + np.var(a01, ddof=1) / n
        + np.var(b10, ddof=1) / m + np.var(b01, ddof=1) / n
        - 2 * (np.cov(a10, b10)[0, 1] / m + np.cov(a01, b01)[0, 1] / n)
    )  # fmt: skip
    return float(a10.mean()), float(b10.mean()), float(np.sqrt(var))


def test_matches_the_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    a = np.round(y * 0.4 + rng.random(120), 1)  # rounded: many ties
    b = np.round(y * 0.8 + rng.random(120), 1)
    result = paired_auc.compare(y, a, b)
    auc_a, auc_b, se = _brute_delong(y, a, b)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert result.standard_error == pytest.approx(se, rel=1e-9)
    assert result.difference == pytest.approx(auc_b - auc_a, abs=1e-12)
    assert result.ci_low == pytest.approx(result.difference - 1.959964 * se, abs=1e-6)


def test_auc_is_the_share_of_correctly_ordered_pairs() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.1, 0.4, 0.4, 0.8, 0.7])
    pairs = [_kernel(s[i], s[j]) for i, j in itertools.product(range(6), range(6)) if y[i] > y[j]]
    auc, _, _ = paired_auc.auc_with_components(y, s)
    assert auc == pytest.approx(sum(pairs) / len(pairs))


def test_the_same_model_twice_differs_by_nothing() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + y * 0.3
    result = paired_auc.compare(y, s, s)
    assert result.difference == 0.0
    assert result.standard_error == 0.0
    assert result.p_value == 1.0


def test_a_clearly_better_model_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 2000)
    noise = rng.standard_normal(2000)
    weak, strong = y * 0.3 + noise, y * 1.2 + noise
    result = paired_auc.compare(y, weak, strong)
    assert result.ci_low > 0
    assert result.p_value < 1e-6
    # Pairing: the shared noise makes the difference far more precise than two separate AUCs.
    _, a10, a01 = paired_auc.auc_with_components(y, weak)
    unpaired_se = np.sqrt(2 * (np.var(a10) / len(a10) + np.var(a01) / len(a01)))
    assert result.standard_error < unpaired_se


def test_one_class_only_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        paired_auc.compare([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])


def test_one_models_interval_matches_the_definition_and_a_bootstrap_on_a_large_hold_out() -> None:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 150)
    s = np.round(rng.normal(size=150) + 0.8 * y, 1)  # rounded: ties
    pos, neg = s[y == 1], s[y == 0]
    v10 = np.array([np.mean([_kernel(p, q) for q in neg]) for p in pos])
    v01 = np.array([np.mean([_kernel(p, q) for p in pos]) for q in neg])
    se = np.sqrt(np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg))
    low, high = paired_auc.auc_interval(y, s)
    assert low == pytest.approx(v10.mean() - 1.959964 * se, abs=1e-6)
    assert high == pytest.approx(v10.mean() + 1.959964 * se, abs=1e-6)

    # Training switches from the bootstrap to DeLong above 50,000 hold-out rows: there the
    # two intervals agree to the third decimal.
    y = rng.integers(0, 2, 60_000)
    s = rng.normal(size=60_000) + 1.2 * y
    delong = paired_auc.auc_interval(y, s)
    boot = quality.auc_bootstrap_ci(y, s, resamples=200, seed=1)
    assert delong[0] == pytest.approx(boot[0], abs=1.5e-3)
    assert delong[1] == pytest.approx(boot[1], abs=1.5e-3)
    assert delong[1] - delong[0] > 0.005  # a real interval, not a point


@pytest.mark.parametrize("distinct", [3, 50, 10_000])
def test_midranks_are_scipys_average_ranks(distinct: int) -> None:
    rng = np.random.default_rng(distinct)
    values = rng.integers(0, distinct, size=2000).astype(np.float64)  # ties, or almost none
    assert np.array_equal(paired_auc.midranks(values), stats.rankdata(values))
    assert paired_auc.midranks(np.array([])).shape == (0,)
