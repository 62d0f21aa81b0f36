"""The scorer Deployment's rollout state, computed the way `kubectl rollout status` does (pure).

Progress and availability are separate questions:

- `Progressing`: the controller has not seen the latest spec, or updated replicas are missing,
  or old ones are left, or updated ones are not yet available, and the deadline has not passed.
- `Complete`: every replica is updated, no old replica is left, and they were all available at
  once (the Deployment controller's `NewReplicaSetAvailable`, or available >= replicas now).
  Once complete, a rollout stays complete: Kubernetes never applies the progress deadline to
  it again, and neither do we.
- `Stuck`: the controller's `ProgressDeadlineExceeded`, or no progress for
  `progressDeadlineSeconds` by the operator's own clock (the controller only sets the deadline
  when it syncs; a rollout whose Pods are refused may not be synced again).

`available` says whether a complete rollout has all its replicas available now. `blocked` says
whether Pods cannot be created or placed: the namespace's fault (quota, admission, a missing
ServiceAccount, no node fits), not the version's; or, once stuck, that no Pod of the rollout was
started by a kubelet (the control plane or a node has not acted: after an API server outage,
kube-controller-manager can take minutes to create Pods, and the deadline runs meanwhile).
`pods_failed` says whether a stuck rollout is the version's fault: one of its Pods has been on a
node for `progressDeadlineSeconds` and is not Ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from leadops.operator import builders, reasons, registry

# The Deployment controller's reasons (k8s.io/kubernetes/pkg/controller/deployment/util).
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
_K8S_DEADLINE = 600  # progressDeadlineSeconds when a Deployment does not set it
FAILED_CREATE = "FailedCreate"
# Container states that are the version's fault (logged in the unavailability message).
_CONTAINER_WAITING = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}
)


class Progress(StrEnum):
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    STUCK = "Stuck"


@dataclass(frozen=True)
class Blocked:
    """Pods cannot be created or placed (the namespace's fault, in the API's words), or no node
    started them: not the version's fault."""

    reason: str  # PodsForbidden | QuotaExceeded | Unschedulable | PodsNotStarted
    message: str


@dataclass(frozen=True)
class RolloutState:
    """The scorer Deployment's rollout: what we asked for (annotations) and how it went."""

    exists: bool = False
    version: int | None = None
    previous: int | None = None
    kind: str = builders.ROLLOUT_FORWARD
    started_at: str = ""
    digest: str = ""  # validated digests the Pod template serves / rolls back to
    previous_digest: str = ""
    # The scorer container's image in the template, the one a rollback returns to, and one a
    # rollback undid (refused while spec.scorer.image names it).
    image: str = ""
    previous_image: str = ""
    rolled_back_image: str = ""
    # The promotion the matured-AUC guard watches, where an image rollout carried it.
    carried_promotion: builders.Promotion | None = None
    # metadata.generation: names the Deployment's state a move starts from.
    generation: int = 0
    progress: Progress = Progress.PROGRESSING
    # Every wanted replica available now (meaningful once complete).
    available: bool = False
    desired: int = 0
    ready: int = 0
    # The controller's own ProgressDeadlineExceeded (else Stuck came from our clock).
    deadline_exceeded: bool = False
    blocked: Blocked | None = None
    # A Pod of this rollout (its version and image) that a kubelet took up at least
    # progressDeadlineSeconds ago is not Ready: the version had its chance on a node.
    pods_failed: bool = False
    # Why Pods are not ready, from their conditions and container states (for messages).
    unready_why: str = ""

    @property
    def promotion(self) -> builders.Promotion | None:
        return builders.watched_promotion(self)

    @property
    def complete(self) -> bool:
        return self.exists and self.progress is Progress.COMPLETE

    @property
    def stuck(self) -> bool:
        return self.exists and self.progress is Progress.STUCK

    @property
    def version_failed(self) -> bool:
        """Stuck, and the version's fault: a Pod of it failed on a node, and no Pod was refused
        or left unstarted by the namespace or the cluster."""
        return self.stuck and self.blocked is None and self.pods_failed

    @property
    def in_progress(self) -> bool:
        return self.exists and self.progress is Progress.PROGRESSING

    @property
    def unavailable(self) -> bool:
        """A completed rollout that lost availability (a node lost, an eviction, an OOM loop)."""
        return self.complete and not self.available


