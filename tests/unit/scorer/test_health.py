"""Health precedence: the worst problem wins, in the documented order."""

from __future__ import annotations

import pytest

from leadops.scorer.health import Health, Observed, Thresholds, decide

T = Thresholds()
GOOD = Observed(loaded=True, auc=0.8, drift_score=0.5, age_hours=1.0)


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (GOOD, Health.OK),
        (Observed(loaded=False, error=True, auc=0.1), Health.NO_MODEL),
        (Observed(loaded=True, error=True, auc=0.1, drift_score=9, age_hours=99), Health.ERROR),
        (Observed(loaded=True, auc=0.5, drift_score=9, age_hours=99), Health.CRITICAL_LOW_AUC),
        (Observed(loaded=True, auc=0.6, drift_score=9, age_hours=99), Health.WARNING_LOW_AUC),
        (Observed(loaded=True, auc=0.8, drift_score=3.5, age_hours=99), Health.WARNING_HIGH_DRIFT),
        (Observed(loaded=True, auc=0.8, drift_score=1.0, age_hours=49), Health.WARNING_STALE),
        # Boundaries: the guide's ranges are "< 0.55", "0.55-0.65", "> 3.0", "> 48 h".
        (Observed(loaded=True, auc=0.55), Health.WARNING_LOW_AUC),
        (Observed(loaded=True, auc=0.65), Health.OK),
        (Observed(loaded=True, auc=0.8, drift_score=3.0), Health.OK),
        (Observed(loaded=True, auc=0.8, age_hours=48.0), Health.OK),
        # Unknown drift (too few leads yet) is not a problem.
        (Observed(loaded=True, auc=0.8, drift_score=None, age_hours=1), Health.OK),
    ],
)
def test_precedence(observed: Observed, expected: Health) -> None:
    assert decide(observed, T) is expected


def test_thresholds_are_configurable() -> None:
    strict = Thresholds(auc_warning=0.9, auc_critical=0.85, drift_warning=0.4, stale_hours=0.5)
    assert decide(GOOD, strict) is Health.CRITICAL_LOW_AUC
    assert decide(Observed(loaded=True, auc=0.87), strict) is Health.WARNING_LOW_AUC
    assert decide(Observed(loaded=True, auc=0.95, drift_score=0.5), strict) is (
        Health.WARNING_HIGH_DRIFT
    )
    assert decide(Observed(loaded=True, auc=0.95, age_hours=1), strict) is Health.WARNING_STALE
