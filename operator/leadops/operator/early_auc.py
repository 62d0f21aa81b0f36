"""The early warning before outcomes arrive: the scorer's estimated AUC against spec.gates.minAuc.

The scorers estimate the AUC their model should reach on its recent leads from the artifact's
calibration map (CBPE, `leadops.stats.cbpe`); the operator combines the Pods' estimates
(`world.combine`) and, once they rest on MIN_LEADS leads, says Degraded=True/EstimatedAucLow
with a Warning Event when the estimate is below minAuc. It never rolls back: the estimate sees
the leads changing (covariate shift), not the outcomes, so a person decides. Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from leadops.operator import conditions, reasons
from leadops.operator.actions import EmitEvent
from leadops.operator.spec import Condition, LeadModelSpec
from leadops.operator.world import ScorerReport

# Leads the combined estimate must rest on before it is acted on. With a third of the leads
# converting, the estimate's spread over 500 leads is about +-0.02 AUC: the accuracy the
# estimate is tested to (tests/unit/stats/test_cbpe.py); fewer leads would warn on noise.
MIN_LEADS: Final = 500


def estimate(report: ScorerReport | None) -> tuple[Decimal, int] | None:
    """The combined estimate and its leads, None when there is none or too few leads."""
    if report is None or report.estimated_auc_leads < MIN_LEADS:
        return None
    try:
        value = Decimal(report.estimated_auc)
    except InvalidOperation:
        return None
    return (value, report.estimated_auc_leads) if value.is_finite() else None


def low(lm: LeadModelSpec, report: ScorerReport | None) -> Condition | None:
    """Degraded=True/EstimatedAucLow when the serving scorers' estimate is below minAuc."""
    found = estimate(report)
    if found is None or report is None:
        return None
    value, leads = found
    if value >= lm.gates.min_auc_value:
        return None
    return conditions.true(
        reasons.DEGRADED,
        reasons.ESTIMATED_AUC_LOW,
        f"estimated AUC {value} on the last {leads} leads of version {report.version} is below "
        f"minAuc {lm.gates.min_auc} (from the model's calibration, before outcomes arrive; "
        "nothing is rolled back: retrain, or roll back by hand)",
    )


def events(
    desired: Sequence[Condition], previous: Sequence[Mapping[str, Any]]
) -> tuple[EmitEvent, ...]:
    """A Warning Event when Degraded turns to EstimatedAucLow; once, not every pass."""
    degraded = next((c for c in desired if c.type == reasons.DEGRADED), None)
    if degraded is None or degraded.reason != reasons.ESTIMATED_AUC_LOW:
        return ()
    before = next((c for c in previous if c.get("type") == reasons.DEGRADED), None)
    if before is not None and before.get("reason") == reasons.ESTIMATED_AUC_LOW:
        return ()
    return (EmitEvent("Warning", reasons.ESTIMATED_AUC_LOW, degraded.message),)
