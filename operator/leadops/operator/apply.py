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

from leadops import objectstore
from leadops.operator import artifact_objects, builders, conditions, metrics, reasons, registry
from leadops.operator.actions import (
    CreateOnce,
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
    builders.ANN_DIGEST,
    builders.ANN_PREVIOUS_DIGEST,
    builders.ANN_ROLLOUT_KIND,
    builders.ANN_ROLLOUT_STARTED,
    builders.ANN_PREVIOUS_IMAGE,
    builders.ANN_ROLLED_BACK_IMAGE,
    builders.ANN_GUARDED_PREVIOUS,
    builders.ANN_GUARDED_DIGEST,
    builders.ANN_GUARDED_SINCE,
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
        (registry.MODEL_VERSION, builders.ANN_DIGEST),
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


class Refused(Exception):
    """This pass must not touch the world: a NameConflict or a child the API refuses."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def controlled_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    """True when `obj`'s controller ownerReference is the LeadModel with `uid`."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(r.get("uid") == uid and r.get("controller") for r in refs)


def owned_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    """Any ownerReference to `uid` (registry versions published before they named a controller)."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(r.get("uid") == uid for r in refs)


def _owner_words(obj: Mapping[str, Any]) -> str:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    controller = next((r for r in refs if r.get("controller")), None)
    if controller is not None:
        return f"controlled by {controller.get('kind')} {controller.get('name')}"
    if refs:
        return "owned by " + ", ".join(f"{r.get('kind')} {r.get('name')}" for r in refs)
    return "not made by LeadOps (no owner)"


def _conflict(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> Refused:
    meta = manifest["metadata"]
    return Refused(
        reasons.NAME_CONFLICT,
        f"{manifest['kind']} {meta['namespace']}/{meta['name']} already exists, "
        f"{_owner_words(live)}; LeadOps never adopts an object it did not make: rename or "
        "delete that object, or this LeadModel",
    )


def ensure(
    kube: Kube,
    manifest: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    uid: str,
    dry_run: bool = False,
) -> str:
    """Create or patch one object this LeadModel controls; returns what was done.

    Raises Refused (NameConflict) for an object of the same name that it does not control,
    and KubeError when the API refuses the object.
    """
    kind, meta = manifest["kind"], manifest["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    if live is not None and not controlled_by(live, uid):
        raise _conflict(manifest, live)
    # Unchanged only when nothing differs and no owned field is left to remove (an image
    # refusal the spec no longer asks for, say).
    if live is not None and contains(_with_removals(manifest, live), live):
        return "unchanged"
    if live is None:
        try:
            kube.create_unread(manifest, dry_run=dry_run)
        except KubeError as exc:
            if exc.status != 409:
                raise
            live = kube.get(kind, namespace, name)
            if live is None or not controlled_by(live, uid):
                raise _conflict(manifest, live or {}) from exc
        else:
            return "created"
    kube.patch(kind, namespace, name, _with_removals(manifest, live), dry_run=dry_run)
    return "patched"


def _writes(
    kube: Kube, plan: Plan, obs: Observed
) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Every child this plan creates or patches, with its live object as observed.

    Not read again when unobserved (a new LeadModel's pass reads none): the dry-run create
    answers 409 for a child that exists after all, and `ensure` reads it then (a stranger's is
    a NameConflict before any write). The RoleBinding, which is not dry-run, is read."""
    out: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    for action in plan.actions:
        if isinstance(action, Ensure | RollOut | RollBack):
            manifest = action.manifest
            key = (manifest["kind"], manifest["metadata"]["name"])
            live = obs.children.get(key)
            if live is None and key[0] == "RoleBinding":  # not dry-run below: read instead
                live = kube.get(key[0], obs.namespace, key[1])
            out.append((manifest, live))
    return out


def preflight(kube: Kube, plan: Plan, obs: Observed) -> None:
    """Refuse the whole pass before any write: a name taken by someone else's object, or a
    child the API would refuse (server-side dry run), so no pass leaves children half made."""
    writes = _writes(kube, plan, obs)
    for manifest, live in writes:
        if live is not None and not controlled_by(live, obs.uid):
            raise _conflict(manifest, live)
    for manifest, live in writes:
        if manifest["kind"] == "RoleBinding" and live is None:
            # Its Role is made in the same pass, and a dry run cannot see it; a RoleBinding
            # is fixed by the builder (nothing of the spec in it), so there is little to check.
            continue
        try:
            ensure(kube, manifest, live, uid=obs.uid, dry_run=True)
        except KubeError as exc:
            if exc.status in {401, 403} or exc.status >= 500 or exc.status == 0:
                raise  # our own credentials or the API itself: retried, not the spec's fault
            meta = manifest["metadata"]
            raise Refused(
                reasons.APPLY_FAILED,
                f"the API refused {manifest['kind']} {meta['namespace']}/{meta['name']}: {exc}",
            ) from exc


def refuse(kube: Kube, obs: Observed, refusal: Refused, *, now: datetime) -> None:
    """Ready=False with the refusal's reason and a Warning Event; everything else as it was."""
    previous = dict(obs.status)
    before = previous.get("conditions") or []
    ready = conditions.false(reasons.READY, refusal.reason, refusal.message[:1024])
    others = [c for c in conditions.from_status(before) if c.type != reasons.READY]
    old: Mapping[str, Any] = next((c for c in before if c.get("type") == reasons.READY), {})
    if (old.get("reason"), old.get("message")) != (ready.reason, ready.message):
        emit_event(kube, obs, EmitEvent("Warning", refusal.reason, refusal.message), now)
    logger.warning("%s %s/%s: %s", refusal.reason, obs.namespace, obs.name, refusal.message)
    stamped = conditions.stamp([ready, *others], before, generation=obs.generation, now=now)
    status = {
        **previous,
        "observedGeneration": obs.generation,
        "conditions": conditions.as_status(stamped),
    }
    write_status(kube, obs, status)


def _registry_object(kube: Kube, obs: Observed, name: str) -> Mapping[str, Any] | None:
    """A registry ConfigMap, if this LeadModel owns it (a same-named stranger is left alone)."""
    live = kube.get("ConfigMap", obs.namespace, name)
    if live is None:
        return None
    if not owned_by(live, obs.uid):
        logger.warning(
            "Left ConfigMap %s/%s alone: it is %s", obs.namespace, name, _owner_words(live)
        )
        return None
    return live


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


def apply(kube: Kube, plan: Plan, obs: Observed, *, now: datetime) -> Refused | None:
    """Execute the plan, or nothing of it when preflight refuses (then returned)."""
    try:
        preflight(kube, plan, obs)
        try:
            _execute(kube, plan, obs, now=now)
        except KubeError as exc:
            if exc.status not in {400, 422}:
                raise
            # Passed the dry run but refused for real (the world moved): say so, as above.
            raise Refused(reasons.APPLY_FAILED, f"the API refused a write: {exc}") from exc
    except Refused as refusal:
        refuse(kube, obs, refusal, now=now)
        return refusal
    write_status(kube, obs, status_body(plan.status))
    return None


def _execute(kube: Kube, plan: Plan, obs: Observed, *, now: datetime) -> None:
    """Every action in order; one log line for the children it created or patched (a new
    LeadModel's pass makes ten: a line each was most of a large fleet's log)."""
    done: dict[str, list[str]] = {"created": [], "patched": []}
    try:
        _each(kube, plan, obs, done, now=now)
    finally:
        for what, children in done.items():
            if children:
                logger.info(
                    "LeadModel %s/%s: %s %s", obs.namespace, obs.name, what, ", ".join(children)
                )


def _each(  # noqa: PLR0912
    kube: Kube, plan: Plan, obs: Observed, done: dict[str, list[str]], *, now: datetime
) -> None:
    for action in plan.actions:
        if isinstance(action, Ensure):
            live = obs.children.get((action.kind, action.name))
            did = ensure(kube, action.manifest, live, uid=obs.uid)
            if did != "unchanged":
                done[did].append(f"{action.kind} {action.name}")
        elif isinstance(action, CreateOnce):
            _create_once(kube, action, obs)
        elif isinstance(action, RollOut | RollBack):
            manifest = action.manifest
            name = manifest["metadata"]["name"]
            live = obs.children.get(("Deployment", name))
            did = ensure(kube, manifest, live, uid=obs.uid)
            if did != "unchanged":
                done[did].append(f"Deployment {name}")
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
            if _registry_object(kube, obs, action.name) is None:
                continue
            patch = {k: (v or None) for k, v in action.annotations.items()}
            try:
                kube.patch(
                    "ConfigMap", obs.namespace, action.name, {"metadata": {"annotations": patch}}
                )
            except KubeError as exc:
                if exc.status != 404:
                    raise
        elif isinstance(action, GarbageCollect):
            _collect(kube, obs, action)
        elif isinstance(action, RemoveChild):
            live = obs.children.get((action.kind, action.name))
            uid = str((live or {}).get("metadata", {}).get("uid", ""))
            if controlled_by(live, obs.uid) and _delete(
                kube, action.kind, obs.namespace, action.name, uid
            ):
                logger.info("Deleted %s %s/%s", action.kind, obs.namespace, action.name)
        elif isinstance(action, EmitEvent):
            if action.type == "Warning" and action.reason in reasons.GATE_REASONS:
                metrics.GATE_REJECTIONS.labels(reason=action.reason).inc()
            emit_event(kube, obs, action, now)


def _collect(kube: Kube, obs: Observed, action: GarbageCollect) -> None:
    """Delete each version's object (if in the bucket), then its ConfigMap: a failed object
    delete keeps the ConfigMap, so the next pass tries again and no object is orphaned."""
    bucket: artifact_objects.Bucket | None = None
    for name in action.names:
        live = _registry_object(kube, obs, name)
        if live is None:
            continue
        url = registry.object_url_of(live)
        if url:
            try:
                if bucket is None:
                    if action.s3 is None:
                        raise objectstore.StoreError(
                            objectstore.StoreError.UNREACHABLE, "spec.artifacts.s3 is not set"
                        )
                    bucket = artifact_objects.Bucket.of(kube, obs.namespace, action.s3)
                bucket.delete(url)
            except (objectstore.StoreError, ValueError) as exc:
                logger.warning(
                    "Kept ConfigMap %s/%s: cannot delete %s: %s", obs.namespace, name, url, exc
                )
                continue
        uid = str(live.get("metadata", {}).get("uid", ""))
        if _delete(kube, "ConfigMap", obs.namespace, name, uid):
            logger.info("Deleted registry ConfigMap %s/%s", obs.namespace, name)


def _create_once(kube: Kube, action: CreateOnce, obs: Observed) -> None:
    try:
        kube.create(action.manifest)
    except KubeError as exc:
        if exc.status != 409:  # already there (made by an earlier pass): left as it is
            raise
        return
    logger.info("Created %s %s/%s", action.kind, obs.namespace, action.name)


def _delete(kube: Kube, kind: str, namespace: str, name: str, uid: str) -> bool:
    """Delete exactly the object we checked (uid precondition); a replaced one is left alone."""
    try:
        return kube.delete(kind, namespace, name, uid=uid)
    except KubeError as exc:
        if exc.status == 409:  # a different object took the name meanwhile
            return False
        raise


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
