"""Each named step of the planner as its own table: spec x world x clock -> its decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from leadops.contract import health
from leadops.operator import builders, plan, reasons, registry
from leadops.operator.actions import (
    EmitEvent,
    Ensure,
    GarbageCollect,
    MarkVersion,
    Plan,
    RollBack,
    RollOut,
)
from leadops.operator.rollout import Blocked, RolloutState
from leadops.operator.spec import Verdict
from leadops.operator.world import ScorerReport

from .worlds import NOW, V1, V2, V3, deployed, entry, spec, world

PDE = reasons.PROGRESS_DEADLINE_EXCEEDED
BACK = builders.ROLLOUT_BACK


@pytest.mark.parametrize(
    ("name", "obs", "want"),
    [
        ("nothing deployed", world(entry(V1)), None),
        ("forward rollout complete", world(entry(V1), deployment=deployed(V1)), None),
        (
            "forward rollout missed its deadline",
            world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True)),
            PDE,
        ),
        (
            "scorer on the new version reports critical",
            world(
                entry(V2),
                deployment=deployed(V2),
                scorer=ScorerReport(version=V2, health="critical_low_auc"),
            ),
            reasons.SCORER_UNHEALTHY,
        ),
        (
            "critical report about another version is not this rollout's fault",
            world(
                entry(V2),
                deployment=deployed(V2),
                scorer=ScorerReport(version=V1, health="error"),
            ),
            None,
        ),
        (
            "a rollback that misses its deadline is not rolled back again",
            world(entry(V1), deployment=deployed(V1, previous=V2, kind=BACK, deadline=True)),
            None,
        ),
    ],
)
def test_rollout_failure(name: str, obs: Any, want: str | None) -> None:
    found = plan.rollout_failure(spec(), obs)
    assert (found.reason if found else None) == want, name


@pytest.mark.parametrize(
    ("name", "spec_kw", "obs", "version", "blocked"),
    [
        ("newest passing", {}, world(entry(V1), entry(V2), deployment=deployed(V1)), V2, None),
        (
            "rejected newest: keep serving",
            {},
            world(entry(V1), entry(V2, auc="0.5"), deployment=deployed(V1)),
            V1,
            None,
        ),
        (
            "rolled back newest is skipped",
            {},
            world(entry(V1), entry(V2, rolled_back="t"), deployment=deployed(V1)),
            V1,
            None,
        ),
        (
            "never backwards on its own",
            {},
            world(entry(V1), entry(V2), entry(V3, auc="0.70"), deployment=deployed(V3)),
            V3,
            None,
        ),
        (
            "rollout in flight: wait",
            {},
            world(entry(V1), entry(V2), deployment=deployed(V1, complete=False)),
            V1,
            None,
        ),
        (
            "manual: stay",
            {"promotion": "Manual"},
            world(entry(V2), deployment=deployed(V1)),
            V1,
            None,
        ),
        (
            "pin an unknown version",
            {"modelVersion": "42"},
            world(entry(V1), deployment=deployed(V1)),
            V1,
            reasons.UNKNOWN_MODEL_VERSION,
        ),
        (
            "pin a rolled-back version",
            {"modelVersion": str(V2)},
            world(entry(V1), entry(V2, rolled_back="t"), deployment=deployed(V1)),
            V1,
            reasons.PINNED_VERSION_ROLLED_BACK,
        ),
        (
            "pin a rejected version",
            {"modelVersion": str(V2)},
            world(entry(V1), entry(V2, auc="0.5"), deployment=deployed(V1)),
            V1,
            reasons.PINNED_VERSION_REJECTED,
        ),
    ],
)
def test_target(
    name: str, spec_kw: dict[str, Any], obs: Any, version: int, blocked: str | None
) -> None:
    got = plan.target(spec(**spec_kw), obs, NOW)
    assert got.version == version, name
    assert (got.blocked.reason if got.blocked else None) == blocked, name


def test_move_rolls_forward_with_history_marks_and_an_event() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    moved = plan.move(spec(), obs, plan.Target(V2), NOW)
    kinds = [type(a).__name__ for a in moved.step.actions]
    # The Event before the move: a crash in between cannot lose it (its key makes it once).
    assert kinds == ["MarkVersion", "MarkVersion", "EmitEvent", "RollOut"]
    assert (moved.steady.version, moved.steady.previous) == (V2, V1)
    assert moved.requeue_after == plan.ROLLOUT_POLL_SECONDS


@pytest.mark.parametrize(
    ("name", "obs", "reason"),
    [
        ("nothing deployed", world(), reasons.NO_MODEL),
        (
            "waiting",
            world(entry(V1), deployment=deployed(V1, complete=False)),
            reasons.ROLLOUT_IN_PROGRESS,
        ),
        (
            "rollback waiting",
            world(entry(V1), deployment=deployed(V1, previous=V2, kind=BACK, complete=False)),
            reasons.ROLLBACK_IN_PROGRESS,
        ),
        (
            "rolled back",
            world(entry(V1), deployment=deployed(V1, previous=V2, kind=BACK)),
            reasons.ROLLED_BACK,
        ),
        ("complete", world(entry(V1), deployment=deployed(V1)), reasons.ROLLOUT_COMPLETE),
    ],
)
def test_move_reports_the_rollout_when_it_stays(name: str, obs: Any, reason: str) -> None:
    moved = plan.move(spec(), obs, plan.Target(obs.deployment.version), NOW)
    assert moved.step.actions == (), name
    rolled = next(c for c in moved.step.conditions if c.type == reasons.ROLLED_OUT)
    assert rolled.reason == reason, name


def test_roll_back_marks_then_moves_then_says_so() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True))
    failure = plan.rollout_failure(spec(), obs)
    assert failure is not None
    moved = plan.roll_back(spec(), obs, failure, NOW)
    mark, event, back = moved.step.actions
    assert isinstance(mark, MarkVersion)
    assert mark.annotations[registry.ANN_ROLLBACK_REASON] == PDE
    assert isinstance(back, RollBack)
    assert (back.version, back.failed) == (V1, V2)
    assert isinstance(event, EmitEvent)
    assert event.type == "Warning"
    assert event.once_key
    assert moved.steady.kind == BACK


def test_children_leave_the_deployment_to_a_move() -> None:
    obs = world(entry(V1), deployment=deployed(V1))
    steady = builders.Rollout(version=V1)
    still = [
        a.kind
        for a in plan.children(spec(), obs, steady, moving=False).actions
        if isinstance(a, Ensure)
    ]
    moving = [
        a.kind
        for a in plan.children(spec(), obs, steady, moving=True).actions
        if isinstance(a, Ensure)
    ]
    assert "Deployment" in still
    assert "Deployment" not in moving
    assert [k for k in still if k != "Deployment"] == moving


@pytest.mark.parametrize(
    ("name", "obs", "trained", "verdict", "events"),
    [
        ("empty registry", world(), "False", None, 0),
        ("passing, new", world(entry(V1)), "True", Verdict.PASSED, 1),
        ("rejected, new", world(entry(V1, auc="0.5")), "True", Verdict.REJECTED, 1),
        (
            "same verdict already in status: no Event",
            world(entry(V1), status={"candidate": {"version": str(V1), "reason": "GatesPassed"}}),
            "True",
            Verdict.PASSED,
            0,
        ),
    ],
)
def test_candidate(name: str, obs: Any, trained: str, verdict: Verdict | None, events: int) -> None:
    step, found = plan.candidate(spec(), obs, NOW)
    assert next(c for c in step.conditions if c.type == reasons.TRAINED).status == trained
    assert (found.verdict if found else None) == verdict, name
    assert len(step.actions) == events, name


@pytest.mark.parametrize(
    ("name", "spec_kw", "obs", "serving", "want"),
    [
        ("serving", {}, world(entry(V1), deployment=deployed(V1)), V1, ("True", reasons.SERVING)),
        ("automatic, nothing yet", {}, world(), None, ("False", reasons.NO_MODEL)),
        (
            "manual, passing candidate waits for a person",
            {"promotion": "Manual"},
            world(entry(V1)),
            None,
            ("False", reasons.AWAITING_PROMOTION),
        ),
        (
            "manual, only a rejected candidate",
            {"promotion": "Manual"},
            world(entry(V1, auc="0.5")),
            None,
            ("False", reasons.NO_MODEL),
        ),
        (
            "manual, serving, a newer one waits: still Ready",
            {"promotion": "Manual"},
            world(entry(V1), entry(V2), deployment=deployed(V1)),
            V1,
            ("True", reasons.SERVING),
        ),
    ],
)
def test_readiness(
    name: str, spec_kw: dict[str, Any], obs: Any, serving: int | None, want: tuple[str, str]
) -> None:
    lm = spec(**spec_kw)
    _, found = plan.candidate(lm, obs, NOW)
    step = plan.readiness(lm, obs, plan.Target(serving), serving, found)
    (ready,) = step.conditions
    assert (ready.status, ready.reason) == want, name


def test_readiness_names_the_version_awaiting_promotion() -> None:
    lm = spec(promotion="Manual")
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    _, found = plan.candidate(lm, obs, NOW)
    (ready,) = plan.readiness(lm, obs, plan.Target(V1), V1, found).conditions
    assert f"version {V2} passed the gates and awaits promotion" in ready.message


def test_readiness_warns_once_about_a_refused_pin() -> None:
    obs = world(entry(V1), deployment=deployed(V1))
    blocked = plan.target(spec(modelVersion="42"), obs, NOW)
    first = plan.readiness(spec(modelVersion="42"), obs, blocked, V1, None)
    assert [a.reason for a in first.actions if isinstance(a, EmitEvent)] == [
        reasons.UNKNOWN_MODEL_VERSION
    ]
    said = world(
        entry(V1),
        deployment=deployed(V1),
        status={"conditions": [{"type": "Ready", "reason": reasons.UNKNOWN_MODEL_VERSION}]},
    )
    assert plan.readiness(spec(modelVersion="42"), said, blocked, V1, None).actions == ()


@pytest.mark.parametrize(
    ("limit", "keep", "gone"),
    [
        (3, (), 2),
        (3, (V1,), 1),
        (10, (), 0),
    ],
)
def test_registry_gc(limit: int, keep: tuple[int, ...], gone: int) -> None:
    versions = [V1 + i * 60 for i in range(5)]
    obs = world(*(entry(v) for v in versions))
    step = plan.registry_gc(spec(history={"limit": limit}), obs, keep)
    names = [n for a in step.actions if isinstance(a, GarbageCollect) for n in a.names]
    assert len(names) == gone
    assert all(registry.configmap_name("lm", k) not in names for k in keep)


@pytest.mark.parametrize(
    ("auc", "age_hours", "max_age", "want"),
    [
        ("0.80", 1, 72, health.Health.OK),
        ("0.50", 1, 72, health.Health.CRITICAL_LOW_AUC),
        ("0.60", 1, 72, health.Health.WARNING_LOW_AUC),
        ("0.80", 30, 24, health.Health.WARNING_STALE),
        ("0.55", 1, 72, health.Health.WARNING_LOW_AUC),  # the boundary belongs to the better side
    ],
)
def test_derived_health_uses_the_shared_table(
    auc: str, age_hours: int, max_age: int, want: health.Health
) -> None:
    version = int((NOW - timedelta(hours=age_hours)).timestamp())
    got = plan.derived_health(spec(gates={"maxAgeHours": max_age}), entry(version, auc=auc), NOW)
    assert got == want
    assert plan.derived_health(spec(), None, NOW) == health.Health.NO_MODEL


def test_roll_out_action_is_only_in_move() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    whole = plan.plan(spec(), obs, NOW)
    assert [a.version for a in whole.of(RollOut)] == [V2]


# Rollout state (issue #12): whose fault, what serves, what may move -----------------------

QUOTA = Blocked(reasons.QUOTA_EXCEEDED, 'pods "x" is forbidden: exceeded quota: q')


def _ready(p: Plan) -> tuple[str, str]:
    ready = next(c for c in p.conditions if c.type == reasons.READY)
    return ready.status, ready.reason


def test_completed_rollout_that_lost_its_pods_still_serves_its_version() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, available=False))
    p = plan.plan(spec(), obs, NOW)
    assert p.status.serving_version == str(V2)
    assert _ready(p) == ("False", reasons.SCORER_UNAVAILABLE)
    assert not p.of(RollBack)
    assert [e.reason for e in p.of(EmitEvent) if e.type == "Warning"] == [
        reasons.SCORER_UNAVAILABLE
    ]
    rolled = next(c for c in p.conditions if c.type == reasons.ROLLED_OUT)
    assert (rolled.status, rolled.reason) == ("True", reasons.ROLLOUT_COMPLETE)
    history = {h.version: h.reason for h in p.status.history}
    assert history.get(str(V1)) != reasons.SERVING


def test_unavailability_is_warned_once() -> None:
    obs = world(
        entry(V2),
        deployment=deployed(V2, available=False),
        status={"conditions": [{"type": "Ready", "reason": reasons.SCORER_UNAVAILABLE}]},
    )
    assert [e for e in plan.plan(spec(), obs, NOW).of(EmitEvent) if e.type == "Warning"] == []


def test_a_newer_passing_version_may_roll_forward_over_an_unavailable_one() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1, available=False))
    assert [a.version for a in plan.plan(spec(), obs, NOW).of(RollOut)] == [V2]


def test_first_model_rolls_out_while_the_no_model_deployment_never_got_ready() -> None:
    for state in (deployed(None, complete=False), deployed(None, deadline=True)):
        p = plan.plan(spec(), world(entry(V1), deployment=state), NOW)
        assert [a.version for a in p.of(RollOut)] == [V1]


def test_a_rollout_the_namespace_refuses_is_reported_not_rolled_back() -> None:
    stuck = deployed(V2, previous=V1, deadline=True, blocked=QUOTA)
    p = plan.plan(spec(), world(entry(V1), entry(V2), deployment=stuck), NOW)
    assert not p.of(RollBack)
    assert not p.of(MarkVersion)
    assert _ready(p) == ("False", reasons.QUOTA_EXCEEDED)
    assert [e.reason for e in p.of(EmitEvent) if e.type == "Warning"] == [reasons.QUOTA_EXCEEDED]
    rolled = next(c for c in p.conditions if c.type == reasons.ROLLED_OUT)
    assert rolled.reason == reasons.ROLLOUT_IN_PROGRESS
    assert p.status.serving_version == str(V1)


def test_a_spec_edit_rolling_the_serving_version_again_keeps_it_serving() -> None:
    """Unschedulable new Pods of the same version (a resources edit): old Pods still serve it."""
    unplaced = deployed(V1, complete=False, blocked=Blocked(reasons.UNSCHEDULABLE, "no node"))
    obs = world(entry(V1), deployment=unplaced, status={"servingVersion": str(V1)})
    p = plan.plan(spec(), obs, NOW)
    assert p.status.serving_version == str(V1)
    assert _ready(p) == ("False", reasons.UNSCHEDULABLE)
    assert not p.of(RollBack)


def test_a_rollout_whose_pods_fail_is_the_versions_fault() -> None:
    stuck = deployed(V2, previous=V1, deadline=True)
    p = plan.plan(spec(), world(entry(V1), entry(V2), deployment=stuck), NOW)
    assert [(a.version, a.failed) for a in p.of(RollBack)] == [(V1, V2)]


LATE = Blocked(reasons.PODS_NOT_STARTED, "no Pod of this rollout has been created")


@pytest.mark.parametrize(
    "stuck",
    [
        deployed(V2, previous=V1, deadline=True, blocked=LATE),
        # Its Pods were not read (listing them failed): no evidence against the version either.
        deployed(V2, previous=V1, deadline=True, pods_failed=False),
    ],
    ids=["no Pod started", "Pods not read"],
)
def test_a_stuck_rollout_whose_pods_no_node_took_up_waits(stuck: RolloutState) -> None:
    """After an API server outage kube-controller-manager may create the Pods only past the
    deadline: the version never had its chance on a node, so it is not rolled back."""
    p = plan.plan(spec(), world(entry(V1), entry(V2), deployment=stuck), NOW)
    assert not p.of(RollBack)
    assert not p.of(MarkVersion)
    rolled = next(c for c in p.conditions if c.type == reasons.ROLLED_OUT)
    assert (rolled.status, rolled.reason) == ("False", reasons.ROLLOUT_IN_PROGRESS)
    assert p.status.serving_version == str(V1)


def test_a_rollout_no_node_took_up_is_reported_once() -> None:
    stuck = deployed(V2, previous=V1, deadline=True, blocked=LATE)
    p = plan.plan(spec(), world(entry(V1), entry(V2), deployment=stuck), NOW)
    assert _ready(p) == ("False", reasons.PODS_NOT_STARTED)
    (warning,) = [e for e in p.of(EmitEvent) if e.type == "Warning"]
    assert warning.reason == reasons.PODS_NOT_STARTED
    assert warning.message.endswith("no Pod of this rollout has been created")
    said = {"conditions": [{"type": "Ready", "reason": reasons.PODS_NOT_STARTED}]}
    again = world(entry(V1), entry(V2), deployment=stuck, status=said)
    assert [e for e in plan.plan(spec(), again, NOW).of(EmitEvent) if e.type == "Warning"] == []


def test_a_move_is_announced_under_one_key_per_deployment_state() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    first = plan.move(spec(), obs, plan.Target(V2), NOW)
    again = plan.move(spec(), obs, plan.Target(V2), NOW + timedelta(seconds=5))
    (key,) = [a.once_key for a in first.step.actions if isinstance(a, EmitEvent)]
    assert key
    assert [a.once_key for a in again.step.actions if isinstance(a, EmitEvent)] == [key]
    moved_on = world(entry(V1), entry(V2), deployment=replace(deployed(V1), generation=9))
    later = plan.move(spec(), moved_on, plan.Target(V2), NOW)
    assert [a.once_key for a in later.step.actions if isinstance(a, EmitEvent)] != [key]
