"""Rollout state as `kubectl rollout status` computes it, from Deployment objects and Pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadops.operator import builders, reasons, registry
from leadops.operator.rollout import Progress, rollout_state

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
STARTED = "2026-11-26T11:59:00Z"


def deployment(
    *,
    replicas: int = 2,
    generation: int = 3,
    observed: int = 3,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    ready: int | None = None,
    progressing: tuple[str, str] | None = ("True", "NewReplicaSetAvailable"),
    failure: str | None = None,
    started: str = STARTED,
    deadline: int = 60,
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    if progressing is not None:
        conditions.append(
            {
                "type": "Progressing",
                "status": progressing[0],
                "reason": progressing[1],
                "lastUpdateTime": started,
            }
        )
    if failure is not None:
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": failure,
            }
        )
    return {
        "metadata": {
            "generation": generation,
            "annotations": {
                registry.MODEL_VERSION: "7",
                builders.ANN_PREVIOUS: "6",
                builders.ANN_ROLLOUT_KIND: builders.ROLLOUT_FORWARD,
                builders.ANN_ROLLOUT_STARTED: started,
            },
        },
        "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available if ready is None else ready,
            "conditions": conditions,
        },
    }


def pod(*, version: str = "7", spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {registry.MODEL_VERSION: version}},
        "spec": spec or {},
        "status": status,
    }


UNSCHEDULABLE = pod(
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient cpu.",
        }
    ]
)
NOT_READY = [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]
# On its node for 90 s, past the 60 s deadline.
CRASHING = pod(
    spec={"nodeName": "n1"},
    startTime="2026-11-26T11:58:30Z",
    containerStatuses=[
        {"state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}
    ],
    conditions=NOT_READY,
)
TIMED_OUT = deployment(available=0, progressing=("False", "ProgressDeadlineExceeded"))

# (name, deployment, pods, progress, available, blocked reason)
TABLE: list[tuple[str, dict[str, Any], list[dict[str, Any]], Progress, bool, str | None]] = [
    ("complete and available", deployment(), [], Progress.COMPLETE, True, None),
    (
        "spec not yet observed",
        deployment(observed=2),
        [],
        Progress.PROGRESSING,
        True,
        None,
    ),
    (
        "new Pods not all updated",
        deployment(updated=1, total=3, progressing=("True", "ReplicaSetUpdated")),
        [],
        Progress.PROGRESSING,
        True,
        None,
    ),
    (
        "old replicas left",
        deployment(total=3, progressing=("True", "ReplicaSetUpdated")),
        [],
        Progress.PROGRESSING,
        True,
        None,
    ),
    (
        "updated but not yet available",
        deployment(available=1, progressing=("True", "ReplicaSetUpdated")),
        [],
        Progress.PROGRESSING,
        False,
        None,
    ),
    (
        "completed rollout whose Pods turned NotReady stays complete, unavailable",
        deployment(available=0),
        [pod(conditions=[{"type": "Ready", "status": "False", "reason": "NodeNotReady"}])],
        Progress.COMPLETE,
        False,
        None,
    ),
    (
        "controller's deadline",
        deployment(available=0, total=3, progressing=("False", "ProgressDeadlineExceeded")),
        [CRASHING],
        Progress.STUCK,
        False,
        None,
    ),
    (
        "controller's deadline, no Pod created (a lagging kube-controller-manager)",
        TIMED_OUT,
        [],
        Progress.STUCK,
        False,
        reasons.PODS_NOT_STARTED,
    ),
    (
        "controller's deadline, Pods waiting for the scheduler",
        TIMED_OUT,
        [pod(conditions=[])],
        Progress.STUCK,
        False,
        reasons.PODS_NOT_STARTED,
    ),
    (
        "controller's deadline, Pods placed, no kubelet took them up",
        TIMED_OUT,
        [pod(spec={"nodeName": "n1"})],
        Progress.STUCK,
        False,
        reasons.PODS_NOT_STARTED,
    ),
    (
        "quota refuses the Pods",
        deployment(
            available=0,
            updated=0,
            progressing=("True", "ReplicaSetUpdated"),
            failure='pods "s-1" is forbidden: exceeded quota: q, requested: cpu=1',
        ),
        [],
        Progress.PROGRESSING,
        False,
        reasons.QUOTA_EXCEEDED,
    ),
    (
        "admission refuses the Pods",
        deployment(
            available=0,
            updated=0,
            progressing=("True", "ReplicaSetUpdated"),
            failure='pods "s-1" is forbidden: violates PodSecurity "restricted:latest"',
        ),
        [],
        Progress.PROGRESSING,
        False,
        reasons.PODS_FORBIDDEN,
    ),
    (
        "no node fits",
        deployment(available=0, progressing=("True", "ReplicaSetUpdated")),
        [UNSCHEDULABLE],
        Progress.PROGRESSING,
        False,
        reasons.UNSCHEDULABLE,
    ),
    (
        "an old version's unschedulable Pod is not this rollout's",
        deployment(available=0, progressing=("True", "ReplicaSetUpdated")),
        [{**UNSCHEDULABLE, "metadata": {"labels": {registry.MODEL_VERSION: "6"}}}],
        Progress.PROGRESSING,
        False,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "obj", "pods", "progress", "available", "blocked"), TABLE, ids=[t[0] for t in TABLE]
)
def test_rollout_state(  # noqa: PLR0917 (one table row)
    name: str,
    obj: dict[str, Any],
    pods: list[dict[str, Any]],
    progress: Progress,
    available: bool,
    blocked: str | None,
) -> None:
    got = rollout_state(obj, pods=pods, now=NOW)
    assert got.progress is progress, name
    assert got.available is available, name
    assert (got.blocked.reason if got.blocked else None) == blocked, name
    assert (got.version, got.previous) == (7, 6)


def test_no_progress_for_the_deadline_by_our_own_clock_is_stuck() -> None:
    refused = deployment(
        available=0,
        updated=0,
        progressing=("True", "ReplicaSetUpdated"),
        failure='pods "s-1" is forbidden: exceeded quota: q',
        deadline=60,
    )
    assert rollout_state(refused, now=NOW).progress is Progress.PROGRESSING
    later = NOW + timedelta(seconds=61)
    stuck = rollout_state(refused, now=later)
    assert stuck.progress is Progress.STUCK
    assert not stuck.deadline_exceeded  # our clock, not the controller's
    assert stuck.blocked is not None


def test_a_stuck_rollout_is_the_versions_fault_only_for_pods_a_node_took_up_long_enough() -> None:
    failed = rollout_state(TIMED_OUT, pods=[CRASHING], now=NOW)
    assert (failed.pods_failed, failed.blocked) == (True, None)
    assert not rollout_state(
        TIMED_OUT, pods=[CRASHING], now=NOW - timedelta(seconds=31)
    ).pods_failed
    just_started = pod(startTime="2026-11-26T11:59:50Z", conditions=NOT_READY)
    ready = pod(startTime="2026-11-26T11:58:30Z", conditions=[{"type": "Ready", "status": "True"}])
    for pods in ([just_started], [ready]):
        got = rollout_state(TIMED_OUT, pods=pods, now=NOW)
        assert (got.stuck, got.pods_failed, got.blocked) == (True, False, None)
    # Pods not read: no evidence, and no claim about them.
    unread = rollout_state(TIMED_OUT, now=NOW)
    assert (unread.pods_failed, unread.blocked) == (False, None)


@pytest.mark.parametrize(
    ("pods", "who"),
    [
        ([], "kube-controller-manager has not acted"),
        ([pod(conditions=[])], "kube-scheduler has not acted"),
        ([pod(spec={"nodeName": "n1"})], "started by its node's kubelet"),
    ],
    ids=["not created", "not scheduled", "not started"],
)
def test_a_stuck_rollout_without_started_pods_says_who_has_not_acted(
    pods: list[dict[str, Any]], who: str
) -> None:
    blocked = rollout_state(TIMED_OUT, pods=pods, now=NOW).blocked
    assert blocked is not None
    assert who in blocked.message


def test_an_image_rollout_is_judged_by_the_pods_of_its_image() -> None:
    """The old image's Pods carry the same version; their failures are not the new image's."""
    obj = TIMED_OUT | {"spec": TIMED_OUT["spec"] | {"template": template("scorer:new")}}
    old = CRASHING | {"spec": {"nodeName": "n1", "containers": [scorer("scorer:old")]}}
    got = rollout_state(obj, pods=[old], now=NOW)
    assert got.pods_failed is False
    assert got.blocked is not None
    assert got.blocked.message == (
        "no Pod of this rollout has been created (kube-controller-manager has not acted)"
    )
    new = CRASHING | {"spec": {"nodeName": "n1", "containers": [scorer("scorer:new")]}}
    got = rollout_state(obj, pods=[old, new], now=NOW)
    assert (got.pods_failed, got.blocked, got.image) == (True, None, "scorer:new")


def scorer(image: str) -> dict[str, Any]:
    return {"name": "scorer", "image": image}


def template(image: str) -> dict[str, Any]:
    return {"spec": {"containers": [scorer(image)]}}


def test_why_pods_are_not_ready_comes_from_their_container_state() -> None:
    got = rollout_state(
        deployment(available=0, progressing=("True", "ReplicaSetUpdated")), pods=[CRASHING], now=NOW
    )
    assert got.unready_why == "CrashLoopBackOff: back-off"


def test_no_deployment() -> None:
    got = rollout_state(None)
    assert not got.exists
    assert [got.complete, got.in_progress, got.stuck] == [False, False, False]


def test_the_no_model_deployment_has_no_version() -> None:
    obj = deployment(available=0)
    obj["metadata"]["annotations"] = {}
    got = rollout_state(obj, now=NOW)
    assert got.version is None
    assert got.complete
