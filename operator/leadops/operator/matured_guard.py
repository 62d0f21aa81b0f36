"""The matured-AUC guard's decision: roll back a promoted version worse than its predecessor.

After a promotion the scorers score every lead with both versions (`builders`: the previous
version's artifact and LEADOPS_MATURED_AUC) and, once enough leads have matured, compute the
paired AUC difference with its interval (`leadops.stats.matured_auc`, in the scorer: this image
has no numpy). The operator reads the verdict from every ready Pod (`ask_scorers`) and, when
the interval's upper bound of (serving - previous) is below -maxDrop, rolls back through the
ordinary rollback path (`plan.rollout_failure` -> `plan.roll_back`): the version is marked
rolled back, so it is never promoted again until a person allows it. Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from leadops.operator.spec import LeadModelSpec, MaturedAucAction, MaturedAucStatus
from leadops.operator.world import MaturedReport, Observed

DROP = "Drop"


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def drop(lm: LeadModelSpec, obs: Observed) -> str | None:
    """Why the serving version is rolled back, when the scorers' verdict on it is a drop
    beyond spec.guards.maturedAuc.maxDrop; None otherwise."""
    guard = lm.guards.matured_auc
    d = obs.deployment
    found = obs.scorer.matured if obs.scorer is not None else None
    promotion = d.promotion
    if (
        guard.action is MaturedAucAction.OFF
        or found is None
        or found.state != DROP
        or promotion is None
    ):
        return None
    # The verdict of this promotion: a later one (or an older Pod's) is not about it.
    if found.serving_version != d.version or found.previous_version != promotion.previous:
        return None
    high = _decimal(found.ci_high)
    if high is None or high >= -guard.max_drop_value:
        return None
    return message(found, max_drop=guard.max_drop)


def message(found: MaturedReport, *, max_drop: str) -> str:
    """Both AUCs and the interval, in words."""
    level = ""
    alpha = _decimal(found.alpha)
    if alpha is not None:
        level = f"{(1 - alpha) * 100:f}".rstrip("0").rstrip(".") + " % "
    return (
        f"matured AUC of version {found.serving_version} is {found.serving_auc} against "
        f"{found.previous_auc} of version {found.previous_version} on the same "
        f"{found.leads} matured leads ({found.conversions} conversions): difference "
        f"{found.difference}, {level}interval [{found.ci_low}, {found.ci_high}], below "
        f"-maxDrop -{max_drop}"
    )


def entry(found: MaturedReport) -> MaturedAucStatus:
    return MaturedAucStatus(
        version=str(found.serving_version),
        previous_version=str(found.previous_version),
        verdict=found.state,
        auc=found.serving_auc,
        previous_auc=found.previous_auc,
        difference=found.difference,
        ci_low=found.ci_low,
        ci_high=found.ci_high,
        leads=found.leads,
        conversions=found.conversions,
    )


def status(
    lm: LeadModelSpec, obs: Observed, previous: Sequence[Mapping[str, Any]]
) -> list[MaturedAucStatus]:
    """status.maturedAuc: the verdict the scorers report now, then the ones kept from earlier
    passes (a rolled-back version's Pods are gone, its verdict stays), of versions still in
    the registry, newest first, at most history.limit."""
    kept: list[MaturedAucStatus] = []
    for item in previous:
        try:
            kept.append(MaturedAucStatus.model_validate(item))
        except ValidationError:
            continue  # written by another operator version: rebuilt from the next verdict
    found = obs.scorer.matured if obs.scorer is not None else None
    if found is not None:
        now = entry(found)
        kept = [now, *(k for k in kept if k.version != now.version)]
    known = {str(e.version) for e in obs.registry}
    return [k for k in kept if k.version in known][: lm.history.limit]
