"""Observe: read everything one LeadModel's reconcile needs from the cluster into a frozen
`Observed` (the only reconcile step that reads; `plan` decides from what this returns)."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from leadops import objectstore
from leadops.contract import artifact as contract
from leadops.operator import (
    artifact_facts,
    artifact_objects,
    ask_scorers,
    builders,
    followups_builders,
    network_policy,
    pii_gate,
    reasons,
    registry,
    replay_gate,
)
from leadops.operator import experiment as experiments
from leadops.operator.artifact_facts import ArtifactFacts
from leadops.operator.kube import Kube, KubeError
from leadops.operator.rollout import RolloutState, rollout_state
from leadops.operator.settings import OperatorSettings
from leadops.operator.spec import LeadModelSpec, MaturedAucAction, PiiBackfillRun
from leadops.operator.world import Observed, ReplayRun, ScorerReport

logger = logging.getLogger(__name__)

# Artifact data is immutable, so facts are cached by ConfigMap uid (and the key in use).
_FACTS: dict[tuple[str, str], ArtifactFacts] = {}
_FACTS_LOCK = threading.Lock()
_PROM: dict[str, tuple[float, bool]] = {}
PROM_CHECK_SECONDS = 60.0


def _secret_value(kube: Kube, namespace: str, name: str, key: str) -> bytes | None:
    secret = kube.get("Secret", namespace, name)
    raw = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(raw) if raw else None


def _signing_keys(
    kube: Kube, namespace: str, lm: LeadModelSpec
) -> tuple[contract.VerifyKeys | None, str]:
    ref = lm.signing.key_secret_ref
    if ref is None:
        return None, ""
    pem = _secret_value(kube, namespace, ref.name, ref.key)
    if pem is None:
        return None, ""
    try:
        keys = contract.VerifyKeys.from_bytes(pem)
    except contract.ArtifactError as exc:
        logger.warning("signing key %s/%s is unusable: %s", namespace, ref.name, exc.reason)
        return None, ""
    return keys, f"{ref.name}/{ref.key}/{hashlib.sha256(pem).hexdigest()}"


def _entry(
    cm: Mapping[str, Any],
    *,
    keys: contract.VerifyKeys | None,
    key_id: str,
    bucket: Callable[[], artifact_objects.Bucket],
) -> registry.Entry | None:
    meta = cm.get("metadata") or {}
    try:
        version = int((meta.get("labels") or {})[registry.MODEL_VERSION])
    except (KeyError, ValueError):
        return None
    cache_key = (str(meta.get("uid", "")), key_id)
    with _FACTS_LOCK:
        cached = _FACTS.get(cache_key)
    if cached is None:
        url = registry.object_url_of(cm)
        try:
            data = bucket().artifact(url) if url else registry.decode(cm)
            cached = artifact_facts.facts_from_bytes(data, version=version, keys=keys)
            if url:
                cached = _as_registered(cached, cm, url)
        except registry.RegistryError as exc:
            cached = ArtifactFacts(version=version, load_error=exc.reason, load_message=str(exc))
        except contract.ArtifactError as exc:
            cached = ArtifactFacts(version=version, load_error=exc.reason, load_message=exc.message)
        except (objectstore.StoreError, ValueError, KubeError) as exc:
            # Unreachable, missing or unreadable now: judged again next pass, not remembered.
            reason = getattr(exc, "reason", reasons.CORRUPT_ARTIFACT)
            logger.warning("cannot read model version %s of %s: %s", version, meta.get("name"), exc)
            return registry.entry_of(
                cm, facts=ArtifactFacts(version=version, load_error=reason, load_message=str(exc))
            )
        with _FACTS_LOCK:
            _FACTS[cache_key] = cached
    return registry.entry_of(cm, facts=cached)


def _as_registered(facts: ArtifactFacts, cm: Mapping[str, Any], url: str) -> ArtifactFacts:
    """An object whose digest is not the one published with its ConfigMap was replaced in the
    bucket: DigestMismatch, even when it is a validly sealed artifact of its own."""
    published = str(((cm.get("metadata") or {}).get("annotations") or {}).get(registry.ANN_DIGEST))
    if facts.load_error is not None or facts.digest == published:
        return facts
    return ArtifactFacts(
        version=facts.version,
        load_error=contract.ArtifactError.DIGEST_MISMATCH,
        load_message=f"{url} holds digest {facts.digest[:23]}, not the published "
        f"{published[:23]}: the object was replaced",
    )


def _bucket(kube: Kube, namespace: str, lm: LeadModelSpec) -> Callable[[], artifact_objects.Bucket]:
    """The LeadModel's bucket, made on first use (most passes read only cached versions)."""
    made: list[artifact_objects.Bucket] = []

    def get() -> artifact_objects.Bucket:
        if not made:
            s3 = lm.artifacts.s3
            if s3 is None:
                raise objectstore.StoreError(
                    objectstore.StoreError.UNREACHABLE,
                    "version is stored in S3 but spec.artifacts.s3 is not set",
                )
            made.append(artifact_objects.Bucket.of(kube, namespace, s3))
        return made[0]

    return get


