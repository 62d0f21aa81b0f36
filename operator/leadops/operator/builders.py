"""Pure manifest builders: a LeadModel (and the version to serve) in, child objects out.

Every builder returns a plain dict the API server accepts as is, owned by the LeadModel so
deleting it removes its children. Tested against golden YAML in tests/unit/golden/.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadops.contract import artifact as contract
from leadops.contract import health
from leadops.operator import alerts, registry, spec

SCORER_PORT = 8080
MODEL_DIR = "/var/lib/leadops/model"
REGISTRY_DIR = "/var/lib/leadops/registry"
WORK_DIR = "/work"
API_KEY_DIR = "/var/run/secrets/leadops/api-key"
SIGNING_KEY_DIR = "/var/run/secrets/leadops/signing"
KEY_SALT_DIR = "/var/run/secrets/leadops/key-salt"
INGEST_KEYS_DIR = "/var/run/secrets/leadops/ingest-keys"

# Deployment annotations: where the rollout state lives, so a restarted operator resumes.
ANN_PREVIOUS = "leadops.io/previous-version"
# The digests the operator validated: what the scorer may serve (and roll back to).
ANN_DIGEST = "leadops.io/model-digest"
ANN_PREVIOUS_DIGEST = "leadops.io/previous-digest"
ANN_ROLLOUT_KIND = "leadops.io/rollout-kind"
ANN_ROLLOUT_STARTED = "leadops.io/rollout-started-at"
ROLLOUT_FORWARD = "RollOut"
ROLLOUT_BACK = "RollBack"


@dataclass(frozen=True)
class Owner:
    """The LeadModel that owns the children."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
            "kind": spec.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class Rollout:
    """What the scorer Deployment should serve and how it got there."""

    version: int | None = None
    previous: int | None = None
    kind: str = ROLLOUT_FORWARD
    started_at: str = ""
    # sha256: digests the operator validated for `version` and `previous`.
    digest: str = ""
    previous_digest: str = ""


def names(leadmodel: str) -> dict[str, str]:
    return {
        "scorer": f"{leadmodel}-scorer",
        "train": f"{leadmodel}-train",
        "backfill": f"{leadmodel}-pii-backfill",
        "jobs": f"{leadmodel}-jobs",
        "alerts": f"{leadmodel}-alerts",
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "leadops",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "leadops",
        registry.LABEL_LEADMODEL: owner.name,
    }


def _metadata(owner: Owner, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component),
        "ownerReferences": [owner.reference()],
    }


def _resources(res: spec.Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if res.requests:
        out["requests"] = dict(sorted(res.requests.items()))
    if res.limits:
        out["limits"] = dict(sorted(res.limits.items()))
    return out


def _secret_env(name: str, ref: spec.SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def scorer_url(owner: Owner) -> str:
    return f"http://{names(owner.name)['scorer']}.{owner.namespace}.svc:{SCORER_PORT}"


def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def service_account(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, names(owner.name)["jobs"], "jobs"),
        "automountServiceAccountToken": True,
    }


def role(owner: Owner) -> dict[str, Any]:
    """Least privilege for the jobs: create registry ConfigMaps, nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, names(owner.name)["jobs"], "jobs"),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
    }


def role_binding(owner: Owner) -> dict[str, Any]:
    jobs = names(owner.name)["jobs"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner, jobs, "jobs"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": jobs},
        "subjects": [{"kind": "ServiceAccount", "name": jobs, "namespace": owner.namespace}],
    }


def _pii_settings(lm: spec.LeadModelSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """spec.pii for a container: env (regions, key salt file) and the salt Secret's volume."""
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if lm.pii.regions:
        env.append({"name": "LEADOPS_PII_REGIONS", "value": ",".join(lm.pii.regions)})
    if lm.pii.key_salt_secret_ref is not None:
        ref = lm.pii.key_salt_secret_ref
        env.append({"name": "LEADOPS_KEY_SALT_FILE", "value": f"{KEY_SALT_DIR}/{ref.key}"})
        volumes.append({"name": "key-salt", "secret": {"secretName": ref.name}})
    return env, volumes


_KEY_SALT_MOUNT: dict[str, Any] = {"name": "key-salt", "mountPath": KEY_SALT_DIR, "readOnly": True}


def _job_pod(
    owner: Owner,
    *,
    component: str,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels(owner, component)},
        "spec": {
            "serviceAccountName": names(owner.name)["jobs"],
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
            "containers": [container],
            "volumes": [{"name": "work", "emptyDir": {}}, *volumes],
        },
    }


