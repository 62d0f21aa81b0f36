"""kopf wiring: every trigger calls the same `reconcile()`.

Invalid spec -> kopf.PermanentError (after Ready=False/InvalidSpec and a Warning Event).
Waiting (a rollout in flight) is not an error: the plan's `requeue_after` becomes a wake-up
(`wakeups.py`), and changes of the Deployments and ReplicaSets a LeadModel owns wake it at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from leadops.operator import kube, reconcile, registry, wakeups
from leadops.operator import settings as operator_settings
from leadops.operator.spec import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

# Watches drive decisions; the timer only catches missed events and time-based state (age).
TIMER_SECONDS = operator_settings.load().resync_seconds
_state: dict[str, kube.Kube] = {}
# What each owned Deployment/ReplicaSet last looked like to a rollout (status only): our own
# metadata patches and no-op updates do not wake the LeadModel again.
_seen: dict[tuple[str, str, str], tuple[Any, ...]] = {}


def client() -> kube.Kube:
    if "kube" not in _state:
        _state["kube"] = kube.Kube(kube.load_api_client())
    return _state["kube"]


def _look_again(namespace: str, name: str) -> None:
    _owner_changed(namespace, name)


WAKEUPS = wakeups.Wakeups(_look_again)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a Pod the ServiceAccount, else $KUBECONFIG as it is now (not at import time)."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
        **kwargs
    ) or kopf.login_with_kubeconfig(**kwargs)
    return info


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: our status schema is structural and owned by us.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="leadops.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="leadops.io", key="last-handled-configuration"
    )
    settings.posting.enabled = False  # we post our own Events with our own reasons
    settings.execution.max_workers = operator_settings.load().workers
    settings.watching.server_timeout = 300
    # Retry the API every 2 s at most (for 10 minutes), not kopf's growing backoff (up to 21 s
    # between tries, 54 s in all): after an apiserver outage the first try that works resumes
    # the watches, so a version published meanwhile rolls out seconds after the API returns.
    settings.networking.error_backoffs = [0.5, 1.0, 1.0, *([2.0] * 300)]
    client()
    _seen.clear()
    WAKEUPS.start()


@kopf.on.cleanup()
def stop_wakeups(**_: Any) -> None:
    WAKEUPS.stop()


def _run(body: Mapping[str, Any]) -> None:
    meta = body.get("metadata") or {}
    try:
        decided = reconcile.reconcile(client(), body)
    except reconcile.InvalidSpec as exc:
        raise kopf.PermanentError(str(exc)) from exc
    if decided is not None and decided.requeue_after:
        WAKEUPS.after(str(meta.get("namespace")), str(meta.get("name")), decided.requeue_after)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def on_change(body: kopf.Body, **_: Any) -> None:
    _run(body)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_SECONDS, initial_delay=TIMER_SECONDS)
def on_timer(body: kopf.Body, **_: Any) -> None:
    _run(body)


def _owner_changed(namespace: str | None, name: str | None) -> None:
    if not namespace or not name:
        return
    body = client().get("LeadModel", namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return
    with contextlib.suppress(kopf.PermanentError):  # reported on the LeadModel already
        _run(body)


@kopf.on.event("", "v1", "configmaps", labels={registry.LABEL_COMPONENT: registry.COMPONENT_MODEL})
def on_registry_change(
    type: str, labels: Mapping[str, str], namespace: str | None, **_: Any
) -> None:
    """A new version published (or one deleted): decide now instead of at the next timer."""
    if type in {"ADDED", "DELETED"}:
        _owner_changed(namespace, labels.get(registry.LABEL_LEADMODEL))


def _rollout_fingerprint(body: Mapping[str, Any]) -> tuple[Any, ...]:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = tuple(
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    )
    return (
        meta.get("generation"),
        status.get("observedGeneration"),
        status.get("replicas"),
        status.get("updatedReplicas"),
        status.get("readyReplicas"),
        status.get("availableReplicas"),
        conditions,
    )


def _owned_changed(kind: str, type: str | None, body: Mapping[str, Any]) -> None:
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    key = (kind, str(namespace), str(name))
    if type == "DELETED":
        _seen.pop(key, None)
    else:
        seen = _rollout_fingerprint(body)
        if _seen.get(key) == seen:
            return
        _seen[key] = seen
    _owner_changed(namespace, (meta.get("labels") or {}).get(registry.LABEL_LEADMODEL))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "leadops"})
def on_scorer_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Rollout progress, completion, lost availability, a deadline: decide the next step now.

    Every change counts, also of the no-model Deployment (a new LeadModel's first rollout).
    """
    _owned_changed("Deployment", type, body)


@kopf.on.event("apps", "v1", "replicasets", labels={"app.kubernetes.io/managed-by": "leadops"})
def on_replicaset_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A ReplicaSet created, scaled, or refused Pods (FailedCreate): the rollout moved."""
    _owned_changed("ReplicaSet", type, body)


@kopf.on.probe(id="registry")
def probe(**_: Any) -> str:
    return "ok"
