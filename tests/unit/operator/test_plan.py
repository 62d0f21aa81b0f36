"""The planner as tables: spec x observed world x clock -> actions, conditions, status."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from leadops.operator import builders, reasons, registry
from leadops.operator.actions import (
    EmitEvent,
    Ensure,
    EnsureCronJob,
    EnsureDeployment,
    GarbageCollect,
    MarkVersion,
    Plan,
    RemoveChild,
    RollBack,
    RollOut,
    status_body,
)
from leadops.operator.plan import plan
from leadops.operator.spec import Condition, Verdict
from leadops.operator.world import Observed, ScorerReport

from .worlds import NOW, V1, V2, V3, deployed, entry, spec, world


def cond(p: Plan, type_: str) -> Condition:
    return next(c for c in p.conditions if c.type == type_)


def summary(p: Plan) -> dict[str, Any]:
    """The decision in a comparable shape."""
    out: dict[str, Any] = {}
    for action in p.actions:
        if isinstance(action, RollOut):
            out["rollout"] = (action.version, action.previous)
        elif isinstance(action, RollBack):
            out["rollback"] = (action.version, action.failed, action.reason)
        elif isinstance(action, GarbageCollect):
            out["gc"] = action.names
    out["events"] = sorted((e.type, e.reason) for e in p.of(EmitEvent))
    out["ready"] = (cond(p, reasons.READY).status, cond(p, reasons.READY).reason)
    out["rolled_out"] = (cond(p, reasons.ROLLED_OUT).status, cond(p, reasons.ROLLED_OUT).reason)
    out["degraded"] = (cond(p, reasons.DEGRADED).status, cond(p, reasons.DEGRADED).reason)
    out["validated"] = (cond(p, reasons.VALIDATED).status, cond(p, reasons.VALIDATED).reason)
    return out


BACK = builders.ROLLOUT_BACK
PDE = reasons.PROGRESS_DEADLINE_EXCEEDED
ROLLED = "2026-11-26T11:00:00Z"

# (name, spec kwargs, world, expected subset of summary)
TABLE: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = [
    (
        "fresh LeadModel, empty registry: children only, not ready",
        {},
        world(),
        {"ready": ("False", "NoModel"), "rolled_out": ("False", "NoModel"), "events": []},
    ),
    (
        "first passing version rolls out",
        {},
        world(entry(V2), deployment=deployed(None)),
        {"rollout": (V2, None), "events": [("Normal", "GatesPassed"), ("Normal", "Promoted")]},
    ),
    (
        "newer passing version replaces the serving one",
        {},
        world(entry(V1, promoted=ROLLED), entry(V2), deployment=deployed(V1)),
        {"rollout": (V2, V1), "rolled_out": ("False", "RolloutInProgress")},
    ),
    (
        "low-AUC candidate is rejected, serving unchanged, Warning Event",
        {},
        world(entry(V1), entry(V3, auc="0.61"), deployment=deployed(V1)),
        {
            "ready": ("True", "Serving"),
            "validated": ("False", "AucBelowThreshold"),
            "events": [("Warning", "AucBelowThreshold")],
            "rolled_out": ("True", "RolloutComplete"),
        },
    ),
    (
        "rejection already reported: no second Event",
        {},
        world(
            entry(V1),
            entry(V3, auc="0.61"),
            deployment=deployed(V1),
            status={"candidate": {"version": str(V3), "reason": "AucBelowThreshold"}},
        ),
        {"events": []},
    ),
    (
        "Manual promotion waits for spec.modelVersion",
        {"promotion": "Manual"},
        world(entry(V1), entry(V2), deployment=deployed(V1)),
        {"ready": ("True", "Serving"), "validated": ("True", "GatesPassed")},
    ),
    (
        "Manual promotion with a pin rolls to it",
        {"promotion": "Manual", "modelVersion": str(V2)},
        world(entry(V1), entry(V2), deployment=deployed(V1)),
        {"rollout": (V2, V1)},
    ),
    (
        "pin an older registry version: roll back to it",
        {"modelVersion": str(V1)},
        world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1)),
        {"rollout": (V1, V2)},
    ),
    (
        "pin an old version beyond maxAgeHours still rolls (emergency rollback)",
        {"modelVersion": str(V1), "gates": {"maxAgeHours": 2}},
        world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1)),
        {"rollout": (V1, V2)},
    ),
    (
        "unknown pinned version: Ready=False, nothing else changes",
        {"modelVersion": "1234567890"},
        world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1)),
        {
            "ready": ("False", "UnknownModelVersion"),
            "rolled_out": ("True", "RolloutComplete"),
            "events": [("Normal", "GatesPassed"), ("Warning", "UnknownModelVersion")],
        },
    ),
    (
        "rollout past its progress deadline is rolled back",
        {},
        world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True)),
        {
            "rollback": (V1, V2, PDE),
            "rolled_out": ("False", "RolledBack"),
            "degraded": ("True", PDE),
            "ready": ("True", "Serving"),
        },
    ),
    (
        "a rolled-back version is not promoted again",
        {},
        world(
            entry(V1),
            entry(V2, rolled_back=ROLLED),
            deployment=deployed(V1, previous=V2, kind=BACK),
        ),
        {"rolled_out": ("False", "RolledBack"), "degraded": ("True", PDE)},
    ),
    (
        "a newer version after a rollback is promoted",
        {},
        world(
            entry(V1),
            entry(V2, rolled_back=ROLLED),
            entry(V3),
            deployment=deployed(V1, previous=V2, kind=BACK),
        ),
        {"rollout": (V3, V1)},
    ),
    (
        "pinned version that was rolled back is refused",
        {"modelVersion": str(V2)},
        world(
            entry(V1),
            entry(V2, rolled_back=ROLLED),
            deployment=deployed(V1, previous=V2, kind=BACK),
        ),
        {"ready": ("False", "PinnedVersionRolledBack")},
    ),
    (
        "rollout in flight: wait, do not chase newer candidates",
        {},
        world(
            entry(V1), entry(V2), entry(V3), deployment=deployed(V2, previous=V1, complete=False)
        ),
        {"rolled_out": ("False", "RolloutInProgress"), "ready": ("True", "Serving")},
    ),
    (
        "scorer reports critical_low_auc for the new version: roll back",
        {},
        world(
            entry(V1),
            entry(V2),
            deployment=deployed(V2, previous=V1),
            scorer=ScorerReport(version=V2, health="critical_low_auc"),
        ),
        {"rollback": (V1, V2, "ScorerUnhealthy"), "degraded": ("True", "ScorerUnhealthy")},
    ),
    (
        "scorer error about an older version is not blamed on the new one",
        {},
        world(
            entry(V1),
            entry(V2),
            deployment=deployed(V2, previous=V1),
            scorer=ScorerReport(version=V1, health="error"),
        ),
        {"rolled_out": ("True", "RolloutComplete")},
    ),
    (
        "rollback that is not Available either: no cascade",
        {},
        world(
            entry(V1),
            entry(V2, rolled_back=ROLLED),
            deployment=deployed(V1, previous=V2, kind=BACK, deadline=True),
        ),
        {"degraded": ("True", "RollbackNotAvailable")},
    ),
    (
        "rollback whose Pods no node has started: the version it undid, not 'not Available'",
        {},
        world(
            entry(V1),
            entry(V2, rolled_back=ROLLED),
            deployment=deployed(V1, previous=V2, kind=BACK, deadline=True, pods_failed=False),
        ),
        {"degraded": ("True", PDE)},
    ),
    (
        "first rollout fails with nothing to go back to: back to no model",
        {},
        world(entry(V2), deployment=deployed(V2, deadline=True)),
        {"rollback": (None, V2, PDE), "ready": ("False", "NoModel")},
    ),
    (
        "after a failed first rollout: no model, Degraded, not retried",
        {},
        world(entry(V2, rolled_back=ROLLED), deployment=deployed(None, previous=V2, kind=BACK)),
        {"ready": ("False", "NoModel"), "degraded": ("True", PDE)},
    ),
    (
        "high drift reported: Degraded",
        {},
        world(
            entry(V2),
            deployment=deployed(V2),
            scorer=ScorerReport(version=V2, health="warning_high_drift", drift_score="4.5"),
        ),
        {"degraded": ("True", "HighDrift")},
    ),
    (
        "stale serving model: Degraded",
        {"gates": {"maxAgeHours": 24}},
        world(entry(V1), deployment=deployed(V1)),
        {"degraded": ("True", "StaleModel")},
    ),
    (
        "unpinned after serving a newer pin: never move backwards automatically",
        {},
        world(entry(V2), entry(V3, auc="0.5"), deployment=deployed(V3, previous=V2)),
        {"rolled_out": ("True", "RolloutComplete")},
    ),
]


@pytest.mark.parametrize(("name", "spec_kw", "obs", "want"), TABLE, ids=[t[0] for t in TABLE])
def test_plan_table(name: str, spec_kw: dict[str, Any], obs: Any, want: dict[str, Any]) -> None:
    got = summary(plan(spec(**spec_kw), obs, NOW))
    for key, value in want.items():
        assert got.get(key) == value, f"{name}: {key}"
    if "rollout" not in want:
        assert "rollout" not in got, name
    if "rollback" not in want:
        assert "rollback" not in got, name


def test_every_child_is_ensured_with_an_owner() -> None:
    p = plan(spec(), world(), NOW)
    ensured = {(a.kind, a.name) for a in p.of(Ensure)}
    assert ensured == {
        ("ServiceAccount", "lm-jobs"),
        ("Role", "lm-jobs"),
        ("RoleBinding", "lm-jobs"),
        ("ServiceAccount", "lm-scorer"),
        ("ServiceAccount", "lm-pii-backfill"),
        ("Service", "lm-scorer"),
        ("Deployment", "lm-scorer"),
        ("PodDisruptionBudget", "lm-scorer"),
        ("CronJob", "lm-train"),
        ("CronJob", "lm-pii-backfill"),
    }
    assert len(p.of(EnsureCronJob)) == 2
    assert len(p.of(EnsureDeployment)) == 1
    for action in p.of(Ensure):
        (ref,) = action.manifest["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "LeadModel",
            "lm",
            "uid-1",
            True,
        )


def test_monitoring_children_only_with_prometheus_operator() -> None:
    with_prom = plan(spec(), replace(world(), prometheus_operator=True, alert_rules=True), NOW)
    kinds = {a.kind for a in with_prom.of(Ensure)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert not {"ServiceMonitor", "PrometheusRule"} & {
        a.kind for a in plan(spec(), world(), NOW).of(Ensure)
    }


def test_the_service_monitor_scrapes_at_the_operators_interval() -> None:
    def interval(obs: Observed) -> str:
        (monitor,) = [a for a in plan(spec(), obs, NOW).of(Ensure) if a.kind == "ServiceMonitor"]
        (endpoint,) = monitor.manifest["spec"]["endpoints"]
        return str(endpoint["interval"])

    prom = replace(world(), prometheus_operator=True)
    assert interval(prom) == "30s"
    assert interval(replace(prom, scrape_interval="5s")) == "5s"


def _with_alert_rule(*, controller_uid: str, alert_rules: bool) -> Observed:
    """A world with the Prometheus Operator and a live `lm-alerts` rule controlled by the uid."""
    owner = {"kind": "LeadModel", "uid": controller_uid, "controller": True}
    meta = {"name": "lm-alerts", "namespace": "ns", "ownerReferences": [owner]}
    rule = {"kind": "PrometheusRule", "metadata": meta}
    return replace(
        world(),
        prometheus_operator=True,
        alert_rules=alert_rules,
        children={("PrometheusRule", "lm-alerts"): rule},
    )


def test_alert_rules_off_keeps_the_service_monitor_and_removes_our_rule() -> None:
    p = plan(spec(), _with_alert_rule(controller_uid="uid-1", alert_rules=False), NOW)
    kinds = {a.kind for a in p.of(Ensure)}
    assert "ServiceMonitor" in kinds
    assert "PrometheusRule" not in kinds
    assert p.of(RemoveChild) == [RemoveChild(kind="PrometheusRule", name="lm-alerts")]


def test_alert_rules_off_leaves_a_same_named_rule_it_does_not_own() -> None:
    obs = _with_alert_rule(controller_uid="someone-else", alert_rules=False)
    assert plan(spec(), obs, NOW).of(RemoveChild) == []


def test_alert_rules_on_never_removes_the_rule() -> None:
    obs = _with_alert_rule(controller_uid="uid-1", alert_rules=True)
    assert plan(spec(), obs, NOW).of(RemoveChild) == []


def test_rollout_marks_history_and_points_deployment_at_the_version() -> None:
    p = plan(spec(), world(entry(V1), entry(V2), deployment=deployed(V1)), NOW)
    (roll,) = p.of(RollOut)
    template = roll.manifest["spec"]["template"]
    assert template["metadata"]["annotations"][registry.MODEL_VERSION] == str(V2)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["registry"]["configMap"]["name"] == registry.configmap_name("lm", V2)
    assert roll.manifest["metadata"]["annotations"][builders.ANN_PREVIOUS] == str(V1)
    marks = {m.name: dict(m.annotations) for m in p.of(MarkVersion)}
    assert (
        marks[registry.configmap_name("lm", V2)][registry.ANN_PROMOTED_AT] == "2026-11-26T12:00:00Z"
    )
    assert registry.ANN_RETIRED_AT in marks[registry.configmap_name("lm", V1)]
    # The Deployment is changed by the RollOut alone, never also by an Ensure.
    assert not p.of(EnsureDeployment)
    assert p.requeue_after is not None


def test_rollback_marks_the_failed_version_before_moving_the_deployment() -> None:
    p = plan(
        spec(),
        world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True)),
        NOW,
    )
    order = [type(a).__name__ for a in p.actions if isinstance(a, MarkVersion | RollBack)]
    assert order == ["MarkVersion", "RollBack"]
    (mark,) = p.of(MarkVersion)
    assert mark.annotations[registry.ANN_ROLLBACK_REASON] == PDE
    (event,) = [e for e in p.of(EmitEvent) if e.type == "Warning"]
    assert "Rolled back Deployment ns/lm-scorer" in event.message
    assert p.status.serving_version == str(V1)


def test_history_gc_keeps_serving_and_previous() -> None:
    versions = [V1 + i * 60 for i in range(13)]
    serving, previous = versions[0], versions[1]
    obs = world(*(entry(v) for v in versions), deployment=deployed(serving, previous=previous))
    p = plan(spec(history={"limit": 10}, promotion="Manual"), obs, NOW)
    (gc,) = p.of(GarbageCollect)
    assert gc.names == (registry.configmap_name("lm", versions[2]),)


def test_status_is_rebuilt_from_the_world() -> None:
    obs = world(
        entry(V1, promoted="2026-11-25T06:00:00Z"),
        entry(V2, promoted=ROLLED),
        deployment=deployed(V2, previous=V1),
    )
    status = plan(spec(), obs, NOW).status
    assert status.serving_version == str(V2)
    assert status.previous_version == str(V1)
    assert status.auc == "0.80"
    assert status.health == "ok"
    assert [h.version for h in status.history] == [str(V2), str(V1)]
    assert status.candidate is not None
    assert status.candidate.verdict is Verdict.PASSED


def test_conditions_carry_generation_and_keep_transition_time() -> None:
    obs = world(entry(V2), deployment=deployed(V2), generation=7)
    first = status_body(plan(spec(), obs, NOW).status)["conditions"]
    assert {c["observedGeneration"] for c in first} == {7}
    later = NOW + timedelta(minutes=5)
    again = status_body(plan(spec(), replace(obs, status={"conditions": first}), later).status)[
        "conditions"
    ]
    assert [c["lastTransitionTime"] for c in again] == [c["lastTransitionTime"] for c in first]
    # A flip moves the time.
    flipped = status_body(
        plan(spec(modelVersion="42"), replace(obs, status={"conditions": first}), later).status
    )["conditions"]
    ready = next(c for c in flipped if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["lastTransitionTime"] == "2026-11-26T12:05:00Z"


def test_plan_is_deterministic() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    assert plan(spec(), obs, NOW) == plan(spec(), obs, NOW)


def test_children_apply_in_dependency_order() -> None:
    # A Role must exist before its RoleBinding: a non-admin operator is refused otherwise.
    kinds = [a.kind for a in plan(spec(), world(), NOW).of(Ensure)]
    assert kinds.index("ServiceAccount") < kinds.index("Role") < kinds.index("RoleBinding")
    assert kinds.index("Service") < kinds.index("Deployment")


def test_a_candidate_awaiting_manual_promotion_is_in_the_status() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1))
    assert plan(spec(promotion="Manual"), obs, NOW).status.awaiting_promotion == str(V2)
    # Automatic promotes it itself; a pin is a person's decision already.
    assert plan(spec(), obs, NOW).status.awaiting_promotion == ""
    pinned = plan(spec(promotion="Manual", modelVersion=str(V1)), obs, NOW)
    assert pinned.status.awaiting_promotion == ""
