"""kopf wiring: every trigger calls the same `reconcile()`.

Invalid spec -> kopf.PermanentError (after Ready=False/InvalidSpec and a Warning Event).
Waiting (a rollout in flight) is not an error: the plan's `requeue_after` becomes a wake-up
(`wakeups.py`), and changes of the Deployments and ReplicaSets a LeadModel owns wake it at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from leadops.operator import kube, reconcile, registry, wakeups
from leadops.operator import settings as operator_settings
from leadops.operator.rollout import Progress, rollout_state
from leadops.operator.spec import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

# Watches drive decisions; the timer only catches missed events and time-based state (age).
TIMER_SECONDS = operator_settings.load().resync_seconds
# How soon to look again when the API could not be reached.
API_RETRY_SECONDS = 2.0
_state: dict[str, kube.Kube] = {}
# What each owned Deployment/ReplicaSet last meant for a rollout: our own patches and status
# updates that change no decision do not wake the LeadModel again.
_seen: dict[tuple[str, str, str], tuple[Any, ...] | None] = {}


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


def _api_away(namespace: str, name: str, exc: kube.KubeError) -> None:
    """The API is away (restarting, etcd down): look again soon, not at kopf's 60 s retry."""
    logger.warning(
        "LeadModel %s/%s: %s; looking again in %.0f s", namespace, name, exc, API_RETRY_SECONDS
    )
    WAKEUPS.after(namespace, name, API_RETRY_SECONDS)


def _run(body: Mapping[str, Any]) -> None:
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    try:
        decided = reconcile.reconcile(client(), body)
    except reconcile.InvalidSpec as exc:
        raise kopf.PermanentError(str(exc)) from exc
    except kube.KubeError as exc:
        if not exc.transient:
            raise
        # The API is away (restarting, etcd down): look again soon, not at kopf's 60 s retry.
        logger.warning(
            "LeadModel %s/%s: %s; looking again in %.0f s", namespace, name, exc, API_RETRY_SECONDS
        )
        WAKEUPS.after(namespace, name, API_RETRY_SECONDS)
        return
    if decided is not None and decided.requeue_after:
        WAKEUPS.after(namespace, name, decided.requeue_after)


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
    try:
        body = client().get("LeadModel", namespace, name)
    except kube.KubeError as exc:
        if not exc.transient:
            raise
        logger.warning(
            "LeadModel %s/%s: %s; looking again in %.0f s", namespace, name, exc, API_RETRY_SECONDS
        )
        WAKEUPS.after(namespace, name, API_RETRY_SECONDS)
        return
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


def _deployment_moment(body: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What in a scorer Deployment's change can change a decision, or None if nothing can.

    Its rollout state (rollout.py, without Pods or clock): completed, stuck, available or not,
    refused Pods. A rollout that only moves along (a Pod more updated) decides nothing: the
    operator looks at a rollout in flight every 3 s anyway.
    """
    state = rollout_state(body)
    if state.version is None:
        # The no-model Deployment: the first model rolls out whatever became of it, so only
        # refused Pods (reported on Ready) are news.
        return None if state.blocked is None else (None, state.blocked)
    if state.progress is Progress.PROGRESSING and state.blocked is None:
        return None
    return (state.version, state.kind, state.progress, state.available, state.blocked)


def _replicaset_moment(body: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A ReplicaSet's conditions (ReplicaFailure: FailedCreate) say Pods are refused."""
    conditions = (body.get("status") or {}).get("conditions") or []
    return tuple((c.get("type"), c.get("status"), c.get("reason")) for c in conditions) or None


def _owned_changed(
    kind: str,
    type: str | None,
    body: Mapping[str, Any],
    moment: Callable[[Mapping[str, Any]], tuple[Any, ...] | None],
) -> None:
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    key = (kind, str(namespace), str(name))
    if type == "DELETED":
        _seen.pop(key, None)
        return
    now = moment(body)
    if _seen.get(key) == now:
        return
    _seen[key] = now
    if type is None or now is None:  # the initial listing (resume looks anyway), or nothing new
        return
    _owner_changed(namespace, (meta.get("labels") or {}).get(registry.LABEL_LEADMODEL))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "leadops"})
def on_scorer_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Completed, stuck, availability lost or back, Pods refused: decide the next step now.

    Also for the no-model Deployment (a new LeadModel's first rollout).
    """
    _owned_changed("Deployment", type, body, _deployment_moment)


@kopf.on.event("apps", "v1", "replicasets", labels={"app.kubernetes.io/managed-by": "leadops"})
def on_replicaset_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A ReplicaSet refused Pods (FailedCreate) or stopped refusing: the rollout's fate moved."""
    _owned_changed("ReplicaSet", type, body, _replicaset_moment)


@kopf.on.probe(id="registry")
def probe(**_: Any) -> str:
    return "ok"
