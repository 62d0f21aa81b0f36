"""kopf wiring: every trigger calls the same `reconcile()`; errors are control flow.

Invalid spec -> kopf.PermanentError (after Ready=False/InvalidSpec and a Warning Event);
a rollout in flight -> kopf.TemporaryError(delay) so kopf looks again soon.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from leadops.operator import kube, reconcile, registry
from leadops.operator import settings as operator_settings
from leadops.operator.spec import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

# Watches drive decisions; the timer only catches missed events and time-based state (age).
TIMER_SECONDS = operator_settings.load().resync_seconds
_state: dict[str, kube.Kube] = {}


def client() -> kube.Kube:
    if "kube" not in _state:
        _state["kube"] = kube.Kube(kube.load_api_client())
    return _state["kube"]


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
    client()


def _run(body: kopf.Body) -> None:
    try:
        decided = reconcile.reconcile(client(), body)
    except reconcile.InvalidSpec as exc:
        raise kopf.PermanentError(str(exc)) from exc
    if decided is not None and decided.requeue_after:
        raise kopf.TemporaryError("rollout in progress", delay=decided.requeue_after)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def on_change(body: kopf.Body, **_: Any) -> None:
    _run(body)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_SECONDS, initial_delay=TIMER_SECONDS)
def on_timer(body: kopf.Body, **_: Any) -> None:
    with contextlib.suppress(kopf.TemporaryError):  # the timer comes back anyway
        _run(body)


def _owner_changed(namespace: str | None, name: str | None) -> None:
    if not namespace or not name:
        return
    body = client().get("LeadModel", namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return
    with contextlib.suppress(reconcile.InvalidSpec):  # reported on the LeadModel already
        reconcile.reconcile(client(), body)


@kopf.on.event("", "v1", "configmaps", labels={registry.LABEL_COMPONENT: registry.COMPONENT_MODEL})
def on_registry_change(
    type: str, labels: Mapping[str, str], namespace: str | None, **_: Any
) -> None:
    """A new version published (or one deleted): decide now instead of at the next timer."""
    if type in {"ADDED", "DELETED"}:
        _owner_changed(namespace, labels.get(registry.LABEL_LEADMODEL))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "leadops"})
def on_scorer_change(
    type: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    namespace: str | None,
    **_: Any,
) -> None:
    """Rollout progress (Available, ProgressDeadlineExceeded) decides the next step."""
    if type != "MODIFIED" or registry.MODEL_VERSION not in annotations:
        return
    _owner_changed(namespace, labels.get(registry.LABEL_LEADMODEL))


@kopf.on.probe(id="registry")
def probe(**_: Any) -> str:
    return "ok"
