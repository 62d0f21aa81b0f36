"""Pure manifest builders: a LeadModel (and the version to serve) in, child objects out.

Every builder returns a plain dict the API server accepts as is, owned by the LeadModel so
deleting it removes its children. Tested against golden YAML in tests/unit/golden/.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from leadops import objectstore
from leadops.contract import artifact as contract
from leadops.contract import health
from leadops.operator import alerts, followups_builders, network_policy, registry, spec
from leadops.operator import experiment as experiments

SCORER_PORT = 8080
# How often Prometheus scrapes each scorer Pod unless the operator is told otherwise.
DEFAULT_SCRAPE_INTERVAL = "30s"
MODEL_DIR = "/var/lib/leadops/model"
SPOOL_DIR = "/var/lib/leadops/spool"
REGISTRY_DIR = "/var/lib/leadops/registry"
WORK_DIR = "/work"
API_KEY_DIR = "/var/run/secrets/leadops/api-key"
SIGNING_KEY_DIR = "/var/run/secrets/leadops/signing"
KEY_SALT_DIR = "/var/run/secrets/leadops/key-salt"
INGEST_KEYS_DIR = "/var/run/secrets/leadops/ingest-keys"
# One look per matured day, after the night's training run.
EXPERIMENT_SCHEDULE = "30 3 * * *"
REDIS_URL_DIR = "/var/run/secrets/leadops/redis-url"
BOOTSTRAP_DIR = "/var/run/leadops/bootstrap"
S3_CREDENTIALS_DIR = "/var/run/secrets/leadops/s3"

# Deployment annotations: where the rollout state lives, so a restarted operator resumes.
ANN_PREVIOUS = "leadops.io/previous-version"
# The digests the operator validated: what the scorer may serve (and roll back to).
ANN_DIGEST = "leadops.io/model-digest"
ANN_PREVIOUS_DIGEST = "leadops.io/previous-digest"
ANN_ROLLOUT_KIND = "leadops.io/rollout-kind"
ANN_ROLLOUT_STARTED = "leadops.io/rollout-started-at"
# The scorer image a rollback returns to, and an image a rollback undid: refused while
# spec.scorer.image still names it (the template's own image is the current one).
ANN_PREVIOUS_IMAGE = "leadops.io/previous-image"
ANN_ROLLED_BACK_IMAGE = "leadops.io/rolled-back-image"
# The promotion the matured-AUC guard watches, written only while it is not the rollout's own
# (after an image rollout of the promoted version, or its undoing).
ANN_GUARDED_PREVIOUS = "leadops.io/guarded-previous-version"
ANN_GUARDED_DIGEST = "leadops.io/guarded-previous-digest"
ANN_GUARDED_SINCE = "leadops.io/guarded-since"
ROLLOUT_FORWARD = "RollOut"
ROLLOUT_BACK = "RollBack"


@dataclass(frozen=True)
class Promotion:
    """A version replacing another: what the matured-AUC guard compares (the version it
    replaced, scored in shadow by that validated digest) and since when."""

    previous: int
    previous_digest: str
    since: str


class RolloutFields(Protocol):
    """What a rollout says of itself: the Rollout asked for, or the RolloutState read back."""

    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def previous(self) -> int | None: ...
    @property
    def previous_digest(self) -> str: ...
    @property
    def started_at(self) -> str: ...
    @property
    def carried_promotion(self) -> Promotion | None: ...


def own_promotion(rollout: RolloutFields) -> Promotion | None:
    """The promotion a rollout is by itself: a forward rollout that replaced a version. Not a
    rollback, nor an image rollout (the version replaced itself)."""
    if (
        rollout.kind != ROLLOUT_FORWARD
        or rollout.version is None
        or rollout.previous is None
        or rollout.previous == rollout.version
        or not rollout.previous_digest
        or not rollout.started_at
    ):
        return None
    return Promotion(rollout.previous, rollout.previous_digest, rollout.started_at)


def watched_promotion(rollout: RolloutFields) -> Promotion | None:
    """The promotion the matured-AUC guard watches on a rollout's Pods: the one an image
    rollout carried, else the rollout's own; None after a rollback."""
    return rollout.carried_promotion or own_promotion(rollout)


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
    # The scorer image of `version` (empty: spec.scorer.image) and of `previous`; an image a
    # rollback undid, refused while the spec still names it.
    image: str = ""
    previous_image: str = ""
    rolled_back_image: str = ""
    # The promotion the matured-AUC guard watches when it is not this rollout's own: kept
    # across an image rollout (and its undoing) of the promoted version, so the new Pods go
    # on scoring in shadow and the verdict stays about that promotion.
    carried_promotion: Promotion | None = None

    @property
    def promotion(self) -> Promotion | None:
        return watched_promotion(self)


