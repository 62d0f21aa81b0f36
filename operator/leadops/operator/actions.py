"""What a plan asks `apply` to do: small frozen values, executed idempotently, in order.

`Plan` bundles them with the conditions and the typed status the pass should leave behind.
Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadops.operator.spec import Condition, LeadModelStatus, S3Artifacts


@dataclass(frozen=True)
class Ensure:
    """Create or patch a child to match `manifest` (by kind and name)."""

    manifest: Mapping[str, Any] = field(compare=False)
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class EnsureCronJob(Ensure):
    pass


@dataclass(frozen=True)
class EnsureDeployment(Ensure):
    pass


@dataclass(frozen=True)
class CreateOnce:
    """Create an object that is never patched (a Job: its template is immutable); one that
    exists already is left as it is."""

    manifest: Mapping[str, Any] = field(compare=False)
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class RollOut:
    """Point the scorer Deployment at `version` (registry ConfigMap), replacing `previous`."""

    version: int
    previous: int | None
    manifest: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class RollBack:
    """Return the scorer to `version` after `failed` went bad (None: back to no model)."""

    version: int | None
    failed: int
    reason: str
    manifest: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class MarkVersion:
    """Add history annotations to a registry ConfigMap (its data stays immutable)."""

    name: str
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class GarbageCollect:
    names: tuple[str, ...]
    # The bucket of versions stored in object storage: their objects go before their ConfigMaps.
    s3: S3Artifacts | None = None


@dataclass(frozen=True)
class RemoveChild:
    """Delete a child this LeadModel no longer wants (e.g. its PrometheusRule, rules off)."""

    kind: str
    name: str


@dataclass(frozen=True)
class EmitEvent:
    type: str  # Normal | Warning
    reason: str
    message: str
    # Set for an Event that must exist once per occurrence (a promotion, a rollback): it names
    # the Event, so posting it again after a crash is refused by the API (409) instead of
    # doubling it. It is posted before the move it announces, so a crash cannot lose it.
    once_key: str = ""


Action = (
    Ensure | CreateOnce | RollOut | RollBack | MarkVersion | GarbageCollect | RemoveChild
) | EmitEvent


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    conditions: tuple[Condition, ...]
    status: LeadModelStatus = field(compare=False)
    requeue_after: float | None = None

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


def status_body(status: LeadModelStatus) -> dict[str, Any]:
    """The status as the subresource holds it (camelCase, JSON types)."""
    return status.model_dump(by_alias=True, mode="json")