def _prometheus_operator(kube: Kube) -> bool:
    now = time.monotonic()
    seen = _PROM.get("v")
    if seen is None or now - seen[0] > PROM_CHECK_SECONDS:
        found = kube.has_api("monitoring.coreos.com/v1", "servicemonitors") and kube.has_api(
            "monitoring.coreos.com/v1", "prometheusrules"
        )
        _PROM["v"] = (now, found)
        return found
    return seen[1]


def _scorer_report(
    kube: Kube, name: str, namespace: str, lm: LeadModelSpec, settings: OperatorSettings
) -> ScorerReport | None:
    """Every ready scorer Pod's report, combined (settings.scorer_pods), or the one URL's."""
    if settings.scorer_pods:
        urls = ask_scorers.pod_urls(kube, name, namespace)
    elif settings.scorer_url:
        urls = [settings.scorer_url.format(name=name, namespace=namespace)]
    else:
        return None
    if not urls:
        return None
    headers = {"Accept": "application/json"}
    ref = lm.scorer.api_key_secret_ref
    if ref is not None:
        key = _secret_value(kube, namespace, ref.name, ref.key)
        if key:
            headers["x-api-key"] = key.decode().strip().split(",")[0]
    guarded = lm.guards.matured_auc.action is not MaturedAucAction.OFF
    return ask_scorers.ask_all(urls, headers, matured=guarded)


def _rollout(
    kube: Kube, owner: builders.Owner, deployment: Mapping[str, Any] | None, now: datetime
) -> RolloutState:
    """The scorer's rollout state; its Pods are read only when they could explain a problem."""
    state = rollout_state(deployment, now=now)
    if not state.exists or (state.complete and state.available):
        return state
    selector = ",".join(f"{k}={v}" for k, v in builders.scorer_selector(owner).items())
    try:
        pods = kube.list("Pod", owner.namespace, selector=selector)
    except KubeError as exc:
        logger.warning("cannot list scorer Pods in %s: %s", owner.namespace, exc)
        return state
    return rollout_state(deployment, pods=pods, now=now)


def _backfill_pods(
    kube: Kube, owner: builders.Owner
) -> tuple[tuple[PiiBackfillRun, ...], tuple[str, ...]]:
    """The PII-backfill Pods' finished runs and the names of those still running."""
    selector = ",".join(f"{k}={v}" for k, v in builders.labels(owner, pii_gate.COMPONENT).items())
    try:
        pods = kube.list("Pod", owner.namespace, selector=selector)
    except KubeError as exc:  # the gate goes by the run the status recorded
        logger.warning("cannot list PII-backfill Pods in %s: %s", owner.namespace, exc)
        return (), ()
    runs = tuple(r for pod in pods if (r := pii_gate.run_of(pod)) is not None)
    running = tuple(sorted(str(p["metadata"]["name"]) for p in pods if pii_gate.is_running(p)))
    return runs, running


def _replay_runs(
    kube: Kube, owner: builders.Owner, lm: LeadModelSpec, status: Mapping[str, Any]
) -> tuple[ReplayRun, ...]:
    """The replay Jobs (spec.guards.replay) of this LeadModel's Pods, and the one status.replay
    names (created, maybe no Pod yet), with their Pods' results. Jobs are read by name: the
    operator may get and create Jobs, never list them."""
    if lm.guards.replay is None:
        return ()
    selector = ",".join(
        f"{k}={v}" for k, v in builders.labels(owner, builders.REPLAY_COMPONENT).items()
    )
    try:
        pods = kube.list("Pod", owner.namespace, selector=selector)
    except KubeError as exc:  # the gate goes by what the status recorded
        logger.warning("cannot list replay Pods in %s: %s", owner.namespace, exc)
        pods = []
    names = {
        str(((p.get("metadata") or {}).get("labels") or {}).get("job-name") or "") for p in pods
    }
    recorded = replay_gate.remembered(status)
    if recorded is not None and recorded.job:
        names.add(recorded.job)
    jobs = []
    for name in sorted(n for n in names if n):
        try:
            job = kube.get("Job", owner.namespace, name)
        except KubeError as exc:
            logger.warning("cannot read Job %s/%s: %s", owner.namespace, name, exc)
            continue
        if job is not None:
            jobs.append(job)
    return replay_gate.runs_of(jobs, pods)


