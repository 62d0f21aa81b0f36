"""Act: execute a Plan idempotently (create-or-patch by name, tolerate 404/409), write status.

Merge patches only name the fields we own, so labels and annotations users add survive.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadops.operator import builders, metrics, reasons, registry
from leadops.operator.actions import (
    EmitEvent,
    Ensure,
    GarbageCollect,
    MarkVersion,
    Plan,
    RemoveChild,
    RollBack,
    RollOut,
    status_body,
)
from leadops.operator.conditions import rfc3339
from leadops.operator.kube import Kube, KubeError
from leadops.operator.world import Observed

logger = logging.getLogger(__name__)

# Pod-spec lists we own: absent from the desired object means "remove it".
_OWNED_OPTIONAL = ("initContainers",)
_DEPLOYMENT_ANNOTATIONS = (
    registry.MODEL_VERSION,
    builders.ANN_PREVIOUS,
    builders.ANN_ROLLOUT_KIND,
    builders.ANN_ROLLOUT_STARTED,
)


def contains(desired: Any, live: Any) -> bool:
    """True when every field of `desired` already has that value in `live`."""
    if desired in ({}, []) and live is None:
        return True  # the apiserver omits empty lists and maps (omitempty)
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            contains(v, live.get(k)) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contains(d, lv) for d, lv in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def _nulls(
    owned: tuple[str, ...], want: Mapping[str, Any], have: Mapping[str, Any]
) -> dict[str, Any]:
    return {k: None for k in owned if k in have and k not in want}


def _with_removals(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merge patch: desired fields, plus explicit nulls for owned fields no longer wanted."""
    patch: dict[str, Any] = copy.deepcopy(
        {k: v for k, v in desired.items() if k not in {"apiVersion", "kind"}}
    )
    if desired.get("kind") != "Deployment" or live is None:
        return patch
    live_meta = live.get("metadata") or {}
    live_template = (live.get("spec") or {}).get("template") or {}
    meta, template = patch["metadata"], patch["spec"]["template"]
    ann = _nulls(
        _DEPLOYMENT_ANNOTATIONS, meta.get("annotations") or {}, live_meta.get("annotations") or {}
    )
    if ann:
        meta["annotations"] = {**(meta.get("annotations") or {}), **ann}
    tmeta = template["metadata"]
    live_tmeta = live_template.get("metadata") or {}
    tann = _nulls(
        (registry.MODEL_VERSION,),
        tmeta.get("annotations") or {},
        live_tmeta.get("annotations") or {},
    )
    if tann:
        tmeta["annotations"] = {**(tmeta.get("annotations") or {}), **tann}
    tlab = _nulls(
        (registry.MODEL_VERSION,), tmeta.get("labels") or {}, live_tmeta.get("labels") or {}
    )
    if tlab:
        tmeta["labels"] = {**tmeta["labels"], **tlab}
    template["spec"].update(
        _nulls(_OWNED_OPTIONAL, template["spec"], live_template.get("spec") or {})
    )
    return patch


def ensure(kube: Kube, manifest: Mapping[str, Any], live: Mapping[str, Any] | None) -> str:
    """Create or patch one object; returns what was done (created/patched/unchanged)."""
    kind, meta = manifest["kind"], manifest["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    if live is not None and contains(manifest, live):
        return "unchanged"
    if live is None:
        try:
            kube.create(manifest)
            logger.info("Created %s %s/%s", kind, namespace, name)
            return "created"
        except KubeError as exc:
            if exc.status != 409:
                raise
            live = kube.get(kind, namespace, name)
    kube.patch(kind, namespace, name, _with_removals(manifest, live))
    logger.info("Patched %s %s/%s", kind, namespace, name)
    return "patched"


def emit_event(kube: Kube, obs: Observed, event: EmitEvent, now: datetime) -> None:
    stamp = rfc3339(now)
    suffix = (
        hashlib.sha256(event.once_key.encode()).hexdigest()[:16]
        if event.once_key
        else uuid.uuid4().hex[:16]
    )
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{obs.name}.{suffix}",
            "namespace": obs.namespace,
        },
        "involvedObject": {
            "apiVersion": "leadops.io/v1alpha1",
            "kind": "LeadModel",
            "name": obs.name,
            "namespace": obs.namespace,
            "uid": obs.uid,
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "source": {"component": "leadops-operator"},
        "reportingComponent": "leadops.io/operator",
        "reportingInstance": "leadops-operator",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        kube.create(body)
    except KubeError as exc:  # an Event lost is not worth failing the reconcile
        if exc.status == 409 and event.once_key:
            return  # posted before a crash: said once already
        logger.warning(
            "cannot post Event %s for %s/%s: %s", event.reason, obs.namespace, obs.name, exc
        )


def apply(kube: Kube, plan: Plan, obs: Observed, *, now: datetime) -> None:  # noqa: PLR0912
    for action in plan.actions:
        if isinstance(action, Ensure):
            ensure(kube, action.manifest, obs.children.get((action.kind, action.name)))
        elif isinstance(action, RollOut | RollBack):
            manifest = action.manifest
            name = manifest["metadata"]["name"]
            live = obs.children.get(("Deployment", name))
            ensure(kube, manifest, live)
            if isinstance(action, RollOut):
                metrics.ROLLOUTS.inc()
                logger.info(
                    "Rolling out Deployment %s/%s to version %s",
                    obs.namespace,
                    name,
                    action.version,
                )
            else:
                metrics.ROLLBACKS.labels(reason=action.reason).inc()
                logger.warning(
                    "Rolled back Deployment %s/%s from version %s to %s (%s)",
                    obs.namespace, name, action.failed, action.version, action.reason,
                )  # fmt: skip
        elif isinstance(action, MarkVersion):
            patch = {k: (v or None) for k, v in action.annotations.items()}
            try:
                kube.patch(
                    "ConfigMap", obs.namespace, action.name, {"metadata": {"annotations": patch}}
                )
            except KubeError as exc:
                if exc.status != 404:
                    raise
        elif isinstance(action, GarbageCollect):
            for name in action.names:
                if kube.delete("ConfigMap", obs.namespace, name):
                    logger.info("Deleted registry ConfigMap %s/%s", obs.namespace, name)
        elif isinstance(action, RemoveChild):
            if kube.delete(action.kind, obs.namespace, action.name):
                logger.info("Deleted %s %s/%s", action.kind, obs.namespace, action.name)
        elif isinstance(action, EmitEvent):
            if action.type == "Warning" and action.reason in reasons.GATE_REASONS:
                metrics.GATE_REJECTIONS.labels(reason=action.reason).inc()
            emit_event(kube, obs, action, now)
    write_status(kube, obs, status_body(plan.status))


def write_status(kube: Kube, obs: Observed, status: Mapping[str, Any]) -> bool:
    """Patch the status subresource only when it changed (no write storms at steady state)."""
    present = {k: v for k, v in status.items() if v is not None}
    if dict(obs.status) == present:
        return False
    try:
        kube.patch("LeadModel", obs.namespace, obs.name, {"status": dict(status)}, sub="status")
    except KubeError as exc:
        if exc.status == 404:  # deleted while we worked
            return False
        raise
    return True
