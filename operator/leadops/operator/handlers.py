"""kopf wiring: every trigger calls the same `reconcile()`.

Only event handlers, no change handlers (kopf's on.create/update/resume): for those kopf records
the handled spec in an annotation on every LeadModel, one more PATCH of the object and one more
watch event each time it changes, and deep-copies every watched object on every event to find
the changes (a Deployment's status moving included). Here a LeadModel's event reconciles it
when its uid, generation, labels or annotations differ from what the last pass started from
(`_meaning`, kept in memory): our own status writes change none of them. The operator's start
(kopf's initial listing) reconciles every LeadModel, as a resume would.

Invalid spec: Ready=False/InvalidSpec and a Warning Event, then nothing until it changes (or
the resync looks again).
Waiting (a rollout in flight) is not an error: the plan's `requeue_after` becomes a wake-up
(`wakeups.py`), and changes of the Deployments and ReplicaSets a LeadModel owns wake it at once.

No kopf timer or daemon: kopf puts its finalizer on every object one serves (kopf 1.45,
`requires_finalizer=True`), so a LeadModel could not be deleted once the operator was gone
(`helm uninstall` first: its namespace Terminating forever). The resync is a wake-up instead:
every pass asks to look at its LeadModel again within LEADOPS_RESYNC_SECONDS, and a LeadModel
that is gone asks nothing. Children go by ownerReferences at deletion; only artifacts in a bucket
are removed by the operator, when it sees the LeadModel go (`on_leadmodel`, best effort).
kopf itself removes the finalizer an older operator left once no handler needs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from leadops.operator import artifact_objects, kube, reconcile, registry, wakeups
from leadops.operator import experiment as experiments
from leadops.operator import settings as operator_settings
from leadops.operator.rollout import Progress, rollout_state
from leadops.operator.spec import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

# The resync period and the selector, read when the operator starts (`configure`), not when
# this module is imported: an operator started in a process that imported it earlier (a test
# run, `leadops operator` after its flags set the environment) keeps the environment it was
# started with. Fixed until a restart, like the watches (as --namespace is).
_started: dict[str, operator_settings.OperatorSettings] = {}
# How soon to look again when the API could not be reached.
API_RETRY_SECONDS = 2.0
# How soon to look again for a Secret a LeadModel names that does not exist yet.
MISSING_SECRET_RETRY_SECONDS = 10.0
_state: dict[str, kube.Kube] = {}
# What each owned Deployment/ReplicaSet last meant for a rollout: our own patches and status
# updates that change no decision do not wake the LeadModel again.
_seen: dict[tuple[str, str, str], tuple[Any, ...] | None] = {}
# (namespace, name) -> what each LeadModel's last pass started from (`_meaning`).
_handled: dict[tuple[str, str], tuple[Any, ...]] = {}


def _settings() -> operator_settings.OperatorSettings:
    if "settings" not in _started:
        _started["settings"] = operator_settings.load()
    return _started["settings"]


def _resync_seconds() -> float:
    """Watches drive decisions; the resync only catches missed events and time-based state
    (age, a verdict that matured)."""
    return _settings().resync_seconds


def client() -> kube.Kube:
    if "kube" not in _state:
        _state["kube"] = kube.Kube(kube.load_api_client(), timeout=kube.OPERATOR_TIMEOUT_SECONDS)
    return _state["kube"]


def _look_again(namespace: str, name: str) -> None:
    try:
        _owner_changed(namespace, name)
    except Exception:
        WAKEUPS.after(namespace, name, _resync_seconds())  # an error must not end the resyncs
        raise


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
    # kopf's bookkeeping, were there any, in annotations: our status schema is ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="leadops.io")
    settings.persistence.diffbase_storage = NoChangeHandlers()
    # Only our own scorer Deployments and ReplicaSets, filtered by the API server: a cluster's
    # other workloads (and their status churn) never reach the operator.
    for plural in ("deployments", "replicasets"):
        settings.watching.label_selectors["apps", plural] = f"{registry.MANAGED_BY}=leadops"
    settings.posting.enabled = False  # we post our own Events with our own reasons
    _started["settings"] = started = operator_settings.load()
    settings.execution.max_workers = started.workers
    settings.watching.server_timeout = 300
    # Retry the API every 2 s at most (for 10 minutes), not kopf's growing backoff (up to 21 s
    # between tries, 54 s in all): after an apiserver outage the first try that works resumes
    # the watches, so a version published meanwhile rolls out seconds after the API returns.
    settings.networking.error_backoffs = [0.5, 1.0, 1.0, *([2.0] * 300)]
    client()
    _seen.clear()
    _handled.clear()
    WAKEUPS.start()


@kopf.on.cleanup()
def stop_wakeups(**_: Any) -> None:
    WAKEUPS.stop()


class NoChangeHandlers(kopf.DiffBaseStorage):
    """No change handlers, so no diff base: kopf would build the "essence" of every watched
    object (a deep copy) on every event to diff it against the last handled one."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def in_shard(labels: Mapping[str, str] | None = None, **_: Any) -> bool:
    """This operator's LeadModels (`--selector`); other operators act on the rest."""
    return _settings().selector.matches(labels)


# (namespace, ConfigMap) -> LeadModels whose follow-up templates it holds: a change of the
# ConfigMap reconciles them now (re-validated, and the Pods roll), not at the next resync.
_template_users: dict[tuple[str, str], set[str]] = {}
_template_users_lock = threading.Lock()


