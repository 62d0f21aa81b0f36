"""The world as one LeadModel's reconcile sees it: frozen values, no API client.

`observe.py` fills these from the cluster; `plan.py` decides from them; tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from leadops.operator import builders, registry
from leadops.operator.registry import Entry


@dataclass(frozen=True)
class DeploymentState:
    """The scorer Deployment's rollout as recorded in its annotations and status."""

    exists: bool = False
    version: int | None = None
    previous: int | None = None
    kind: str = builders.ROLLOUT_FORWARD
    started_at: str = ""
    digest: str = ""  # validated digests the Pod template serves / rolls back to
    previous_digest: str = ""
    # Rolled out: the controller saw the latest spec and every replica is updated and available.
    complete: bool = False
    deadline_exceeded: bool = False

    @property
    def in_progress(self) -> bool:
        return self.exists and not self.complete and not self.deadline_exceeded


def deployment_state(deployment: Mapping[str, Any] | None) -> DeploymentState:
    """Read rollout state from a Deployment object (pure; used by observe and tests)."""
    if not deployment:
        return DeploymentState()
    meta = deployment.get("metadata") or {}
    ann = meta.get("annotations") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = int(meta.get("generation") or 0)
    seen = int(status.get("observedGeneration") or 0) >= generation
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    deadline = (
        seen
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    )
    complete = seen and updated >= want and available >= want and total <= want and not deadline
    return DeploymentState(
        exists=True,
        version=_int_or_none(ann.get(registry.MODEL_VERSION)),
        previous=_int_or_none(ann.get(builders.ANN_PREVIOUS)),
        kind=str(ann.get(builders.ANN_ROLLOUT_KIND) or builders.ROLLOUT_FORWARD),
        started_at=str(ann.get(builders.ANN_ROLLOUT_STARTED) or ""),
        digest=str(ann.get(builders.ANN_DIGEST) or ""),
        previous_digest=str(ann.get(builders.ANN_PREVIOUS_DIGEST) or ""),
        complete=complete,
        deadline_exceeded=deadline,
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ScorerReport:
    """What the scorer's /ops/model-status said (None in Observed when unreachable)."""

    version: int | None
    health: str
    auc: str = ""
    drift_score: str = ""


@dataclass(frozen=True)
class Observed:
    name: str
    namespace: str
    uid: str
    generation: int
    registry: tuple[Entry, ...] = ()
    deployment: DeploymentState = DeploymentState()
    children: Mapping[tuple[str, str], Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    prometheus_operator: bool = False
    alert_rules: bool = False  # the operator should keep a PrometheusRule for this LeadModel
    signing_key_configured: bool = False
    scorer: ScorerReport | None = None
    status: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def owner(self) -> builders.Owner:
        return builders.Owner(name=self.name, namespace=self.namespace, uid=self.uid)

    def entry(self, version: int | None) -> Entry | None:
        return next((e for e in self.registry if e.version == version), None)