def rollout_state(
    deployment: Mapping[str, Any] | None,
    *,
    pods: Iterable[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> RolloutState:
    """Rollout state of a Deployment object and its Pods (pods: only to explain and to blame;
    None when they were not read)."""
    if not deployment:
        return RolloutState()
    meta = deployment.get("metadata") or {}
    ann = meta.get("annotations") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    version = _int_or_none(ann.get(registry.MODEL_VERSION))
    want = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    seen = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    timed_out = (
        seen and progressing.get("status") == "False" and progressing.get("reason") == TIMED_OUT
    )
    # kubectl: observed, updated == replicas, no old replicas, updated all available; the
    # controller's isCompleteDeployment: no old replicas and NewReplicaSetAvailable.
    all_updated = seen and updated >= want and total <= updated
    said_complete = (
        progressing.get("reason") == NEW_RS_AVAILABLE and progressing.get("status") == "True"
    )
    if all_updated and (available >= want or said_complete) and not timed_out:
        progress = Progress.COMPLETE
    elif timed_out or _no_progress(ann, progressing, spec, now):
        progress = Progress.STUCK
    else:
        progress = Progress.PROGRESSING
    image = _scorer_image(spec)
    # This rollout's Pods: an image rollout keeps the version, so the image tells them apart.
    mine = [p for p in pods or () if _pod_version(p) == version and _pod_image(p) == image]
    blocked = None
    if progress is not Progress.COMPLETE:
        blocked = _blocked(conditions, mine)
        started = any(_started_at(p) for p in mine)
        if blocked is None and progress is Progress.STUCK and pods is not None and not started:
            blocked = _not_started(mine)
    chance = timedelta(seconds=int(spec.get("progressDeadlineSeconds") or _K8S_DEADLINE))
    failed = now is not None and any(_failed(p, now - chance) for p in mine)
    return RolloutState(
        exists=True,
        version=version,
        previous=_int_or_none(ann.get(builders.ANN_PREVIOUS)),
        kind=str(ann.get(builders.ANN_ROLLOUT_KIND) or builders.ROLLOUT_FORWARD),
        started_at=str(ann.get(builders.ANN_ROLLOUT_STARTED) or ""),
        digest=str(ann.get(builders.ANN_DIGEST) or ""),
        previous_digest=str(ann.get(builders.ANN_PREVIOUS_DIGEST) or ""),
        image=image,
        previous_image=str(ann.get(builders.ANN_PREVIOUS_IMAGE) or ""),
        rolled_back_image=str(ann.get(builders.ANN_ROLLED_BACK_IMAGE) or ""),
        carried_promotion=_carried_promotion(ann),
        generation=int(meta.get("generation") or 0),
        progress=progress,
        available=available >= want,
        desired=want,
        ready=int(status.get("readyReplicas") or 0),
        deadline_exceeded=timed_out,
        blocked=blocked,
        pods_failed=failed,
        unready_why=_unready_why(mine),
    )


def _carried_promotion(ann: Mapping[str, Any]) -> builders.Promotion | None:
    previous = _int_or_none(ann.get(builders.ANN_GUARDED_PREVIOUS))
    digest = str(ann.get(builders.ANN_GUARDED_DIGEST) or "")
    since = str(ann.get(builders.ANN_GUARDED_SINCE) or "")
    if previous is None or not digest or not since:
        return None
    return builders.Promotion(previous, digest, since)


def _scorer_image(spec: Mapping[str, Any]) -> str:
    """The scorer container's image in a Deployment's Pod template."""
    return _scorer_image_in((spec.get("template") or {}).get("spec") or {})


def _scorer_image_in(pod_spec: Mapping[str, Any]) -> str:
    for container in pod_spec.get("containers") or []:
        if container.get("name") == "scorer":
            return str(container.get("image") or "")
    return ""


def _no_progress(
    ann: Mapping[str, Any],
    progressing: Mapping[str, Any],
    spec: Mapping[str, Any],
    now: datetime | None,
) -> bool:
    """No progress for progressDeadlineSeconds since the rollout started or last moved."""
    if now is None:
        return False
    deadline = spec.get("progressDeadlineSeconds")
    marks = [
        registry.parse_time(str(ann.get(builders.ANN_ROLLOUT_STARTED) or "")),
        registry.parse_time(str(progressing.get("lastUpdateTime") or "")),
    ]
    last = max((m for m in marks if m is not None), default=None)
    if deadline is None or last is None:
        return False
    return now - last > timedelta(seconds=int(deadline))


def _blocked(
    conditions: Mapping[Any, Mapping[str, Any]], pods: list[Mapping[str, Any]]
) -> Blocked | None:
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True" and failure.get("reason") == FAILED_CREATE:
        message = str(failure.get("message") or "")
        reason = reasons.QUOTA_EXCEEDED if "exceeded quota" in message else reasons.PODS_FORBIDDEN
        return Blocked(reason, message)
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (cond.get("type"), cond.get("status"), cond.get("reason")) == (
                "PodScheduled",
                "False",
                "Unschedulable",
            ):
                return Blocked(reasons.UNSCHEDULABLE, str(cond.get("message") or ""))
    return None


def _started_at(pod: Mapping[str, Any]) -> datetime | None:
    """When a kubelet took the Pod up (status.startTime), if one has."""
    return registry.parse_time(str((pod.get("status") or {}).get("startTime") or ""))


def _failed(pod: Mapping[str, Any], before: datetime) -> bool:
    """Taken up by a kubelet before `before`, and not Ready."""
    started = _started_at(pod)
    return started is not None and started <= before and not _ready(pod)


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _not_started(pods: list[Mapping[str, Any]]) -> Blocked:
    """Why a stuck rollout has no started Pod: which part of the cluster has not acted."""
    if not pods:
        said = "no Pod of this rollout has been created (kube-controller-manager has not acted)"
    elif not any((p.get("spec") or {}).get("nodeName") for p in pods):
        said = "no Pod of this rollout has been scheduled (kube-scheduler has not acted)"
    else:
        said = "no Pod of this rollout has been started by its node's kubelet"
    return Blocked(reasons.PODS_NOT_STARTED, said)


def _unready_why(pods: list[Mapping[str, Any]]) -> str:
    """The first explanation a Pod gives for not being ready (a container state, else Ready)."""
    for pod in pods:
        status = pod.get("status") or {}
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _CONTAINER_WAITING:
                return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") != "True":
                said = cond.get("message") or cond.get("reason") or "not ready"
                return str(said)
    return ""


def _pod_image(pod: Mapping[str, Any]) -> str:
    return _scorer_image_in(pod.get("spec") or {})


def _pod_version(pod: Mapping[str, Any]) -> int | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return _int_or_none(labels.get(registry.MODEL_VERSION))


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