def training_cronjob(owner: Owner, lm: spec.LeadModelSpec) -> dict[str, Any]:
    """Nightly retraining: export outcomes from the scorer, train, publish to the registry."""
    artifact = f"{WORK_DIR}/model.json"
    train = [
        "leadops", "train",
        "--input", f"{scorer_url(owner)}/ops/export/outcomes.csv",
        "--output", artifact,
    ]  # fmt: skip
    publish = [
        "leadops", "publish",
        "--artifact", artifact,
        "--leadmodel", owner.name,
        "--namespace", owner.namespace,
        "--owner-uid", owner.uid,
    ]  # fmt: skip
    env: list[dict[str, Any]] = []
    if lm.scorer.api_key_secret_ref is not None:
        env.append(_secret_env("LEADOPS_API_KEY", lm.scorer.api_key_secret_ref))
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": WORK_DIR}]
    volumes: list[dict[str, Any]] = []
    if lm.signing.key_secret_ref is not None:
        # Only the Job that signs holds the signing key; the scorer serves by validated digest.
        ref = lm.signing.key_secret_ref
        env.append({"name": contract.ENV_SIGNING_KEY_FILE, "value": f"{SIGNING_KEY_DIR}/{ref.key}"})
        volumes.append({"name": "signing-key", "secret": {"secretName": ref.name}})
        mounts.append({"name": "signing-key", "mountPath": SIGNING_KEY_DIR, "readOnly": True})
    container = {
        "name": "train",
        "image": lm.training.image or lm.scorer.image,
        "command": ["/bin/sh", "-c", f"{shlex.join(train)} && {shlex.join(publish)}"],
        "resources": _resources(lm.training.resources),
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    return _cronjob(
        owner,
        lm,
        child="train",
        component="train",
        schedule=lm.training.schedule,
        suspend=lm.training.suspend,
        container=container,
        active_deadline_seconds=lm.training.active_deadline_seconds,
        volumes=volumes,
    )


def backfill_cronjob(owner: Owner, lm: spec.LeadModelSpec) -> dict[str, Any]:
    """Weekly PII scrub of what is already in Redis."""
    args = ["pii-backfill", "--pattern", lm.pii_backfill.key_pattern]
    if lm.pii_backfill.dry_run:
        args.append("--dry-run")
    # The scorer's regions and key salt: the same findings, and old chat keys renamed.
    pii_env, pii_volumes = _pii_settings(lm)
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": WORK_DIR}]
    if pii_volumes:
        mounts.append(_KEY_SALT_MOUNT)
    container = {
        "name": "pii-backfill",
        "image": lm.pii_backfill.image or lm.scorer.image,
        "command": ["leadops"],
        "args": args,
        "env": [_secret_env("REDIS_URL", lm.redis.url_secret_ref), *pii_env],
        "resources": _resources(lm.pii_backfill.resources),
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    return _cronjob(
        owner,
        lm,
        child="backfill",
        component="pii-backfill",
        schedule=lm.pii_backfill.schedule,
        suspend=lm.pii_backfill.suspend,
        container=container,
        active_deadline_seconds=None,
        volumes=pii_volumes,
    )


def _cronjob(
    owner: Owner,
    lm: spec.LeadModelSpec,
    *,
    child: str,
    component: str,
    schedule: str,
    suspend: bool,
    container: dict[str, Any],
    active_deadline_seconds: int | None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The CronJob both jobs share: UTC schedule, never two at once, one retry, kept a day."""
    job_spec: dict[str, Any] = {"backoffLimit": 1}
    if active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = active_deadline_seconds
    job_spec["ttlSecondsAfterFinished"] = 86_400
    job_spec["template"] = _job_pod(
        owner, component=component, container=container, volumes=volumes or []
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(owner, names(owner.name)[child], component),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "suspend": suspend,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels(owner, component)},
                "spec": job_spec,
            },
        },
    }


def scorer_selector(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/instance": owner.name, "app.kubernetes.io/component": "scorer"}


def scorer_deployment(owner: Owner, lm: spec.LeadModelSpec, rollout: Rollout) -> dict[str, Any]:
    """The scorer, serving `rollout.version` from its registry ConfigMap (none yet: no_model)."""
    pod_labels = {**lm.scorer.pod_labels, **labels(owner, "scorer")}
    env: list[dict[str, Any]] = [
        _secret_env("LEADOPS_REDIS_URL", lm.redis.url_secret_ref),
        {"name": "LEADOPS_AUC_WARNING", "value": str(health.DEFAULT_THRESHOLDS.auc_warning)},
    ]
    mounts: list[dict[str, Any]] = [{"name": "model", "mountPath": MODEL_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "model", "emptyDir": {}}]
    init: list[dict[str, Any]] = []
    annotations: dict[str, str] = dict(lm.scorer.pod_annotations)
    if rollout.version is not None:
        pod_labels[registry.MODEL_VERSION] = str(rollout.version)
        annotations[registry.MODEL_VERSION] = str(rollout.version)
        annotations[ANN_DIGEST] = rollout.digest
        env.append({"name": "LEADOPS_MODEL_PATH", "value": f"{MODEL_DIR}/model.json"})
        # The loader refuses any artifact but this one, on start and on every reload.
        env.append({"name": contract.ENV_MODEL_DIGEST, "value": rollout.digest})
        volumes.append(
            {
                "name": "registry",
                "configMap": {"name": registry.configmap_name(owner.name, rollout.version)},
            }
        )
        # The registry stores gzip; unpacking (bounded) refuses bytes but the validated ones.
        init.append(
            {
                "name": "unpack-model",
                "image": lm.scorer.image,
                "command": ["leadops", "unpack-model"],
                "args": [
                    "--digest",
                    rollout.digest,
                    f"{REGISTRY_DIR}/{registry.DATA_KEY}",
                    f"{MODEL_DIR}/model.json",
                ],
                "resources": _resources(lm.scorer.resources),
                "securityContext": _security(),
                "volumeMounts": [
                    {"name": "registry", "mountPath": REGISTRY_DIR, "readOnly": True},
                    {"name": "model", "mountPath": MODEL_DIR},
                ],
            }
        )
    # Files, not env values: a Secret volume is updated in place, so keys rotate without a restart.
    for variable, volume, directory, ref in (
        ("LEADOPS_API_KEYS_FILE", "api-key", API_KEY_DIR, lm.scorer.api_key_secret_ref),
        (
            "LEADOPS_INGEST_KEYS_FILE",
            "ingest-keys",
            INGEST_KEYS_DIR,
            lm.scorer.ingest_keys_secret_ref,
        ),
    ):
        if ref is not None:
            env.append({"name": variable, "value": f"{directory}/{ref.key}"})
            volumes.append({"name": volume, "secret": {"secretName": ref.name}})
            mounts.append({"name": volume, "mountPath": directory, "readOnly": True})
    pii_env, pii_volumes = _pii_settings(lm)
    env += pii_env
    volumes += pii_volumes
    if pii_volumes:
        mounts.append(_KEY_SALT_MOUNT)

    def probe() -> dict[str, Any]:
        return {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5}

    container = {
        "name": "scorer",
        "image": lm.scorer.image,
        "command": ["leadops", "serve"],
        "args": ["--host", "0.0.0.0", "--port", str(SCORER_PORT)],  # noqa: S104 (in a Pod)
        "ports": [{"name": "http", "containerPort": SCORER_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": _resources(lm.scorer.resources),
        "securityContext": _security(),
        "readinessProbe": {**probe(), "failureThreshold": 2},
        "livenessProbe": {**probe(), "failureThreshold": 6, "initialDelaySeconds": 10},
        "volumeMounts": mounts,
    }
    meta = _metadata(owner, names(owner.name)["scorer"], "scorer")
    deploy_ann: dict[str, str] = {}
    if rollout.version is not None:
        deploy_ann[registry.MODEL_VERSION] = str(rollout.version)
        deploy_ann[ANN_DIGEST] = rollout.digest
    if rollout.version is not None or rollout.previous is not None:
        deploy_ann[ANN_ROLLOUT_KIND] = rollout.kind
    if rollout.previous is not None:
        deploy_ann[ANN_PREVIOUS] = str(rollout.previous)
        deploy_ann[ANN_PREVIOUS_DIGEST] = rollout.previous_digest
    if rollout.started_at:
        deploy_ann[ANN_ROLLOUT_STARTED] = rollout.started_at
    if deploy_ann:
        meta["annotations"] = deploy_ann
    pod_spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
        "containers": [container],
        "volumes": volumes,
    }
    if init:
        pod_spec["initContainers"] = init
    template_meta: dict[str, Any] = {"labels": pod_labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": lm.scorer.replicas,
            "progressDeadlineSeconds": lm.scorer.progress_deadline_seconds,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": scorer_selector(owner)},
            # Old Pods keep serving until new ones are Ready: a bad model never takes traffic.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def scorer_service(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, names(owner.name)["scorer"], "scorer"),
        "spec": {
            "type": "ClusterIP",
            "selector": scorer_selector(owner),
            "ports": [{"name": "http", "port": SCORER_PORT, "targetPort": "http"}],
        },
    }


def service_monitor(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(owner, names(owner.name)["scorer"], "scorer"),
        "spec": {
            "selector": {"matchLabels": scorer_selector(owner)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def prometheus_rule(owner: Owner) -> dict[str, Any]:
    """The alert rules (source: manifests/prometheus-rules.yaml), scoped to this LeadModel."""
    own = names(owner.name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(owner, own["alerts"], "alerts"),
        "spec": alerts.scoped_rules(
            namespace=owner.namespace,
            scorer_service=own["scorer"],
            backfill_cronjob=own["backfill"],
        ),
    }


def children(
    owner: Owner,
    lm: spec.LeadModelSpec,
    rollout: Rollout,
    *,
    prometheus_operator: bool,
    alert_rules: bool,
) -> list[dict[str, Any]]:
    """Every child of one LeadModel, in the order they should be created.

    `prometheus_operator`: its CRDs exist, so a ServiceMonitor can be made; `alert_rules`:
    also a PrometheusRule of the LeadModel's own (off when the chart ships the rules once).
    """
    out = [
        service_account(owner),
        role(owner),
        role_binding(owner),
        scorer_service(owner),
        scorer_deployment(owner, lm, rollout),
        training_cronjob(owner, lm),
        backfill_cronjob(owner, lm),
    ]
    if prometheus_operator:
        out.append(service_monitor(owner))
        if alert_rules:
            out.append(prometheus_rule(owner))
    return out


def child_keys(
    leadmodel: str, *, prometheus_operator: bool, alert_rules: bool
) -> list[tuple[str, str]]:
    """(kind, name) of every child `children()` makes, in its order, without building any."""
    n = names(leadmodel)
    out = [
        ("ServiceAccount", n["jobs"]),
        ("Role", n["jobs"]),
        ("RoleBinding", n["jobs"]),
        ("Service", n["scorer"]),
        ("Deployment", n["scorer"]),
        ("CronJob", n["train"]),
        ("CronJob", n["backfill"]),
    ]
    if prometheus_operator:
        out.append(("ServiceMonitor", n["scorer"]))
        if alert_rules:
            out.append(("PrometheusRule", n["alerts"]))
    return out


def job_from_cronjob(cronjob: Mapping[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """A Job from a CronJob's template, as `kubectl create job --from=cronjob/NAME` makes it.

    The API server picks the name (generateName), so two runs in the same second never collide.
    """
    meta = cronjob["metadata"]
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    if dry_run:
        for container in template["spec"]["template"]["spec"]["containers"]:
            args = container.setdefault("args", [])
            if "--dry-run" not in args:
                args.append("--dry-run")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            # 63 characters at most, of which the server appends 5.
            "generateName": f"{meta['name'][:50]}-manual-",
            "namespace": meta["namespace"],
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }
