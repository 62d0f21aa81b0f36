"""The estimated-AUC early warning: Degraded=True/EstimatedAucLow and an Event, never a rollback."""

from __future__ import annotations

from typing import Any

import pytest

from leadops.operator import early_auc, reasons
from leadops.operator.actions import EmitEvent, RollBack, RollOut
from leadops.operator.plan import plan
from leadops.operator.world import ScorerReport, combine

from .worlds import NOW, V1, V2, deployed, entry, spec, world

ENOUGH = early_auc.MIN_LEADS
LOW = reasons.ESTIMATED_AUC_LOW


def scorer(estimate: str, leads: int, *, version: int = V2, health: str = "ok") -> ScorerReport:
    return ScorerReport(
        version=version, health=health, estimated_auc=estimate, estimated_auc_leads=leads
    )


def degraded_low(reason: str = LOW) -> dict[str, Any]:
    return {"conditions": [{"type": reasons.DEGRADED, "status": "True", "reason": reason}]}


# (name, spec kwargs, world, Degraded (status, reason), Warning Events with reason LOW)
TABLE: list[tuple[str, dict[str, Any], Any, tuple[str, str], int]] = [
    (
        "estimate below minAuc on enough leads: Degraded and one Warning Event",
        {},
        world(entry(V2), deployment=deployed(V2), scorer=scorer("0.6500", ENOUGH)),
        ("True", LOW),
        1,
    ),
    (
        "too few leads: nothing said, whatever the estimate",
        {},
        world(entry(V2), deployment=deployed(V2), scorer=scorer("0.5100", ENOUGH - 1)),
        ("False", reasons.AS_EXPECTED),
        0,
    ),
    (
        "estimate at minAuc: as expected",
        {},
        world(entry(V2), deployment=deployed(V2), scorer=scorer("0.7000", 5 * ENOUGH)),
        ("False", reasons.AS_EXPECTED),
        0,
    ),
    (
        "the LeadModel's own minAuc is the bar",
        {"gates": {"minAuc": "0.60"}},
        world(entry(V2), deployment=deployed(V2), scorer=scorer("0.6500", ENOUGH)),
        ("False", reasons.AS_EXPECTED),
        0,
    ),
    (
        "already reported: still Degraded, no second Event",
        {},
        world(
            entry(V2),
            deployment=deployed(V2),
            scorer=scorer("0.6500", ENOUGH),
            status=degraded_low(),
        ),
        ("True", LOW),
        0,
    ),
    (
        "Degraded for another reason before: the Event is new",
        {},
        world(
            entry(V2),
            deployment=deployed(V2),
            scorer=scorer("0.6500", ENOUGH),
            status=degraded_low(reasons.HIGH_DRIFT),
        ),
        ("True", LOW),
        1,
    ),
    (
        "an estimate of the version rolled out of is not blamed on the serving one",
        {},
        world(
            entry(V1),
            entry(V2),
            deployment=deployed(V2, previous=V1),
            scorer=scorer("0.5", ENOUGH, version=V1),
        ),
        ("False", reasons.AS_EXPECTED),
        0,
    ),
    (
        "no estimate from the scorer (an older scorer, or no calibration map)",
        {},
        world(entry(V2), deployment=deployed(V2), scorer=scorer("", 0)),
        ("False", reasons.AS_EXPECTED),
        0,
    ),
]


@pytest.mark.parametrize(
    ("name", "spec_kw", "obs", "want", "warnings"), TABLE, ids=[t[0] for t in TABLE]
)
def test_early_auc_table(
    name: str, spec_kw: dict[str, Any], obs: Any, want: tuple[str, str], warnings: int
) -> None:
    p = plan(spec(**spec_kw), obs, NOW)
    degraded = next(c for c in p.conditions if c.type == reasons.DEGRADED)
    assert (degraded.status, degraded.reason) == want, name
    said = [e for e in p.of(EmitEvent) if e.reason == LOW]
    assert len(said) == warnings, name
    assert all(e.type == "Warning" for e in said)
    assert not any(isinstance(a, RollBack | RollOut) for a in p.actions), name


def test_just_after_a_promotion_a_low_estimate_warns_and_never_rolls_back() -> None:
    """The predecessor is there to go back to, and the estimate is far below: still no move."""
    obs = world(
        entry(V1, promoted="2026-11-25T06:00:00Z"),
        entry(V2, promoted="2026-11-26T11:00:00Z"),
        deployment=deployed(V2, previous=V1),
        scorer=scorer("0.5200", 10 * ENOUGH),
    )
    p = plan(spec(), obs, NOW)
    assert not any(isinstance(a, RollBack | RollOut) for a in p.actions)
    [event] = [e for e in p.of(EmitEvent) if e.reason == LOW]
    assert "0.5200" in event.message
    assert "minAuc 0.70" in event.message
    assert str(V2) in event.message
    assert (p.status.serving_version, p.status.estimated_auc) == (str(V2), "0.5200")
    assert p.status.estimated_auc_leads == 10 * ENOUGH
    assert not any(e.rolled_back for e in obs.registry)


def test_status_shows_the_estimate_even_below_the_minimum_leads() -> None:
    obs = world(entry(V2), deployment=deployed(V2), scorer=scorer("0.8123", 120))
    status = plan(spec(), obs, NOW).status
    assert (status.estimated_auc, status.estimated_auc_leads) == ("0.8123", 120)
    wire = status.model_dump(by_alias=True, mode="json")
    assert (wire["estimatedAuc"], wire["estimatedAucLeads"]) == ("0.8123", 120)


def test_pods_estimates_combine_weighted_by_their_leads() -> None:
    got = combine(
        [
            scorer("0.60", 300),
            scorer("0.80", 100),
            scorer("", 0),  # no estimate yet: counts for nothing
            scorer("nan", 50),  # not a number: ignored
            scorer("0.10", 900, version=V1),  # an old Pod mid-rollout: another model
        ],
        asked=5,
    )
    assert got is not None
    assert (got.version, got.estimated_auc, got.estimated_auc_leads) == (V2, "0.6500", 400)
    assert combine([scorer("", 0)], asked=1) == scorer("", 0)
