"""The matured-AUC guard's verdict: which leads it counts, the one look, and its error rates."""

from __future__ import annotations

import numpy as np
import pytest
from bench import matured_auc as simulation

from leadops.stats import matured_auc, paired_auc
from leadops.stats.matured_auc import GuardLead, Outcome, Settings
from leadops.stats.maturity import DAY

WINDOW = 14 * DAY


def _settings(**changes: float) -> Settings:
    base: dict[str, float] = {
        "min_leads": 200,
        "min_conversions": 20,
        "max_drop": 0.02,
        "alpha": 0.05,
        "window_seconds": WINDOW,
    }
    return Settings(**(base | changes))  # type: ignore[arg-type]


def _leads(
    n: int, *, seed: int, serving_noise: float, previous_noise: float, start: float = 0.0
) -> list[GuardLead]:
    """`n` leads a second apart from `start`, a third converting a day after; each model's
    score is the label plus its own noise (more noise: a lower AUC)."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 1 / 3
    return [
        GuardLead(
            scored_at=start + i,
            serving_score=float(labels[i] + serving_noise * rng.standard_normal()),
            previous_score=float(labels[i] + previous_noise * rng.standard_normal()),
            converted_at=start + i + DAY if labels[i] else None,
        )
        for i in range(n)
    ]


def test_collects_until_both_minimums_of_matured_leads() -> None:
    leads = _leads(300, seed=1, serving_noise=1.0, previous_noise=1.0)
    # Nothing is matured yet: every lead is younger than the window.
    young = matured_auc.evaluate(leads, _settings(), now=WINDOW - 1)
    assert young.outcome is Outcome.COLLECTING
    assert young.leads == 0
    # The first 150 leads matured: fewer than minLeads.
    some = matured_auc.evaluate(leads, _settings(), now=WINDOW + 149)
    assert some.outcome is Outcome.COLLECTING
    assert some.leads == 150
    assert not some.final
    # Enough leads but too few conversions.
    few = matured_auc.evaluate(leads, _settings(min_conversions=1000), now=WINDOW + 10_000)
    assert few.outcome is Outcome.COLLECTING
    assert few.leads == 300


def test_a_conversion_after_the_window_is_not_the_leads() -> None:
    lead = GuardLead(scored_at=0.0, serving_score=0.5, previous_score=0.5, converted_at=WINDOW + 1)
    assert not matured_auc.converted(lead, window_seconds=WINDOW)
    inside = GuardLead(scored_at=0.0, serving_score=0.5, previous_score=0.5, converted_at=WINDOW)
    assert matured_auc.converted(inside, window_seconds=WINDOW)


def test_one_look_on_the_first_matured_leads_reaching_the_minimums() -> None:
    leads = _leads(1000, seed=2, serving_noise=1.0, previous_noise=1.0)
    first = matured_auc.evaluate(leads, _settings(), now=WINDOW + 999)
    later = matured_auc.evaluate(leads, _settings(), now=WINDOW + 10 * DAY)
    assert first.final
    assert first == later  # later leads never move the verdict
    assert first.leads == 200
    taken = sorted(leads, key=lambda x: x.scored_at)[:200]
    labels = [matured_auc.converted(x, window_seconds=WINDOW) for x in taken]
    expected = paired_auc.compare(
        labels,
        [x.previous_score for x in taken],
        [x.serving_score for x in taken],
        level=0.95,
    )
    assert first.difference == pytest.approx(expected.difference)
    assert first.ci_high == pytest.approx(expected.ci_high)
    assert first.serving_auc == pytest.approx(expected.auc_b)
    assert first.previous_auc == pytest.approx(expected.auc_a)


def test_drop_when_the_upper_bound_is_below_minus_max_drop() -> None:
    worse = _leads(2000, seed=3, serving_noise=2.0, previous_noise=0.5)
    verdict = matured_auc.evaluate(worse, _settings(min_leads=2000), now=WINDOW + 3000)
    assert verdict.outcome is Outcome.DROP
    assert verdict.ci_high is not None
    assert verdict.ci_high < -0.02
    assert verdict.serving_auc is not None
    assert verdict.previous_auc is not None
    assert verdict.serving_auc < verdict.previous_auc


def test_no_drop_when_the_interval_reaches_above_minus_max_drop() -> None:
    better = _leads(2000, seed=4, serving_noise=0.5, previous_noise=2.0)
    assert matured_auc.evaluate(better, _settings(), now=WINDOW + 3000).outcome is Outcome.NO_DROP
    # A small drop, within maxDrop: its interval reaches above -maxDrop.
    verdict = matured_auc.decide(
        [True, False] * 100,
        [0.9, 0.1] * 99 + [0.1, 0.9],
        [0.9, 0.1] * 100,
        _settings(max_drop=0.05),
    )
    assert verdict.difference is not None
    assert -0.05 < verdict.difference < 0
    assert verdict.outcome is Outcome.NO_DROP


def test_one_class_only_is_inconclusive() -> None:
    verdict = matured_auc.decide([False] * 10, [0.1] * 10, [0.2] * 10, _settings(min_leads=10))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.final


@pytest.mark.parametrize(
    "changes",
    [{"min_leads": 1}, {"min_conversions": 0}, {"alpha": 0.0}, {"alpha": 1.0}, {"max_drop": -0.1}],
)
def test_refuses_meaningless_settings(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        _settings(**changes)


def test_equal_models_are_rolled_back_less_often_than_alpha_in_200_runs() -> None:
    """The simulation of bench/matured_auc.py at the spec's defaults: an equal model is
    rolled back in at most alpha of 200 runs (with maxDrop 0 too, the test's own rate)."""
    scenario = simulation.Scenario()
    rate = simulation.rollback_rate(scenario, serving_auc=0.75, runs=200, seed=1)
    strict = simulation.rollback_rate(
        simulation.Scenario(max_drop=0.0), serving_auc=0.75, runs=200, seed=1
    )
    assert rate <= scenario.alpha
    assert strict <= scenario.alpha


def test_a_planted_drop_of_005_is_detected_once_min_leads_mature() -> None:
    scenario = simulation.Scenario(min_leads=4000, min_conversions=200)
    power = simulation.rollback_rate(scenario, serving_auc=0.70, runs=200, seed=2)
    assert power >= 0.8