def names(leadmodel: str) -> dict[str, str]:
    return {
        "scorer": f"{leadmodel}-scorer",
        "train": f"{leadmodel}-train",
        "backfill": f"{leadmodel}-pii-backfill",
        "jobs": f"{leadmodel}-jobs",
        # ServiceAccounts of the Pods that never call the API: no token, no Role.
        "scorer_account": f"{leadmodel}-scorer",
        "backfill_account": f"{leadmodel}-pii-backfill",
        "alerts": f"{leadmodel}-alerts",
        "experiment": f"{leadmodel}-experiment",
        "bootstrap": f"{leadmodel}-bootstrap",
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


def _resources(given: spec.Resources, defaults: spec.Resources) -> dict[str, Any]:
    """Requests and a memory limit always: what the LeadModel sets, key by key over defaults."""
    res = given.over(defaults)
    out: dict[str, Any] = {}
    if res.requests:
        out["requests"] = dict(sorted(res.requests.items()))
    if res.limits:
        out["limits"] = dict(sorted(res.limits.items()))
    return out


def _secret_file(
    variable: str, volume: str, directory: str, ref: spec.SecretKeyRef
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A Secret key as a file (env, volume, mount), never as an env value: a file is updated in
    place when the Secret rotates and never shows in the Pod's spec or environment."""
    return (
        {"name": variable, "value": f"{directory}/{ref.key}"},
        {"name": volume, "secret": {"secretName": ref.name}},
        {"name": volume, "mountPath": directory, "readOnly": True},
    )


def _s3_credentials(
    s3: spec.S3Artifacts,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The bucket's credentials file (AWS_SHARED_CREDENTIALS_FILE) as env, volume and mount."""
    return _secret_file(
        objectstore.ENV_CREDENTIALS_FILE, "s3-credentials", S3_CREDENTIALS_DIR,
        s3.credentials_secret_ref,
    )  # fmt: skip


def scorer_url(owner: Owner) -> str:
    return f"http://{names(owner.name)['scorer']}.{owner.namespace}.svc:{SCORER_PORT}"


def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(lm: spec.LeadModelSpec) -> dict[str, Any]:
    """Pod Security "restricted" at Pod level; the UID and groups only where the spec sets them
    (the image's user runs, or the one the platform assigns)."""
    out: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    ids = lm.pod_security_context
    for key, value in (
        ("runAsUser", ids.run_as_user),
        ("runAsGroup", ids.run_as_group),
        ("fsGroup", ids.fs_group),
    ):
        if value is not None:
            out[key] = value
    return out


def service_account(owner: Owner) -> dict[str, Any]:
    """The training Job's account: it publishes (creates registry ConfigMaps) via the API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, names(owner.name)["jobs"], "jobs"),
        "automountServiceAccountToken": True,
    }


def tokenless_service_account(owner: Owner, *, account: str, component: str) -> dict[str, Any]:
    """An account for Pods that never call the API: no token mounted, no Role bound."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, names(owner.name)[account], component),
        "automountServiceAccountToken": False,
    }


def role(owner: Owner) -> dict[str, Any]:
    """Least privilege for the jobs: create registry ConfigMaps, and read their own LeadModel
    (`leadops publish` publishes only to a LeadModel that exists, owned by it)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, names(owner.name)["jobs"], "jobs"),
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {
                "apiGroups": [spec.GROUP],
                "resources": [spec.PLURAL],
                "resourceNames": [owner.name],
                "verbs": ["get"],
            },
        ],
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
    lm: spec.LeadModelSpec,
    account: str,
    api_token: bool,
) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels(owner, component)},
        "spec": {
            "serviceAccountName": names(owner.name)[account],
            "automountServiceAccountToken": api_token,
            "restartPolicy": "Never",
            "securityContext": _pod_security(lm),
            "containers": [container],
            "volumes": [{"name": "work", "emptyDir": {}}, *volumes],
        },
    }


def _export_reader(
    lm: spec.LeadModelSpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Env, volumes and mounts of a Job that reads the scorer's export (an /ops/* call):
    the scorer's API key as a file, and the work directory."""
    env: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": WORK_DIR}]
    volumes: list[dict[str, Any]] = []
    if lm.scorer.api_key_secret_ref is not None:
        key_env, key_volume, key_mount = _secret_file(
            "LEADOPS_API_KEY_FILE", "api-key", API_KEY_DIR, lm.scorer.api_key_secret_ref
        )
        env.append(key_env)
        volumes.append(key_volume)
        mounts.append(key_mount)
    return env, volumes, mounts


def jobs_image(scorer_image: str, configured: str = "") -> str:
    """The image the training, evaluation and backfill Jobs run when the spec names none:
    `configured` (LEADOPS_JOBS_IMAGE), else the scorer image's sibling `jobs` repository, same
    tag (`docker.io/leadops/scorer:0.1.0` -> `docker.io/leadops/jobs:0.1.0`). A scorer image
    of another name, or pinned by digest (no sibling digest can be known), is taken to hold
    the jobs' tools too."""
    if configured:
        return configured
    if "@" in scorer_image:
        return scorer_image
    path, slash, name = scorer_image.rpartition("/")
    repository, colon, tag = name.partition(":")
    if repository != "scorer":
        return scorer_image
    return f"{path}{slash}jobs{colon}{tag}"


def _train_then_publish(owner: Owner, lm: spec.LeadModelSpec, source: str) -> list[str]:
    """The training container's command: train from `source`, then publish the artifact."""
    artifact = f"{WORK_DIR}/model.json"
    train = ["leadops", "train", "--input", source, "--output", artifact]
    if lm.training.dask is not None:
        train += ["--dask-scheduler", lm.training.dask.scheduler]
    publish = [
        "leadops", "publish",
        "--artifact", artifact,
        "--leadmodel", owner.name,
        "--namespace", owner.namespace,
        "--owner-uid", owner.uid,
    ]  # fmt: skip
    return ["/bin/sh", "-c", f"{shlex.join(train)} && {shlex.join(publish)}"]


def training_cronjob(owner: Owner, lm: spec.LeadModelSpec, *, jobs: str = "") -> dict[str, Any]:
    """Nightly retraining: export outcomes from the scorer, train, publish to the registry.
    `jobs`: LEADOPS_JOBS_IMAGE (see `jobs_image`)."""
    env, volumes, mounts = _export_reader(lm)
    if lm.signing.key_secret_ref is not None:
        # Only the Job that signs holds the signing key; the scorer serves by validated digest.
        ref = lm.signing.key_secret_ref
        env.append({"name": contract.ENV_SIGNING_KEY_FILE, "value": f"{SIGNING_KEY_DIR}/{ref.key}"})
        volumes.append({"name": "signing-key", "secret": {"secretName": ref.name}})
        mounts.append({"name": "signing-key", "mountPath": SIGNING_KEY_DIR, "readOnly": True})
    if lm.artifacts.s3 is not None:  # `leadops publish` writes the artifact to the bucket
        s3_env, s3_volume, s3_mount = _s3_credentials(lm.artifacts.s3)
        env.append(s3_env)
        volumes.append(s3_volume)
        mounts.append(s3_mount)
    container = {
        "name": "train",
        "image": lm.training.image or jobs_image(lm.scorer.image, jobs),
        "command": _train_then_publish(owner, lm, f"{scorer_url(owner)}/ops/export/outcomes.csv"),
        "resources": _resources(lm.training.resources, spec.TRAINING_RESOURCES),
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    cronjob = _cronjob(
        owner,
        lm,
        child="train",
        component="train",
        schedule=lm.training.schedule,
        suspend=lm.training.suspend,
        container=container,
        active_deadline_seconds=lm.training.active_deadline_seconds,
        volumes=volumes,
        account="jobs",
        api_token=True,
    )
    return _placed(cronjob, lm.training)


BOOTSTRAP_LABEL = "leadops.io/bootstrap"


def bootstrap_job(owner: Owner, lm: spec.LeadModelSpec, *, jobs: str = "") -> dict[str, Any] | None:
    """The training CronJob's Job, once, on spec.training.bootstrap's historical outcomes.

    No TTL: the finished Job is the record that the bootstrap ran (delete it to run again).
    The scorer's API key is not passed: the URL is the user's, not the scorer's export.
    """
    source = lm.training.bootstrap
    if source is None:
        return None
    template = copy.deepcopy(training_cronjob(owner, lm, jobs=jobs)["spec"]["jobTemplate"])
    job_spec = template["spec"]
    job_spec.pop("ttlSecondsAfterFinished", None)
    pod = job_spec["template"]["spec"]
    container = pod["containers"][0]
    env = [e for e in container.pop("env", []) if e["name"] != "LEADOPS_API_KEY_FILE"]
    if env:
        container["env"] = env
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != "api-key"]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "api-key"]
    if source.url is not None:
        where = source.url
    else:
        ref: spec.ConfigMapKeyRef | spec.SecretKeyRef
        if source.config_map_key_ref is not None:
            ref = source.config_map_key_ref
            volume = {"name": "bootstrap", "configMap": {"name": ref.name}}
        else:
            assert source.secret_key_ref is not None  # one source: the spec's rule
            ref = source.secret_key_ref
            volume = {"name": "bootstrap", "secret": {"secretName": ref.name}}
        pod["volumes"].append(volume)
        container["volumeMounts"].append(
            {"name": "bootstrap", "mountPath": BOOTSTRAP_DIR, "readOnly": True}
        )
        where = f"{BOOTSTRAP_DIR}/{ref.key}"
    container["command"] = _train_then_publish(owner, lm, where)
    meta = _metadata(owner, names(owner.name)["bootstrap"], "train")
    meta["labels"][BOOTSTRAP_LABEL] = "true"
    job_spec["template"]["metadata"]["labels"][BOOTSTRAP_LABEL] = "true"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


TERMINATION_LOG = "/dev/termination-log"


def backfill_cronjob(owner: Owner, lm: spec.LeadModelSpec, *, jobs: str = "") -> dict[str, Any]:
    """Weekly PII scrub of what is already in Redis (`jobs`: as for `training_cronjob`)."""
    # The run's summary becomes the Pod's termination message: how the operator reads the
    # result (pii_gate.py) without the Job holding any API rights.
    args = [
        "pii-backfill",
        "--pattern", lm.pii_backfill.key_pattern,
        "--termination-log", TERMINATION_LOG,
    ]  # fmt: skip
    if lm.pii_backfill.dry_run:
        args.append("--dry-run")
    if lm.redis.mode is spec.RedisMode.CLUSTER:
        args += ["--redis-mode", str(lm.redis.mode)]
    # The scorer's regions and key salt: the same findings, and old chat keys renamed.
    pii_env, pii_volumes = _pii_settings(lm)
    url_env, url_volume, url_mount = _secret_file(
        "LEADOPS_REDIS_URL_FILE", "redis-url", REDIS_URL_DIR, lm.redis.url_secret_ref
    )
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": WORK_DIR}, url_mount]
    if pii_volumes:
        mounts.append(_KEY_SALT_MOUNT)
    container = {
        "name": "pii-backfill",
        "image": lm.pii_backfill.image or jobs_image(lm.scorer.image, jobs),
        "command": ["leadops"],
        "args": args,
        "env": [url_env, *pii_env],
        "resources": _resources(lm.pii_backfill.resources, spec.BACKFILL_RESOURCES),
        "securityContext": _security(),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_LOG,
        # A run killed before it wrote its summary still says why: the log's last lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    cronjob = _cronjob(
        owner,
        lm,
        child="backfill",
        component="pii-backfill",
        schedule=lm.pii_backfill.schedule,
        suspend=lm.pii_backfill.suspend,
        container=container,
        active_deadline_seconds=None,
        volumes=[url_volume, *pii_volumes],
        account="backfill_account",
        api_token=False,
    )
    return _placed(cronjob, lm.pii_backfill)


def _placed(cronjob: dict[str, Any], placement: spec.Placement) -> dict[str, Any]:
    """The CronJob's Pod with the spec's nodeSelector and tolerations, when it has any."""
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if placement.node_selector:
        pod["nodeSelector"] = dict(sorted(placement.node_selector.items()))
    if placement.tolerations:
        pod["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in placement.tolerations
        ]
    return cronjob


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
    volumes: list[dict[str, Any]],
    account: str,
    api_token: bool,
) -> dict[str, Any]:
    """The CronJob both jobs share: UTC schedule, never two at once, one retry, kept a day."""
    job_spec: dict[str, Any] = {"backoffLimit": 1}
    if active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = active_deadline_seconds
    job_spec["ttlSecondsAfterFinished"] = 86_400
    job_spec["template"] = _job_pod(
        owner,
        component=component,
        container=container,
        volumes=volumes,
        lm=lm,
        account=account,
        api_token=api_token,
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


Items = list[dict[str, Any]]


def _durability(scorer: spec.Scorer) -> tuple[Items, Items, Items]:
    """The durability's env, and for `spooled` the spool's volume and mount."""
    env: Items = [{"name": "LEADOPS_DURABILITY", "value": scorer.durability.value}]
    if scorer.durability is not spec.Durability.SPOOLED:
        return env, [], []
    env.append({"name": "LEADOPS_SPOOL_DIR", "value": SPOOL_DIR})
    claim = scorer.spool.claim_name
    volume = (
        {"name": "spool", "persistentVolumeClaim": {"claimName": claim}}
        if claim is not None
        # The scorer refuses past its spool limit (64 MiB): never evicted for disk use.
        else {"name": "spool", "emptyDir": {"sizeLimit": "128Mi"}}
    )
    return env, [volume], [{"name": "spool", "mountPath": SPOOL_DIR}]


def _rollout_annotations(rollout: Rollout) -> dict[str, str]:
    """Where the rollout state lives on the Deployment, so a restarted operator resumes."""
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
    if rollout.previous_image:
        deploy_ann[ANN_PREVIOUS_IMAGE] = rollout.previous_image
    if rollout.rolled_back_image:
        deploy_ann[ANN_ROLLED_BACK_IMAGE] = rollout.rolled_back_image
    carried = rollout.carried_promotion
    if carried is not None and carried != own_promotion(rollout):
        deploy_ann[ANN_GUARDED_PREVIOUS] = str(carried.previous)
        deploy_ann[ANN_GUARDED_DIGEST] = carried.previous_digest
        deploy_ann[ANN_GUARDED_SINCE] = carried.since
    return deploy_ann


def _cold_start(lm: spec.LeadModelSpec, rollout: Rollout) -> Items:
    """Nothing serves yet and the spec asks: store leads unscored so outcomes accumulate."""
    if rollout.version is None and lm.scorer.cold_start is spec.ColdStart.ACCEPT_UNSCORED:
        return [{"name": "LEADOPS_COLD_START", "value": "true"}]
    return []


def _redis_mode(lm: spec.LeadModelSpec) -> Items:
    """LEADOPS_REDIS_MODE for a cluster (standalone is the scorer's default)."""
    if lm.redis.mode is spec.RedisMode.CLUSTER:
        return [{"name": "LEADOPS_REDIS_MODE", "value": str(lm.redis.mode)}]
    return []


def _retention(lm: spec.LeadModelSpec) -> Items:
    """How long the scorer's writes live in Redis (spec.retention, checked against its floor)."""
    return [
        {"name": "LEADOPS_RETENTION_DAYS", "value": str(lm.retention.lead_days)},
        {"name": "LEADOPS_OUTCOME_RETENTION_DAYS", "value": str(lm.retention.outcome_days)},
    ]


def scorer_deployment(
    owner: Owner,
    lm: spec.LeadModelSpec,
    rollout: Rollout,
    *,
    experiment: experiments.Served | None = None,
    objects: Mapping[int, str] | None = None,
    jobs: str = "",
) -> dict[str, Any]:
    """The scorer, serving `rollout.version` from its registry ConfigMap (none yet: no_model),
    on `rollout.image` (else spec.scorer.image), and the running experiment with its variant
    models, if any. `objects`: version -> s3:// URL of the versions stored in the bucket, which
    an init container on the jobs image (`jobs`: LEADOPS_JOBS_IMAGE) downloads: the scorer
    image has no S3 client."""
    image = rollout.image or lm.scorer.image
    pod_labels = {**lm.scorer.pod_labels, **labels(owner, "scorer")}
    url_env, url_volume, url_mount = _secret_file(
        "LEADOPS_REDIS_URL_FILE", "redis-url", REDIS_URL_DIR, lm.redis.url_secret_ref
    )
    env: list[dict[str, Any]] = [
        url_env,
        {"name": "LEADOPS_AUC_WARNING", "value": str(health.DEFAULT_THRESHOLDS.auc_warning)},
        # The replicas of this LeadModel follow each other's reloads (announced on Redis).
        {"name": "LEADOPS_REPLICA_GROUP", "value": f"{owner.namespace}/{owner.name}"},
        *_cold_start(lm, rollout),
        *_redis_mode(lm),
        *_retention(lm),
    ]
    mounts: list[dict[str, Any]] = [{"name": "model", "mountPath": MODEL_DIR}, url_mount]
    volumes: list[dict[str, Any]] = [{"name": "model", "emptyDir": {}}, url_volume]
    init: list[dict[str, Any]] = []
    annotations: dict[str, str] = dict(lm.scorer.pod_annotations)
    if rollout.version is not None:
        pod_labels[registry.MODEL_VERSION] = str(rollout.version)
        annotations[registry.MODEL_VERSION] = str(rollout.version)
        annotations[ANN_DIGEST] = rollout.digest
        env.append({"name": "LEADOPS_MODEL_PATH", "value": f"{MODEL_DIR}/model.json"})
        # The loader refuses any artifact but this one, on start and on every reload.
        env.append({"name": contract.ENV_MODEL_DIGEST, "value": rollout.digest})
        # The registry stores gzip; unpacking (bounded) refuses bytes but the validated ones.
        source = _Source(owner, lm, objects or {}, image=image, jobs=jobs)
        init.append(
            source.unpack(
                rollout.version,
                volume="registry",
                digest=rollout.digest,
                into=f"{MODEL_DIR}/model.json",
                volumes=volumes,
            )
        )
        _add_matured_auc(lm, rollout, source=source, env=env, volumes=volumes, init=init)
    if experiment is not None:
        source = _Source(owner, lm, objects or {}, image=image, jobs=jobs)
        _add_experiment(lm, experiment, source=source, env=env, volumes=volumes, init=init)
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
    durability_env, spool_volumes, spool_mounts = _durability(lm.scorer)
    env += durability_env
    volumes += spool_volumes
    mounts += spool_mounts
    _add_follow_ups(owner, lm, env=env, volumes=volumes, mounts=mounts, annotations=annotations)

    def probe() -> dict[str, Any]:
        return {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5}

    container = {
        "name": "scorer",
        "image": image,
        "command": ["leadops", "serve"],
        "args": ["--host", "0.0.0.0", "--port", str(SCORER_PORT)],  # noqa: S104 (in a Pod)
        "ports": [{"name": "http", "containerPort": SCORER_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": _resources(lm.scorer.resources, spec.SCORER_RESOURCES),
        "securityContext": _security(),
        "readinessProbe": {**probe(), "failureThreshold": 2},
        "livenessProbe": {**probe(), "failureThreshold": 6, "initialDelaySeconds": 10},
        "volumeMounts": mounts,
    }
    meta = _metadata(owner, names(owner.name)["scorer"], "scorer")
    deploy_ann = _rollout_annotations(rollout)
    if deploy_ann:
        meta["annotations"] = deploy_ann
    pod_spec: dict[str, Any] = {
        # The scorer never calls the Kubernetes API: its own account, no token.
        "serviceAccountName": names(owner.name)["scorer_account"],
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(lm),
        "containers": [container],
        "volumes": volumes,
        "topologySpreadConstraints": [_spread(owner)],
    }
    if init:
        pod_spec["initContainers"] = init
    template_meta: dict[str, Any] = {"labels": pod_labels}
    if annotations:
        template_meta["annotations"] = annotations
    deployment_spec: dict[str, Any] = {}
    if lm.scorer.autoscaling is None:
        # With autoscaling the HorizontalPodAutoscaler owns replicas: never in our patches.
        deployment_spec["replicas"] = lm.scorer.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            **deployment_spec,
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


def _spread(owner: Owner) -> dict[str, Any]:
    """Scorer Pods spread across nodes (a node lost takes few of them), counted per ReplicaSet
    so a rollout's new Pods spread too; never blocks scheduling on a small cluster."""
    return {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": scorer_selector(owner)},
        "matchLabelKeys": ["pod-template-hash"],
    }


def scorer_autoscaler(owner: Owner, autoscaling: spec.Autoscaling) -> dict[str, Any]:
    """The scorer's HorizontalPodAutoscaler (autoscaling/v2, CPU utilization)."""
    name = names(owner.name)["scorer"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(owner, name, "scorer"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def scorer_disruption_budget(owner: Owner) -> dict[str, Any]:
    """At most one scorer Pod evicted at a time (drains, node upgrades): the others serve."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner, names(owner.name)["scorer"], "scorer"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": scorer_selector(owner)},
            # A Pod that is not Ready serves nothing: evicting it costs nothing.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


@dataclass(frozen=True)
class _Source:
    """Where the scorer's init containers get each version's artifact: its registry ConfigMap
    (on the scorer's image), or its object in the bucket (on the jobs image, with the bucket's
    credentials file)."""

    owner: Owner
    lm: spec.LeadModelSpec
    objects: Mapping[int, str]
    image: str
    jobs: str

    def unpack(
        self, version: int, *, volume: str, digest: str, into: str, volumes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """An init container unpacking `version`'s artifact into `into` if it has `digest`
        (adding the volumes it reads to `volumes`)."""
        container: dict[str, Any] = {
            "name": "unpack-model" if volume == "registry" else f"unpack-{volume}",
            "image": self.image,
            "command": ["leadops", "unpack-model"],
            "resources": _resources(self.lm.scorer.unpack_resources, spec.UNPACK_RESOURCES),
            "securityContext": _security(),
        }
        url = self.objects.get(version)
        s3 = self.lm.artifacts.s3
        if url is None or s3 is None:
            volumes.append(
                {
                    "name": volume,
                    "configMap": {"name": registry.configmap_name(self.owner.name, version)},
                }
            )
            container["args"] = ["--digest", digest, f"{REGISTRY_DIR}/{registry.DATA_KEY}", into]
            container["volumeMounts"] = [
                {"name": volume, "mountPath": REGISTRY_DIR, "readOnly": True},
                {"name": "model", "mountPath": MODEL_DIR},
            ]
            return container
        cred_env, cred_volume, cred_mount = _s3_credentials(s3)
        if cred_volume not in volumes:
            volumes.append(cred_volume)
        args = ["--digest", digest]
        if s3.endpoint:
            args += ["--s3-endpoint", s3.endpoint]
        if s3.region:
            args += ["--s3-region", s3.region]
        container |= {
            "image": jobs_image(self.image, self.jobs),
            "args": [*args, url, into],
            "env": [cred_env],
            "volumeMounts": [cred_mount, {"name": "model", "mountPath": MODEL_DIR}],
        }
        return container


def _add_follow_ups(
    owner: Owner,
    lm: spec.LeadModelSpec,
    *,
    env: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    annotations: dict[str, str],
) -> None:
    """With spec.followUps the scorer schedules scored leads' follow-ups: it reads the worker's
    config and the vault keys (at start, so a changed config rolls the Pods)."""
    fu = lm.follow_ups
    if fu is None:
        return
    fu_env, fu_volumes, fu_mounts = followups_builders.scorer_files(owner, fu)
    env += fu_env
    volumes += fu_volumes
    mounts += fu_mounts
    annotations[followups_builders.ANN_CONFIG_DIGEST] = followups_builders.config_digest(fu)


def _add_matured_auc(
    lm: spec.LeadModelSpec,
    rollout: Rollout,
    *,
    source: _Source,
    env: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    init: list[dict[str, Any]],
) -> None:
    """After a promotion, the previous version unpacked (by its validated digest) beside the
    serving one and the matured-AUC guard's settings: the scorer scores every lead with both
    (docs/operator.md, "Matured-AUC guard"). Kept across an image rollout of the promoted
    version; not after a rollback, nor with the guard Off."""
    guard = lm.guards.matured_auc
    promotion = rollout.promotion
    started = registry.parse_time(promotion.since) if promotion is not None else None
    if (
        guard.action is spec.MaturedAucAction.OFF
        or rollout.version is None
        or promotion is None
        or promotion.previous == rollout.version
        or started is None
    ):
        return
    path = f"{MODEL_DIR}/previous.json"
    init.append(
        source.unpack(
            promotion.previous,
            volume="previous",
            digest=promotion.previous_digest,
            into=path,
            volumes=volumes,
        )
    )
    config = {
        "servingVersion": rollout.version,
        "previousVersion": promotion.previous,
        "since": int(started.timestamp()),
        "minLeads": guard.min_leads,
        "minConversions": guard.min_conversions,
        "maxDrop": guard.max_drop,
        "alpha": guard.alpha,
        "maxDays": guard.max_days,
        "windowDays": lm.outcomes.window_days,
    }
    env += [
        {
            "name": "LEADOPS_PREVIOUS_MODEL",
            "value": json.dumps(
                {"path": path, "digest": promotion.previous_digest},
                sort_keys=True,
                separators=(",", ":"),
            ),
        },
        {
            "name": "LEADOPS_MATURED_AUC",
            "value": json.dumps(config, sort_keys=True, separators=(",", ":")),
        },
    ]


def _add_experiment(
    lm: spec.LeadModelSpec,
    served: experiments.Served,
    *,
    source: _Source,
    env: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    init: list[dict[str, Any]],
) -> None:
    """LEADOPS_EXPERIMENT, and each variant model unpacked (by its validated digest) beside
    the serving one, named in LEADOPS_VARIANT_MODELS with that digest."""
    env.append({"name": "LEADOPS_EXPERIMENT", "value": served.config})
    files: dict[str, dict[str, str]] = {}
    for version, digest in served.models:
        volume = f"variant-{version}"
        path = f"{MODEL_DIR}/variant-{version}.json"
        init.append(
            source.unpack(version, volume=volume, digest=digest, into=path, volumes=volumes)
        )
        files[str(version)] = {"path": path, "digest": digest}
    if files:
        env.append(
            {
                "name": "LEADOPS_VARIANT_MODELS",
                "value": json.dumps(files, sort_keys=True, separators=(",", ":")),
            }
        )


def experiment_cronjob(
    owner: Owner, lm: spec.LeadModelSpec, *, started_at: str, active: bool, jobs: str = ""
) -> dict[str, Any]:
    """The daily look at the experiment: evaluate the scorer's export, store the verdict.

    On the jobs image (numpy, scipy); the operator image never evaluates. The look is
    the number of whole days since `started_at`, so a rerun or a restart keeps the count.
    """
    exp = lm.experiment
    assert exp is not None
    verdict = f"{WORK_DIR}/verdict.json"
    evaluate = [
        "leadops", "experiment", "evaluate",
        "--input", f"{scorer_url(owner)}/ops/export/experiment.csv",
        "--window-days", str(lm.outcomes.window_days),
        "--weights", ",".join(f"{v.name}={v.weight}" for v in exp.variants),
        "--control", exp.variants[0].name,
        "--alpha", exp.alpha,
        "--min-leads", str(exp.min_leads_per_variant),
        "--min-conversions", str(exp.min_conversions_per_variant),
        "--max-score-psi", exp.guardrails.max_score_psi,
        "--guardrails", f"{scorer_url(owner)}/ops/experiment/guardrails",
        "--max-error-rate", exp.guardrails.max_error_rate,
        "--max-p99-latency-ratio", exp.guardrails.max_p99_latency_ratio,
        "--started-at", started_at,
        "--of", str(exp.max_duration_days),
        "--output", verdict,
        "--metric", str(exp.primary_metric),
    ]  # fmt: skip
    publish = [
        "leadops", "experiment", "publish",
        "--input", verdict,
        "--experiment", exp.name,
        "--leadmodel", owner.name,
        "--namespace", owner.namespace,
        "--owner-uid", owner.uid,
    ]  # fmt: skip
    env, volumes, mounts = _export_reader(lm)
    container: dict[str, Any] = {
        "name": "evaluate",
        "image": lm.training.image or jobs_image(lm.scorer.image, jobs),
        "command": ["/bin/sh", "-c", f"{shlex.join(evaluate)} && {shlex.join(publish)}"],
        "resources": _resources(lm.training.resources, spec.TRAINING_RESOURCES),
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    return _cronjob(
        owner,
        lm,
        child="experiment",
        component="experiment",
        schedule=EXPERIMENT_SCHEDULE,
        suspend=not active,
        container=container,
        active_deadline_seconds=lm.training.active_deadline_seconds,
        volumes=volumes,
        account="jobs",  # it publishes its verdict ConfigMap
        api_token=True,
    )


# The replay Job's labels: which candidate it replays against which serving version.
REPLAY_CANDIDATE = "leadops.io/replay-candidate"
REPLAY_BASELINE = "leadops.io/replay-baseline"
REPLAY_COMPONENT = "replay"
# A finished replay Job goes an hour after it ends (its verdict is kept in status.replay): a
# failed one is then run again while its candidate still waits.
REPLAY_TTL_SECONDS = 3600


def replay_job_name(leadmodel: str, candidate: int, baseline: int) -> str:
    """One name per (candidate, baseline) pair, 63 characters at most: the candidate in
    words, the baseline as a short digest (two unix-second versions do not both fit)."""
    pair = hashlib.sha256(f"{candidate}/{baseline}".encode()).hexdigest()[:5]
    return f"{leadmodel}-replay-{candidate}-{pair}"


def replay_job(
    owner: Owner,
    lm: spec.LeadModelSpec,
    *,
    candidate: tuple[int, str],
    baseline: tuple[int, str],
    objects: Mapping[int, str] | None = None,
    jobs: str = "",
) -> dict[str, Any]:
    """`leadops replay` of the candidate (version, validated digest) against the serving
    version on the scorer's outcome export, its verdict in the Pod's termination message.

    Init containers unpack both artifacts by digest, as the scorer's do; the replay runs on
    the jobs image (numpy, xgboost; the operator image has neither) with the training Job's
    image, resources, deadline and placement. The Pod holds no API token.
    """
    guard = lm.guards.replay
    assert guard is not None
    (c, c_digest), (b, b_digest) = candidate, baseline
    volumes: list[dict[str, Any]] = [{"name": "model", "emptyDir": {}}]
    source = _Source(owner, lm, objects or {}, image=lm.scorer.image, jobs=jobs)
    init = [
        source.unpack(c, volume="candidate", digest=c_digest, into=f"{MODEL_DIR}/candidate.json",
                      volumes=volumes),
        source.unpack(b, volume="baseline", digest=b_digest, into=f"{MODEL_DIR}/baseline.json",
                      volumes=volumes),
    ]  # fmt: skip
    resources = _resources(lm.training.resources, spec.TRAINING_RESOURCES)
    cpu_limit = resources.get("limits", {}).get("cpu")
    if cpu_limit is not None:  # a batch Job's containers all have a CPU limit (docs/security.md)
        for unpack in init:
            limits = unpack["resources"].setdefault("limits", {})
            unpack["resources"]["limits"] = dict(sorted({**limits, "cpu": cpu_limit}.items()))
    args = [
        "replay",
        "--candidate", f"{MODEL_DIR}/candidate.json",
        "--baseline", f"{MODEL_DIR}/baseline.json",
        "--input", f"{scorer_url(owner)}/ops/export/outcomes.csv",
        "--days", str(guard.days),
        "--max-drop", guard.max_drop,
        "--alpha", guard.alpha,
        "--min-leads", str(guard.min_leads),
        "--min-conversions", str(guard.min_conversions),
    ]  # fmt: skip
    if guard.max_score_psi is not None:
        args += ["--max-psi", guard.max_score_psi]
    args += ["--termination-log", TERMINATION_LOG]
    env, key_volumes, mounts = _export_reader(lm)
    mounts.append({"name": "model", "mountPath": MODEL_DIR, "readOnly": True})
    container: dict[str, Any] = {
        "name": REPLAY_COMPONENT,
        "image": lm.training.image or jobs_image(lm.scorer.image, jobs),
        "command": ["leadops"],
        "args": args,
        "resources": resources,
        "securityContext": _security(),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_LOG,
        # A run that fails before its verdict still says why: the log's last lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if env:
        container["env"] = env
    pair = {REPLAY_CANDIDATE: str(c), REPLAY_BASELINE: str(b)}
    pod = _job_pod(
        owner,
        component=REPLAY_COMPONENT,
        container=container,
        volumes=[*volumes, *key_volumes],
        lm=lm,
        account="jobs",  # its token is not mounted: the replay never calls the API
        api_token=False,
    )
    pod["metadata"]["labels"].update(pair)
    pod["spec"]["initContainers"] = init
    if lm.training.node_selector:
        pod["spec"]["nodeSelector"] = dict(sorted(lm.training.node_selector.items()))
    if lm.training.tolerations:
        pod["spec"]["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in lm.training.tolerations
        ]
    meta = _metadata(owner, replay_job_name(owner.name, c, b), REPLAY_COMPONENT)
    meta["labels"].update(pair)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": lm.training.active_deadline_seconds,
            "ttlSecondsAfterFinished": REPLAY_TTL_SECONDS,
            "template": pod,
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


def service_monitor(owner: Owner, *, interval: str = DEFAULT_SCRAPE_INTERVAL) -> dict[str, Any]:
    """Prometheus scrapes every scorer Pod, ready or not (an unready one's metrics say why),
    every `interval` (LEADOPS_SCRAPE_INTERVAL)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(owner, names(owner.name)["scorer"], "scorer"),
        "spec": {
            "selector": {"matchLabels": scorer_selector(owner)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }


def prometheus_rule(owner: Owner, *, durations: alerts.ForDurations = ()) -> dict[str, Any]:
    """The alert rules (source: manifests/prometheus-rules.yaml), scoped to this LeadModel;
    `durations`: `for:` overrides by alert name (LEADOPS_ALERT_FOR)."""
    own = names(owner.name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(owner, own["alerts"], "alerts"),
        "spec": alerts.scoped_rules(
            namespace=owner.namespace,
            scorer_service=own["scorer"],
            backfill_cronjob=own["backfill"],
            durations=durations,
        ),
    }


def children(
    owner: Owner,
    lm: spec.LeadModelSpec,
    rollout: Rollout,
    *,
    prometheus_operator: bool,
    alert_rules: bool,
    experiment: experiments.Decision | None = None,
    jobs: str = "",
    objects: Mapping[int, str] | None = None,
    alert_for: alerts.ForDurations = (),
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
) -> list[dict[str, Any]]:
    """Every child of one LeadModel, in the order they should be created.

    `prometheus_operator`: its CRDs exist, so a ServiceMonitor can be made; `alert_rules`:
    also a PrometheusRule of the LeadModel's own (off when the chart ships the rules once);
    `experiment`: what the experiment's decision wants served and evaluated.
    NetworkPolicies come before the Pods they fence, so no Pod runs unfenced.
    `jobs`: the operator's LEADOPS_JOBS_IMAGE (empty: derived from the scorer image);
    `objects`: the registry's versions stored in the bucket (see `scorer_deployment`).
    `alert_for`: the operator's LEADOPS_ALERT_FOR (alerts' `for:` overrides);
    `scrape_interval`: its LEADOPS_SCRAPE_INTERVAL (the ServiceMonitor's).
    """
    served = experiment.served if experiment is not None else None
    out = [
        service_account(owner),
        role(owner),
        role_binding(owner),
        tokenless_service_account(owner, account="scorer_account", component="scorer"),
        tokenless_service_account(owner, account="backfill_account", component="pii-backfill"),
        *network_policy.policies(owner, lm),
        scorer_service(owner),
        scorer_deployment(owner, lm, rollout, experiment=served, objects=objects, jobs=jobs),
        scorer_disruption_budget(owner),
        *(
            [scorer_autoscaler(owner, lm.scorer.autoscaling)]
            if lm.scorer.autoscaling is not None
            else []
        ),
        training_cronjob(owner, lm, jobs=jobs),
        backfill_cronjob(owner, lm, jobs=jobs),
    ]
    if lm.experiment is not None:
        out.append(
            experiment_cronjob(
                owner,
                lm,
                started_at=experiment.started_at if experiment is not None else "",
                active=experiment is not None and experiment.evaluate,
                jobs=jobs,
            )
        )
    if prometheus_operator:
        out.append(service_monitor(owner, interval=scrape_interval))
        if alert_rules:
            out.append(prometheus_rule(owner, durations=alert_for))
    return out


def child_keys(
    leadmodel: str,
    *,
    prometheus_operator: bool,
    alert_rules: bool,
    experiment: bool = False,
    policy: spec.NetworkPolicy | None = None,
    replays: bool = False,
    autoscaling: bool = False,
) -> list[tuple[str, str]]:
    """(kind, name) of every child `children()` makes, in its order, without building any
    (`replays`: spec.guards.replay is set)."""
    n = names(leadmodel)
    out = [
        ("ServiceAccount", n["jobs"]),
        ("Role", n["jobs"]),
        ("RoleBinding", n["jobs"]),
        ("ServiceAccount", n["scorer_account"]),
        ("ServiceAccount", n["backfill_account"]),
        *network_policy.keys(leadmodel, policy or spec.NetworkPolicy(), replays=replays),
        ("Service", n["scorer"]),
        ("Deployment", n["scorer"]),
        ("PodDisruptionBudget", n["scorer"]),
        *([("HorizontalPodAutoscaler", n["scorer"])] if autoscaling else []),
        ("CronJob", n["train"]),
        ("CronJob", n["backfill"]),
    ]
    if experiment:
        out.append(("CronJob", n["experiment"]))
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
