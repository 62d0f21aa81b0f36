"""spec.scorer.autoscaling: the HorizontalPodAutoscaler is made, removed, and owns replicas."""

from __future__ import annotations

from dataclasses import replace

import pytest

from leadops.operator import builders, plan
from leadops.operator.actions import Ensure, RemoveChild, RollBack
from leadops.operator.reconcile import InvalidSpec, parse
from tests.unit.operator.worlds import NOW, V1, V2, deployed, entry, spec, world

AUTOSCALING = {"minReplicas": 2, "maxReplicas": 6}


def test_autoscaling_makes_an_autoscaler_and_a_deployment_without_replicas() -> None:
    p = plan.plan(spec(scorer={"autoscaling": AUTOSCALING}), world(), NOW)
    by_kind = {a.kind: a.manifest for a in p.of(Ensure)}
    hpa = by_kind["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "lm-scorer"
    assert "replicas" not in by_kind["Deployment"]["spec"]
    assert by_kind["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_unsetting_autoscaling_removes_the_autoscaler_and_sets_replicas_again() -> None:
    made = plan.plan(spec(scorer={"autoscaling": AUTOSCALING}), world(), NOW)
    hpa = next(a.manifest for a in made.of(Ensure) if a.kind == "HorizontalPodAutoscaler")
    live = hpa | {"metadata": hpa["metadata"] | {"uid": "h"}}
    obs = replace(world(), children={("HorizontalPodAutoscaler", "lm-scorer"): live})
    p = plan.plan(spec(scorer={"replicas": 3}), obs, NOW)
    assert [(a.kind, a.name) for a in p.of(RemoveChild)] == [
        ("HorizontalPodAutoscaler", "lm-scorer")
    ]
    deployment = next(a.manifest for a in p.of(Ensure) if a.kind == "Deployment")
    assert deployment["spec"]["replicas"] == 3


def test_someone_elses_autoscaler_of_the_same_name_is_left_alone() -> None:
    theirs = builders.scorer_autoscaler(
        builders.Owner(name="lm", namespace="ns", uid="someone-else"),
        spec(scorer={"autoscaling": AUTOSCALING}).scorer.autoscaling,  # type: ignore[arg-type]
    )
    obs = replace(world(), children={("HorizontalPodAutoscaler", "lm-scorer"): theirs})
    assert plan.plan(spec(), obs, NOW).of(RemoveChild) == []


def test_min_above_max_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match="minReplicas must not exceed maxReplicas"):
        parse({"spec": spec().model_dump(by_alias=True, mode="json") | _scorer(5, 2)})


def _scorer(low: int, high: int) -> dict[str, object]:
    return {"scorer": {"autoscaling": {"minReplicas": low, "maxReplicas": high}}}


def test_a_served_version_whose_scale_up_pods_never_get_ready_is_not_rolled_back() -> None:
    """The autoscaler added Pods that stay unready past the deadline: the version served all
    its Pods before (status.servingVersion), so it is not to blame; mid-rollout it would be."""
    stuck = deployed(V2, previous=V1, deadline=True)
    after_scale_up = world(
        entry(V1), entry(V2), deployment=stuck, status={"servingVersion": str(V2)}
    )
    assert (
        plan.plan(spec(scorer={"autoscaling": AUTOSCALING}), after_scale_up, NOW).of(RollBack) == []
    )
    mid_rollout = world(entry(V1), entry(V2), deployment=stuck, status={"servingVersion": str(V1)})
    (back,) = plan.plan(spec(scorer={"autoscaling": AUTOSCALING}), mid_rollout, NOW).of(RollBack)
    assert back.version == V1