def read(
    kube: Kube,
    body: Mapping[str, Any],
    lm: LeadModelSpec,
    settings: OperatorSettings,
    now: datetime,
) -> Observed:
    meta = body.get("metadata") or {}
    name, namespace = str(meta["name"]), str(meta["namespace"])
    owner = builders.Owner(name=name, namespace=namespace, uid=str(meta.get("uid", "")))
    keys, key_id = _signing_keys(kube, namespace, lm)
    bucket = _bucket(kube, namespace, lm)
    entries = [
        e
        for cm in kube.list("ConfigMap", namespace, selector=registry.selector(name))
        if (e := _entry(cm, keys=keys, key_id=key_id, bucket=bucket)) is not None
    ]
    prom = _prometheus_operator(kube)
    rules = prom and settings.alert_rules
    children: dict[tuple[str, str], Mapping[str, Any]] = {}
    # The autoscaler is read whether spec.scorer.autoscaling is set or not: unset removes it.
    wanted = builders.child_keys(
        name,
        prometheus_operator=prom,
        alert_rules=rules,
        policy=lm.network_policy,
        replays=lm.guards.replay is not None,
        autoscaling=True,
    )
    if prom and not rules:  # one made before the rules were turned off, to remove
        wanted.append(("PrometheusRule", builders.names(name)["alerts"]))
    # Read with or without spec.experiment: one left from a removed experiment is deleted.
    wanted.append(("CronJob", builders.names(name)["experiment"]))
    # Read whether spec.followUps is set or not: removing it removes what it made.
    wanted += followups_builders.child_keys(name, prometheus_operator=prom)
    # NetworkPolicies made before spec.networkPolicy changed, to remove.
    wanted += [key for key in network_policy.all_keys(name) if key not in wanted]
    if lm.training.bootstrap is not None:
        wanted.append(("Job", builders.names(name)["bootstrap"]))
    # Never reconciled: nothing to read yet; apply creates, and a 409 falls back to read+patch.
    first_pass = not entries and not (body.get("status") or {}).get("observedGeneration")
    for kind, child in [] if first_pass else wanted:
        try:
            live = kube.get(kind, namespace, child)
        except KubeError as exc:
            logger.warning("cannot read %s %s/%s: %s", kind, namespace, child, exc)
            continue
        if live is not None:
            children[(kind, child)] = live
    deployment = children.get(("Deployment", builders.names(name)["scorer"]))
    # Nor Pods of backfill runs or verdicts of evaluations: their CronJobs are not made yet.
    backfill_runs, backfill_running = ((), ()) if first_pass else _backfill_pods(kube, owner)
    verdicts = (
        ()
        if first_pass
        else tuple(kube.list("ConfigMap", namespace, selector=experiments.verdict_selector(name)))
    )
    return Observed(
        name=name,
        namespace=namespace,
        uid=owner.uid,
        generation=int(meta.get("generation") or 0),
        registry=tuple(sorted(entries, key=lambda e: e.version)),
        deployment=_rollout(kube, owner, deployment, now),
        children=MappingProxyType(children),
        prometheus_operator=prom,
        alert_rules=rules,
        alert_for=settings.alert_for,
        scrape_interval=settings.scrape_interval,
        jobs_image=settings.jobs_image,
        # A key named but unreadable still counts: nothing unsigned passes while it is fixed.
        signing_key_configured=lm.signing.key_secret_ref is not None,
        scorer=_scorer_report(kube, name, namespace, lm, settings),
        status=MappingProxyType(dict(body.get("status") or {})),
        experiment_verdicts=verdicts,
        annotations=MappingProxyType(
            {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        ),
        backfill_runs=backfill_runs,
        backfill_running=backfill_running,
        created=registry.parse_time(str(meta.get("creationTimestamp") or "")),
        replay_runs=_replay_runs(kube, owner, lm, body.get("status") or {}),
    )