def _template_configmaps(body: Mapping[str, Any]) -> set[str]:
    """The ConfigMaps `spec.followUps.tenants[].templates[].configMapRef` names (raw spec)."""
    follow_ups = (body.get("spec") or {}).get("followUps") or {}
    names = set()
    for tenant in follow_ups.get("tenants") or []:
        for template in (tenant or {}).get("templates") or []:
            ref = (template or {}).get("configMapRef") or {}
            if isinstance(ref, Mapping) and ref.get("name"):
                names.add(str(ref["name"]))
    return names


def _remember_templates(namespace: str, name: str, configmaps: set[str]) -> None:
    with _template_users_lock:
        for key, users in list(_template_users.items()):
            if key[0] == namespace and key[1] not in configmaps:
                users.discard(name)
                if not users:
                    del _template_users[key]
        for cm in configmaps:
            _template_users.setdefault((namespace, cm), set()).add(name)


def _run(body: Mapping[str, Any]) -> None:
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    _remember_templates(namespace, name, _template_configmaps(body))
    gone = False
    try:
        gone = _reconcile(namespace, name, body)
    finally:
        if not gone:  # the resync: look again by then whatever happened (earliest wins)
            WAKEUPS.after(namespace, name, _resync_seconds())


def _reconcile(namespace: str, name: str, body: Mapping[str, Any]) -> bool:
    """One pass; True when the LeadModel is gone (or going), so nothing is to look at again."""
    try:
        decided = reconcile.reconcile(client(), body)
    except reconcile.MissingSecret:
        # Reported on the LeadModel; Secrets are not watched, so look again for it.
        WAKEUPS.after(namespace, name, MISSING_SECRET_RETRY_SECONDS)
        return False
    except reconcile.InvalidSpec:
        return False  # reported on the LeadModel; the resync looks again
    except kube.KubeError as exc:
        if not exc.transient:
            raise
        # The API is away (restarting, etcd down): look again soon, not at kopf's 60 s retry.
        logger.warning(
            "LeadModel %s/%s: %s; looking again in %.0f s", namespace, name, exc, API_RETRY_SECONDS
        )
        WAKEUPS.after(namespace, name, API_RETRY_SECONDS)
        return False
    if decided is None:
        return True
    if decided.requeue_after:
        WAKEUPS.after(namespace, name, decided.requeue_after)
    return False


def _meaning(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a LeadModel's pass decides from besides the world: its spec (by generation), its
    labels (the shard) and annotations (approvals, pins). Not its status: we write that. The uid
    too: one deleted and made again while a watch was down is new, with generation 1 again."""
    meta = body.get("metadata") or {}
    labels = tuple(sorted((meta.get("labels") or {}).items()))
    annotations = tuple(sorted((meta.get("annotations") or {}).items()))
    return (meta.get("uid"), meta.get("generation"), labels, annotations)


@kopf.on.event(GROUP, VERSION, PLURAL, when=in_shard)
def on_leadmodel(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Made, changed or listed at the start: reconcile; deleted: remove its bucket objects.

    A deletion is an event, not on.delete: kopf would put a finalizer on the LeadModel for it.
    """
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    if type == "DELETED":
        _handled.pop(key, None)
        artifact_objects.leadmodel_deleted(client(), body)
        return
    meaning = _meaning(body)
    if _handled.get(key) == meaning:
        return  # our own status write, or another change no decision reads
    _handled[key] = meaning
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
    meta = (body or {}).get("metadata") or {}
    if body is None or meta.get("deletionTimestamp") or not in_shard(meta.get("labels")):
        return
    _run(body)


@kopf.on.event("", "v1", "configmaps", labels={registry.LABEL_COMPONENT: registry.COMPONENT_MODEL})
@kopf.on.event(
    "",
    "v1",
    "configmaps",
    id="on_verdict_change",
    labels={registry.LABEL_COMPONENT: experiments.COMPONENT_VERDICT},
)
def on_registry_change(
    type: str, labels: Mapping[str, str], namespace: str | None, **_: Any
) -> None:
    """A new version or experiment verdict published (or one deleted): decide now instead of
    at the next resync."""
    if type in {"ADDED", "DELETED"}:
        _owner_changed(namespace, labels.get(registry.LABEL_LEADMODEL))


def _uses_templates(namespace: str | None, name: str | None, **_: Any) -> bool:
    with _template_users_lock:
        return (str(namespace), str(name)) in _template_users


@kopf.on.event("", "v1", "configmaps", id="on_template_change", when=_uses_templates)
def on_template_change(type: str | None, namespace: str | None, name: str | None, **_: Any) -> None:
    """A ConfigMap that follow-up templates are read from was made, changed or deleted:
    check the templates again now (InvalidSpec, or a new config that rolls the Pods)."""
    if type is None:  # the initial listing: resume reconciles every LeadModel anyway
        return
    with _template_users_lock:
        users = sorted(_template_users.get((str(namespace), str(name)), set()))
    for leadmodel in users:
        _owner_changed(namespace, leadmodel)


# Also the API server's filter of these watches (`configure`); checked here all the same.
_OURS = {registry.MANAGED_BY: "leadops"}


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


@kopf.on.event("apps", "v1", "deployments", labels=_OURS)
def on_scorer_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Completed, stuck, availability lost or back, Pods refused: decide the next step now.

    Also for the no-model Deployment (a new LeadModel's first rollout).
    """
    _owned_changed("Deployment", type, body, _deployment_moment)


@kopf.on.event("apps", "v1", "replicasets", labels=_OURS)
def on_replicaset_change(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A ReplicaSet refused Pods (FailedCreate) or stopped refusing: the rollout's fate moved."""
    _owned_changed("ReplicaSet", type, body, _replicaset_moment)


@kopf.on.probe(id="registry")
def probe(**_: Any) -> str:
    return "ok"
