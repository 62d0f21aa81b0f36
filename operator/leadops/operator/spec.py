"""The LeadModel resource as pydantic models: the single source of the CRD schema.

`crds/leadmodel.yaml` is generated from these models (`python -m leadops.operator.crd`);
a unit test fails when the committed CRD and the models disagree. Numbers that are not
counts are strings in the spec (Kubernetes API conventions) and parsed to Decimal here.
Pure module: pydantic and the standard library only.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from leadops import objectstore

GROUP = "leadops.io"
VERSION = "v1alpha1"
KIND = "LeadModel"
PLURAL = "leadmodels"
SINGULAR = "leadmodel"
SHORT_NAMES = ("lm",)

# Go RE2 and Rust regex both accept these; the apiserver enforces them before we see a spec.
RATIO_PATTERN = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$"
SCORE_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,4})?$"
VERSION_PATTERN = r"^([0-9]{1,12})?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 (a regex, not a secret)
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
# Loose shape check for the schema; exact field ranges are checked by `validate_cron`.
CRON_PATTERN = (
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9A-Za-z*?/,-]+ +){4}[0-9A-Za-z*?/,-]+)$"
)
IMAGE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$"

# Every child name must fit: `<name>-pii-backfill` is a CronJob (52 characters at most) and
# `<name>-scorer` a Service (a DNS-1035 label). trust.max_name_length() checks the number.
MAX_NAME_LENGTH = 39
NAME_RULE = (
    f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && "
    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
)
NAME_RULE_MESSAGE = (
    f"a LeadModel name has at most {MAX_NAME_LENGTH} characters, starts with a letter and holds "
    "only a-z, 0-9 and '-', so that every object it makes has a valid name"
)
# Free maps are bounded, so one spec cannot make a child the API refuses for its size.
MAX_MAP_ENTRIES = 32

Ratio = Annotated[str, StringConstraints(pattern=RATIO_PATTERN)]
Score = Annotated[str, StringConstraints(pattern=SCORE_PATTERN)]
CronSchedule = Annotated[str, StringConstraints(pattern=CRON_PATTERN, max_length=100)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]
ImageRef = Annotated[str, StringConstraints(pattern=IMAGE_PATTERN, max_length=512)]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored (newer CRDs)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_enum_values=False,
    )


class Promotion(StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class SignaturePolicy(StrEnum):
    REQUIRED = "Required"
    IF_SIGNED = "IfSigned"


class Durability(StrEnum):
    """When the scorer answers a lead 200 (docs/operations.md, "Durability")."""

    ACKNOWLEDGED = "acknowledged"
    SPOOLED = "spooled"
    BEST_EFFORT = "bestEffort"


class ColdStart(StrEnum):
    """What the scorer does with a lead while no model version serves."""

    REFUSE = "Refuse"  # 503 "no model loaded"; the scorer is not ready
    ACCEPT_UNSCORED = "AcceptUnscored"  # stored unscored (score null) so outcomes accumulate


class SecretKeyRef(_Model):
    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=253)] = Field(
        description="Name of a Secret in the LeadModel's namespace."
    )
    key: Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN, max_length=253)] = Field(
        description="Key inside the Secret's data."
    )


class ConfigMapKeyRef(_Model):
    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=253)] = Field(
        description="Name of a ConfigMap in the LeadModel's namespace."
    )
    key: Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN, max_length=253)] = Field(
        description="Key inside the ConfigMap's data."
    )


BOOTSTRAP_ONE_SOURCE_RULE = (
    "(has(self.url) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + "
    "(has(self.secretKeyRef) ? 1 : 0) == 1"
)
URL_PATTERN = r"^https?://\S+$"


class Bootstrap(_Model):
    """Historical outcomes to train the first model from (one source)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": BOOTSTRAP_ONE_SOURCE_RULE,
                    "message": "bootstrap names exactly one of url, configMapKeyRef, secretKeyRef",
                }
            ]
        }
    )

    url: Annotated[str, StringConstraints(pattern=URL_PATTERN, max_length=2048)] | None = Field(
        default=None,
        description="http(s) URL of an outcomes CSV (label column last). No API key is sent "
        "to it; put any credentials the URL itself needs in a Secret instead.",
    )
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="ConfigMap key holding the outcomes CSV (up to about 1 MiB)."
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the outcomes CSV (the Secret must opt in with the "
        "leadops.io/usable-by annotation).",
    )

    def sources(self) -> list[str]:
        return [
            name
            for name, value in (
                ("url", self.url),
                ("configMapKeyRef", self.config_map_key_ref),
                ("secretKeyRef", self.secret_key_ref),
            )
            if value is not None
        ]


class Resources(_Model):
    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=8,
        description="Minimum compute resources (e.g. cpu: 100m, memory: 256Mi).",
        json_schema_extra={"default": {}, "maxProperties": 8},
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=8,
        description="Maximum compute resources (e.g. cpu: '1', memory: 1Gi).",
        json_schema_extra={"default": {}, "maxProperties": 8},
    )

    def over(self, defaults: Resources) -> Resources:
        """These resources on top of `defaults`, key by key: a LeadModel that sets only a CPU
        request keeps the default memory request and limit (quotas and LimitRanges need them)."""
        return Resources(
            requests={**defaults.requests, **self.requests},
            limits={**defaults.limits, **self.limits},
        )


def _resources_field(what: str, defaults: Resources) -> Any:
    """A resources field whose documented default is `defaults` (kept key by key, see over)."""
    shown = defaults.model_dump(by_alias=True)

    def text(values: dict[str, str]) -> str:
        return ", ".join(f"{key} {value}" for key, value in sorted(values.items())) or "none"

    return Field(
        default_factory=lambda: defaults,
        description=f"Compute resources of {what}. Each key left out keeps its default "
        f"(requests: {text(defaults.requests)}; limits: {text(defaults.limits)}), so every "
        "container has requests and a memory limit.",
        json_schema_extra={"default": shown},
    )


# The defaults every container starts from (docs/security.md, "Resources"). The scorer and its
# init container have no CPU limit: CFS throttling would add its 100 ms periods to a latency-
# bound request; the batch Jobs have one (it also bounds the backfill's worker processes).
SCORER_RESOURCES: Final = Resources(
    requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "1Gi"}
)
UNPACK_RESOURCES: Final = Resources(
    requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}
)
TRAINING_RESOURCES: Final = Resources(
    requests={"cpu": "500m", "memory": "512Mi"}, limits={"cpu": "2", "memory": "2Gi"}
)
BACKFILL_RESOURCES: Final = Resources(
    requests={"cpu": "250m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "512Mi"}
)


class PodSecurityContext(_Model):
    """Identities for every Pod of the LeadModel; unset, the image's user (10001, group 0)
    runs, or the one the platform assigns (OpenShift's restricted SCC)."""

    run_as_user: int | None = Field(
        default=None, ge=1, le=2_147_483_647, description="UID of every container (never 0)."
    )
    run_as_group: int | None = Field(
        default=None, ge=0, le=2_147_483_647, description="Primary GID of every container."
    )
    fs_group: int | None = Field(
        default=None,
        ge=0,
        le=2_147_483_647,
        description="Group that owns mounted volumes (a spool PersistentVolumeClaim whose "
        "storage is not group-writable needs it).",
    )


class Gates(_Model):
    min_auc: Ratio = Field(
        default="0.70",
        description="Reject a candidate whose test AUC is below this (decimal string, 0-1).",
    )
    min_train_samples: int = Field(
        default=100,
        ge=1,
        le=100_000_000,
        description="Reject a candidate trained on fewer labelled leads than this.",
    )
    max_positive_rate: Ratio = Field(
        default="0.90",
        description="Reject a candidate whose training data has a converted share above this "
        "(class-imbalance guard, decimal string, 0-1).",
    )
    max_drift_score: Score = Field(
        default="3.0",
        description="The serving model counts as drifted (Degraded) when the scorer reports a "
        "drift score above this many standard deviations (decimal string).",
    )
    max_age_hours: int = Field(
        default=48,
        ge=1,
        le=100_000,
        description="Reject a candidate older than this many hours; the serving model is stale "
        "beyond it.",
    )
    signature: SignaturePolicy = Field(
        default=SignaturePolicy.IF_SIGNED,
        description="Required: only signed artifacts pass (needs spec.signing.keySecretRef). "
        "IfSigned: the same when a key is configured; without one, unsigned artifacts pass "
        "and anyone who can write ConfigMaps in the namespace can publish a version.",
    )

    @property
    def min_auc_value(self) -> Decimal:
        return Decimal(self.min_auc)

    @property
    def max_positive_rate_value(self) -> Decimal:
        return Decimal(self.max_positive_rate)

    @property
    def max_drift_score_value(self) -> Decimal:
        return Decimal(self.max_drift_score)


# Kubernetes label keys ([prefix/]name) and values: nodeSelector entries and toleration keys.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN, max_length=317)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=63)]
MAX_TOLERATIONS = 16


class TolerationOperator(StrEnum):
    EQUAL = "Equal"
    EXISTS = "Exists"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(_Model):
    """A core/v1 Toleration: lets the Job's Pod onto nodes with a matching taint."""

    key: LabelKey | None = Field(
        default=None, description="Taint key; empty with operator Exists tolerates every taint."
    )
    operator: TolerationOperator = Field(
        default=TolerationOperator.EQUAL, description="Equal (key and value) or Exists (key)."
    )
    value: LabelValue | None = Field(default=None, description="Taint value (operator Equal).")
    effect: TaintEffect | None = Field(default=None, description="Taint effect; empty: all.")
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=86_400 * 365, description="NoExecute only: stay this long."
    )

    @model_validator(mode="after")
    def _as_kubernetes_requires(self) -> Toleration:
        if self.operator is TolerationOperator.EXISTS and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.operator is TolerationOperator.EQUAL and not self.key:
            raise ValueError("a toleration without a key needs operator Exists")
        return self


class Placement(_Model):
    """Where a Job's Pod may run: GPU nodes are usually labelled and tainted (issue #22)."""

    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="Node labels the Job's Pod requires (e.g. nvidia.com/gpu.present: 'true').",
        json_schema_extra={"default": {}, "maxProperties": MAX_MAP_ENTRIES},
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=MAX_TOLERATIONS,
        description="Taints the Job's Pod tolerates (e.g. nvidia.com/gpu, Exists, NoSchedule).",
        json_schema_extra={"default": []},
    )

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if len(key) > 317 or not re.match(LABEL_KEY_PATTERN, key):
                raise ValueError(f"nodeSelector key {key!r} is not a Kubernetes label key")
        return value


class DaskTraining(_Model):
    scheduler: Annotated[
        str, StringConstraints(pattern=r"^(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    ] = Field(
        description="Address of a Dask scheduler (tcp://host:8786): the training Job fits "
        "there with xgboost.dask; its image needs leadops[dask]."
    )


class Training(Placement):
    schedule: CronSchedule = Field(
        default="17 3 * * *",
        description="Cron schedule (UTC) of the retraining CronJob.",
    )
    suspend: bool = Field(default=False, description="Suspend scheduled retraining.")
    image: ImageRef | None = Field(
        default=None,
        description="Image of the training Job; defaults to the operator's jobs image "
        "(the scorer image's sibling `jobs` repository, same tag).",
    )
    resources: Resources = _resources_field(
        "the training container (extended resources such as nvidia.com/gpu: '1' are requests "
        "and limits like cpu)",
        TRAINING_RESOURCES,
    )
    active_deadline_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="Kill a training Job running longer."
    )
    dask: DaskTraining | None = Field(
        default=None, description="Fit on an existing Dask cluster instead of in the Job's Pod."
    )
    bootstrap: Bootstrap | None = Field(
        default=None,
        description="Historical outcomes to train the first model from: while the registry "
        "holds no version, the operator runs the training Job once on them (Job "
        "<name>-bootstrap; delete it to run it again); the result passes the same gates.",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)


class PiiBackfill(Placement):
    schedule: CronSchedule = Field(
        default="0 2 * * 0",
        description="Cron schedule (UTC) of the PII-backfill CronJob.",
    )
    suspend: bool = Field(default=False, description="Suspend scheduled backfills.")
    dry_run: bool = Field(
        default=False, description="Only count what would be redacted; change nothing."
    )
    key_pattern: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        default="mem:*", description="Redis key pattern (SCAN MATCH) to scrub."
    )
    image: ImageRef | None = Field(
        default=None,
        description="Image of the backfill Job; defaults to the operator's jobs image "
        "(as spec.training.image).",
    )
    resources: Resources = _resources_field("the backfill container", BACKFILL_RESOURCES)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)


class Pii(_Model):
    regions: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list,
        max_length=20,
        description="Phone regions (ISO 3166 codes such as US, GB, IN) whose national number "
        "formats count as PII, for the scorer and the backfill; empty: US.",
        json_schema_extra={"default": []},
    )
    key_salt_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the key salt: chat memory keys are named by a keyed "
        "hash of the chat_id. Set it before the first lead; a new salt orphans chat memory.",
    )


class Spool(_Model):
    claim_name: (
        Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=253)] | None
    ) = Field(
        default=None,
        description="PersistentVolumeClaim holding the spool (durability spooled); unset: an "
        "emptyDir, which survives a container restart but not the Pod.",
    )


AUTOSCALING_RULE = "self.minReplicas <= self.maxReplicas"
AUTOSCALING_RULE_MESSAGE = "autoscaling.minReplicas must not exceed maxReplicas"


class Autoscaling(_Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) on the scorer's CPU; it owns `replicas`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": AUTOSCALING_RULE, "message": AUTOSCALING_RULE_MESSAGE}
            ]
        }
    )

    min_replicas: int = Field(default=2, ge=1, le=100, description="Fewest scorer Pods.")
    max_replicas: int = Field(default=10, ge=1, le=100, description="Most scorer Pods.")
    target_cpu_utilization_percentage: int = Field(
        default=70,
        alias="targetCPUUtilizationPercentage",  # the HorizontalPodAutoscaler v1 field's name
        ge=10,
        le=400,
        description="Average CPU use, in percent of the scorer container's CPU request, the "
        "HorizontalPodAutoscaler keeps the Pods at.",
    )

    def semantic_errors(self) -> list[str]:
        return [AUTOSCALING_RULE_MESSAGE] if self.min_replicas > self.max_replicas else []


class Scorer(_Model):
    replicas: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Scorer Pods to run; ignored with autoscaling (the HorizontalPodAutoscaler "
        "sets them, and the operator never writes the Deployment's replicas then).",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Scale the scorer on CPU between minReplicas and maxReplicas "
        "(HorizontalPodAutoscaler autoscaling/v2); unset: spec.scorer.replicas Pods.",
    )
    image: ImageRef = Field(default="leadops/scorer:0.1.0", description="Scorer container image.")
    resources: Resources = _resources_field("the scorer container", SCORER_RESOURCES)
    unpack_resources: Resources = _resources_field(
        "the scorer's init container (unpack-model)", UNPACK_RESOURCES
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the API key for the scorer's /ops/* endpoints."
    )
    ingest_keys_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the scorer's ingest keys, one TENANT=KEY per line, "
        "mounted as a file (rotated without a restart): /v1/* then needs x-api-key and a "
        "caller's tenant is its key's. Unset: open ingest for tenant default only.",
    )
    durability: Durability = Field(
        default=Durability.ACKNOWLEDGED,
        description="When a lead is answered 200: acknowledged (once Redis acknowledged it, "
        "else 503), spooled (once Redis or the Pod's spool holds it), bestEffort (at once; "
        "records Redis cannot take are dropped and counted).",
    )
    spool: Spool = Field(
        default_factory=Spool,
        description="Where the spool lives (durability spooled).",
        json_schema_extra={"default": {}},
    )
    cold_start: ColdStart = Field(
        default=ColdStart.REFUSE,
        description="While no model version serves: Refuse (leads get 503 no model loaded) or "
        "AcceptUnscored (leads are stored unscored, answered score null and health no_model, "
        "so outcomes accumulate for the first training; the scorer stays ready).",
    )
    progress_deadline_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="A rollout with no progress for this many seconds is rolled back once one of "
        "its Pods has been on a node that long without becoming Ready.",
    )
    pod_labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="Extra labels for the scorer Pods (valid label keys and values).",
        json_schema_extra={"default": {}, "maxProperties": MAX_MAP_ENTRIES},
    )
    pod_annotations: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="Extra annotations for the scorer Pods, from an allowlist (Prometheus "
        "scraping, Istio/Linkerd injection and ports, safe-to-evict, default-container); "
        "never AppArmor or seccomp.",
        json_schema_extra={"default": {}, "maxProperties": MAX_MAP_ENTRIES},
    )


class RedisMode(StrEnum):
    """One Redis (or a primary behind one address), or a Redis Cluster (docs/pii.md)."""

    STANDALONE = "standalone"
    CLUSTER = "cluster"


class Redis(_Model):
    url_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the Redis URL (redis://user:pass@host:6379/0; for a "
        "cluster, any one node)."
    )
    mode: RedisMode = Field(
        default=RedisMode.STANDALONE,
        description="standalone, or cluster for Redis Cluster or a cluster-mode managed Redis: "
        "the scorer (LEADOPS_REDIS_MODE) and the PII backfill (--redis-mode) keep every Lua "
        "script to one hash slot and follow MOVED, ASK and failovers.",
        json_schema_extra={"default": "standalone"},
    )


class Signing(_Model):
    key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the artifact signing key (ed25519 PEM private key or "
        "HMAC secret): mounted only into the training Job, which signs; the operator verifies "
        "with it, and with it set an unsigned or wrongly signed artifact never passes.",
    )


BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PREFIX_PATTERN = r"^([-!_.*'()a-zA-Z0-9]+/)*$"
ARTIFACTS_ONE_STORE_RULE = "!(has(self.configMap) && has(self.s3))"


class S3Artifacts(_Model):
    bucket: Annotated[str, StringConstraints(pattern=BUCKET_PATTERN)] = Field(
        description="Bucket holding the artifacts (it must exist; LeadOps never creates it)."
    )
    prefix: Annotated[str, StringConstraints(pattern=PREFIX_PATTERN, max_length=512)] = Field(
        default="",
        description="Key prefix ending in '/' (e.g. 'leadops/'); a version's object is "
        "PREFIX + NAMESPACE/NAME/VERSION.json.gz.",
    )
    endpoint: Annotated[str, StringConstraints(pattern=URL_PATTERN, max_length=512)] | None = Field(
        default=None,
        description="S3 endpoint URL (MinIO, SeaweedFS, Ceph RGW, ...); unset: AWS S3.",
    )
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{0,40}$")] = Field(
        default="", description="The bucket's region (empty: the endpoint's default)."
    )
    credentials_secret_ref: SecretKeyRef = Field(
        description="Secret key holding an AWS shared credentials file ([default] "
        "aws_access_key_id, aws_secret_access_key): mounted as a file "
        "(AWS_SHARED_CREDENTIALS_FILE) into the training Job and the scorer's init container; "
        "the operator reads it to validate and garbage-collect versions."
    )

    def store(self) -> objectstore.Store:
        return objectstore.Store(
            bucket=self.bucket, prefix=self.prefix, endpoint=self.endpoint or "", region=self.region
        )


class Artifacts(_Model):
    """Where each version's artifact bytes live; the registry ConfigMap keeps its metadata."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": ARTIFACTS_ONE_STORE_RULE,
                    "message": "artifacts names one store: configMap or s3",
                    "reason": "FieldValueInvalid",
                },
            ]
        }
    )

    config_map: dict[str, Any] | None = Field(
        default=None,
        description="In the version's registry ConfigMap (the default): at most 900 KiB of "
        "gzip per version.",
        json_schema_extra={"type": "object", "maxProperties": 0},
    )
    s3: S3Artifacts | None = Field(
        default=None,
        description="In an S3-compatible bucket, for models too large for a ConfigMap.",
    )

    def store(self) -> objectstore.Store | None:
        return self.s3.store() if self.s3 is not None else None


class History(_Model):
    limit: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Model versions kept in the registry; older ones are deleted, never the "
        "serving or previous version.",
    )


class Outcomes(_Model):
    """When an outcome is final enough to count."""

    window_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="A lead counts (for experiments, outcome guards and retention) once it is "
        "this many days old: a younger lead may still convert, so it is never a 'no'; an older "
        "one without a recorded conversion counts as not converted.",
    )


class MaturedAucAction(StrEnum):
    ROLLBACK = "Rollback"  # shadow-score, judge, roll back on a drop
    OFF = "Off"  # no shadow scoring, no verdict


class MaturedAucGuard(_Model):
    """After a promotion: serving vs previous version, paired on the same matured leads."""

    action: MaturedAucAction = Field(
        # Off by default: a second model in every scorer Pod and one more evaluation per lead
        # while it runs, worth it only where outcomes return within the window (docs/operator.md).
        default=MaturedAucAction.OFF,
        description="Rollback: after each promotion the scorer also scores every lead with the "
        "previous version (in shadow), and once minLeads leads have matured the serving "
        "version is rolled back if it is worse by more than maxDrop. Off (the default): "
        "neither.",
    )
    min_leads: int = Field(
        default=2000,
        ge=2,
        le=10_000_000,
        description="Matured leads (older than outcomes.windowDays) the verdict rests on: the "
        "first ones after the promotion.",
    )
    min_conversions: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description="Conversions among them the verdict needs too (more leads are taken until "
        "there are this many).",
    )
    max_drop: Ratio = Field(
        default="0.02",
        description="Roll back when the upper bound of the interval of (serving AUC - previous "
        "AUC) is below minus this (decimal string, 0-1).",
    )
    alpha: Annotated[str, StringConstraints(pattern=r"^0?\.[0-9]*[1-9][0-9]*$", max_length=8)] = (
        Field(
            default="0.05",
            description="The interval is two-sided 1 - alpha (DeLong, paired): an equal model is "
            "rolled back nominally alpha / 2 of the time with maxDrop 0, less above (0-1).",
        )
    )
    max_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Days after the promotion the previous version keeps scoring in shadow "
        "when no verdict is reached sooner; leads scored by then are still judged once matured.",
    )

    @property
    def max_drop_value(self) -> Decimal:
        return Decimal(self.max_drop)

    @property
    def alpha_value(self) -> Decimal:
        return Decimal(self.alpha)


class Retention(_Model):
    """How long Redis keeps leads (data minimisation: nothing is kept for ever)."""

    lead_days: int = Field(
        default=90,
        ge=1,
        le=36_500,
        description="Days a lead record and its chat memory are kept after their last write; at "
        "least the longest window that reads leads (outcomes.windowDays, experiment."
        "maxDurationDays), or a statistic would miss its oldest leads.",
    )
    outcome_days: int = Field(
        default=365,
        ge=1,
        le=36_500,
        description="Days a lead record is kept once its outcome is recorded (training reads "
        "it); at least leadDays.",
    )


class OnInconclusive(StrEnum):
    PROMOTE = "Promote"
    HOLD = "Hold"


REPLAY_ALPHA_RULE = "double(self.alpha) > 0.0 && double(self.alpha) <= 0.2"


class ReplayGuard(_Model):
    """Replay a candidate against the serving version on recent stored leads with known
    outcomes before it takes any traffic (docs/operator.md, "The replay gate")."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": REPLAY_ALPHA_RULE,
                    "message": "alpha must be above 0 and at most 0.2",
                    "fieldPath": ".alpha",
                },
            ]
        }
    )

    days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Replay the leads received in this many days before the replay, whose "
        "outcome is recorded (the scorer's outcome export); at most retention.outcomeDays.",
    )
    on_inconclusive: OnInconclusive = Field(
        default=OnInconclusive.PROMOTE,
        description="Too few leads, or too wide an interval, to tell: Promote (the static gates "
        "passed) or Hold the candidate until a newer one is replayed.",
    )
    max_drop: Ratio = Field(
        default="0.02",
        description="AUC the candidate may lose against the serving version and still pass; it "
        "fails once the paired interval lies below 0 and the drop exceeds this (decimal string).",
    )
    alpha: Ratio = Field(
        default="0.05",
        description="1 - the paired interval's confidence level (decimal string, above 0 and "
        "at most 0.2).",
    )
    min_leads: int = Field(
        default=200,
        ge=2,
        le=100_000_000,
        description="Leads with a known outcome needed for a verdict (fewer: Inconclusive).",
    )
    min_conversions: int = Field(
        default=20,
        ge=1,
        le=100_000_000,
        description="Converted and not-converted leads needed, each (fewer: Inconclusive).",
    )
    max_score_psi: Score | None = Field(
        default=None,
        description="Fail a candidate whose scores differ from the serving version's on the "
        "same leads by a larger PSI; unset: the PSI is reported, not judged.",
    )

    def semantic_errors(self, retention: Retention) -> list[str]:
        """The CEL rule above, and the window against retention (for any apiserver)."""
        errors: list[str] = []
        if not Decimal(0) < Decimal(self.alpha) <= Decimal("0.2"):
            errors.append("guards.replay.alpha must be above 0 and at most 0.2")
        if self.days > retention.outcome_days:
            errors.append(
                f"guards.replay.days {self.days} is above retention.outcomeDays "
                f"{retention.outcome_days}: leads with outcomes expire before the replay reads them"
            )
        return errors


class Guards(_Model):
    """Outcome guards: checks on real leads' outcomes around a promotion."""

    replay: ReplayGuard | None = Field(
        default=None,
        description="Set (`replay: {}` for the defaults): a candidate is replayed against the "
        "serving version before it is promoted; a worse one is not promoted.",
    )
    matured_auc: MaturedAucGuard = Field(
        default_factory=MaturedAucGuard,
        description="Roll back a promoted version whose AUC on matured leads is worse than "
        "its predecessor's on the same leads.",
        json_schema_extra={"default": {}},
    )


class ExperimentUnit(StrEnum):
    LEAD = "lead"
    CHAT = "chat"
    TENANT = "tenant"


class PrimaryMetric(StrEnum):
    CONVERSION = "conversion"
    REPLY = "reply"  # the lead's first reply to a follow-up (needs spec.followUps)


# Flag names the calling app reads (memory, enrichment, followUpDelayMinutes, ...).
FLAG_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9]{0,62}$"
MAX_VARIANTS = 4


class ExperimentVariant(_Model):
    """One arm of the experiment: its share of units, model version and app flags."""

    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)] = Field(
        description="Variant name, unique in the experiment; the first variant is the control."
    )
    weight: int = Field(
        ge=1, le=99, description="Share of units bucketed into this variant, in percent."
    )
    model_version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] = Field(
        default="",
        description="The prediction flag: the model version this variant serves (it passes the "
        "same gates first); empty: the serving version.",
    )
    flags: dict[Annotated[str, StringConstraints(pattern=FLAG_NAME_PATTERN)], str] = Field(
        default_factory=dict,
        max_length=16,
        description="Flags returned to the calling app with each lead of this variant, e.g. "
        "memory: 'on', enrichment: 'off', followUpDelayMinutes: '5'.",
        json_schema_extra={
            "default": {},
            "maxProperties": 16,
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
    )


class ExperimentGuardrails(_Model):
    """Operational limits a variant must keep, checked before its conversions count."""

    max_error_rate: Ratio = Field(
        default="0.02",
        description="Abort when a variant's share of failed requests exceeds this "
        "(decimal string, 0-1).",
    )
    max_p99_latency_ratio: Score = Field(
        default="1.5",
        description="Abort when a variant's p99 latency exceeds the control's by this factor.",
    )
    max_score_psi: Score = Field(
        default="0.25",
        description="Abort when the population stability index between a variant's scores and "
        "the control's exceeds this.",
    )


VARIANT_WEIGHTS_RULE = "self.variants.map(v, v.weight).sum() == 100"
VARIANT_COUNT_RULE = f"self.variants.size() >= 2 && self.variants.size() <= {MAX_VARIANTS}"
VARIANT_NAMES_RULE = "self.variants.all(v, self.variants.exists_one(w, w.name == v.name))"
ALPHA_RULE = "double(self.alpha) > 0.0 && double(self.alpha) <= 0.2"


class Experiment(_Model):
    """An A/B experiment: units bucketed into variants, evaluated on matured leads."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": VARIANT_COUNT_RULE,
                    "message": f"an experiment has 2 to {MAX_VARIANTS} variants",
                    "fieldPath": ".variants",
                },
                {
                    "rule": VARIANT_WEIGHTS_RULE,
                    "message": "variant weights must sum to 100",
                    "fieldPath": ".variants",
                },
                {
                    "rule": VARIANT_NAMES_RULE,
                    "message": "variant names must be unique",
                    "fieldPath": ".variants",
                },
                {
                    "rule": ALPHA_RULE,
                    "message": "alpha must be above 0 and at most 0.2",
                    "fieldPath": ".alpha",
                },
            ]
        }
    )

    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)] = Field(
        description="Experiment name; with the unit id it seeds the bucketing hash, so a new "
        "name reshuffles every unit."
    )
    variants: list[ExperimentVariant] = Field(
        min_length=2,
        max_length=MAX_VARIANTS,
        description="2 to 4 variants; the first is the control; weights sum to 100.",
    )
    unit: ExperimentUnit = Field(
        default=ExperimentUnit.LEAD,
        description="What is bucketed: lead, chat or tenant (all of a chat's or tenant's leads "
        "then share a variant).",
    )
    primary_metric: PrimaryMetric = Field(
        default=PrimaryMetric.CONVERSION,
        description="What decides the experiment, within spec.outcomes.windowDays: conversion "
        "(a recorded outcome), or reply (the lead replied to a follow-up; needs spec.followUps).",
    )
    min_leads_per_variant: int = Field(
        default=1000, ge=1, le=100_000_000, description="Matured leads each variant needs."
    )
    min_conversions_per_variant: int = Field(
        default=50, ge=0, le=100_000_000, description="Conversions each variant needs."
    )
    max_duration_days: int = Field(
        default=28,
        ge=1,
        le=365,
        description="Planned length: one look per matured day, the last one decides; without "
        "a winner the experiment is Inconclusive and the control keeps serving.",
    )
    alpha: Ratio = Field(
        default="0.05",
        description="Chance of promoting a variant that is no better, over all looks "
        "(decimal string, above 0 and at most 0.2).",
    )
    promotion: Promotion = Field(
        default=Promotion.AUTOMATIC,
        description="Automatic: a winning variant is rolled out. Manual: it waits for a person.",
    )
    guardrails: ExperimentGuardrails = Field(
        default_factory=ExperimentGuardrails,
        description="Limits that abort the experiment whatever the conversions say.",
        json_schema_extra={"default": {}},
    )

    @property
    def alpha_value(self) -> Decimal:
        return Decimal(self.alpha)

    def semantic_errors(self) -> list[str]:
        """The CEL rules above, for specs that did not pass through the apiserver."""
        errors: list[str] = []
        if sum(v.weight for v in self.variants) != 100:
            errors.append("experiment variant weights must sum to 100")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            errors.append("experiment variant names must be unique")
        if not Decimal(0) < self.alpha_value <= Decimal("0.2"):
            errors.append("experiment alpha must be above 0 and at most 0.2")
        return errors


# NetworkPolicy (label patterns: above) --------------------------------------------------

CIDR_PATTERN = r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"
MAX_PEERS = 16
PEER_RULE = "has(self.cidr) != (has(self.namespaceLabels) || has(self.podLabels))"
PEER_RULE_MESSAGE = "a peer is either a cidr or namespaceLabels and/or podLabels"
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)


def _labels_schema() -> dict[str, Any]:
    """A label map as a structural schema; keys are checked when the spec is parsed (map keys
    have no length bound a CEL rule's cost estimate could use)."""
    return {
        "minProperties": 1,
        "maxProperties": 8,
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "pattern": LABEL_VALUE_PATTERN,
        },
    }


def _label_keys(value: dict[str, str] | None) -> dict[str, str] | None:
    for key in value or {}:
        if len(key) > 317 or not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a valid label key")
    return value


class NetworkPeer(_Model):
    """Who a NetworkPolicy rule names: Pods by labels (their namespace's labels too), or a CIDR."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": PEER_RULE, "message": PEER_RULE_MESSAGE}]
        }
    )

    namespace_labels: dict[str, LabelValue] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Namespaces with all these labels (e.g. kubernetes.io/metadata.name: web); "
        "unset: the LeadModel's own namespace.",
        json_schema_extra=_labels_schema(),
    )
    pod_labels: dict[str, LabelValue] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Pods with all these labels; unset: every Pod of the namespaces selected.",
        json_schema_extra=_labels_schema(),
    )
    cidr: Annotated[str, StringConstraints(pattern=CIDR_PATTERN, max_length=43)] | None = Field(
        default=None,
        description="An address range outside the Pod network (e.g. 10.0.0.10/32), instead of "
        "labels.",
    )

    _namespace_keys = field_validator("namespace_labels")(_label_keys)
    _pod_keys = field_validator("pod_labels")(_label_keys)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_network(value, strict=False)
        return value

    def semantic_errors(self, where: str) -> list[str]:
        """PEER_RULE, for specs that did not pass through the apiserver."""
        labels = self.namespace_labels is not None or self.pod_labels is not None
        if (self.cidr is not None) == labels:
            return [f"{where}: {PEER_RULE_MESSAGE}"]
        return []


Port = Annotated[int, Field(ge=1, le=65535)]


class NetworkRedis(_Model):
    port: Port = Field(default=6379, description="Redis' TCP port.")
    pod_labels: dict[str, LabelValue] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Labels of Redis Pods in the LeadModel's namespace: the backfill may reach "
        "them, and the operator makes them accept only this LeadModel's scorer and backfill "
        "(another LeadModel sharing them adds its own).",
        json_schema_extra=_labels_schema(),
    )
    _pod_keys = field_validator("pod_labels")(_label_keys)
    peers: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=MAX_PEERS,
        description="Redis outside the namespace (CIDR or labels): the backfill may reach it; "
        "who else may is its owner's policy. With neither podLabels nor peers, the backfill may "
        "reach any address on the port.",
        json_schema_extra={"default": []},
    )


class NetworkApiServer(_Model):
    peers: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=MAX_PEERS,
        description="The API server's endpoint addresses (kubectl get endpointslice -n default "
        "-l kubernetes.io/service-name=kubernetes), as CIDRs; empty: any address on the ports.",
        json_schema_extra={"default": []},
    )
    ports: list[Port] = Field(
        default_factory=lambda: [443, 6443],
        min_length=1,
        max_length=4,
        description="The API server's TCP ports, as its endpoints serve them.",
        json_schema_extra={"default": [443, 6443]},
    )


class NetworkPolicy(_Model):
    """NetworkPolicies for the scorer and the Jobs (opt-in; docs/security.md)."""

    enabled: bool = Field(
        default=False,
        description="Make the NetworkPolicies: the scorer admits only the clients below, the "
        "monitoring and operator namespaces and its own training Job; the training Job reaches "
        "only DNS, the scorer and the API server; the backfill only DNS and Redis.",
    )
    scorer_clients: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=MAX_PEERS,
        description="Who may call the scorer's port besides those always admitted.",
        json_schema_extra={"default": []},
    )
    monitoring_namespace: Annotated[
        str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)
    ] = Field(default="monitoring", description="Namespace whose Pods scrape the scorer.")
    operator_namespace: Annotated[
        str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)
    ] = Field(
        default="leadops-system",
        description="Namespace of the LeadOps operator, which reads the scorer's "
        "/ops/model-status.",
    )
    redis: NetworkRedis = Field(
        default_factory=NetworkRedis,
        description="Where Redis is, for the backfill's egress and Redis' own ingress.",
        json_schema_extra={"default": {}},
    )
    api_server: NetworkApiServer = Field(
        default_factory=NetworkApiServer,
        description="Where the API server is, for the training Job (it publishes ConfigMaps).",
        json_schema_extra={"default": {}},
    )

    def semantic_errors(self) -> list[str]:
        errors: list[str] = []
        for where, peers in (
            ("networkPolicy.scorerClients", self.scorer_clients),
            ("networkPolicy.redis.peers", self.redis.peers),
            ("networkPolicy.apiServer.peers", self.api_server.peers),
        ):
            for i, peer in enumerate(peers):
                errors += peer.semantic_errors(f"{where}[{i}]")
        return errors


# Follow-ups ----------------------------------------------------------------------------

CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TEMPLATE_NAME_PATTERN = r"^[a-zA-Z0-9][-_.a-zA-Z0-9]{0,62}$"
MAX_FOLLOW_UP_TENANTS = 64
MAX_TEMPLATE_CHARS = 8192
FOLLOW_UP_CHANNELS = ("sms", "whatsapp", "email")


class FollowUpChannel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class FollowUpProviderType(StrEnum):
    TWILIO = "twilio"
    SENDGRID = "sendgrid"
    SMTP = "smtp"


class FollowUpProvider(_Model):
    """One provider of a channel; credentials only as Secret references (mounted as files)."""

    type: FollowUpProviderType = Field(
        description="twilio (sms, whatsapp), sendgrid (email) or smtp (email)."
    )
    name: Annotated[
        str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", max_length=63)
    ] = Field(default="", description="Name in metrics and logs; empty: the type.")
    sender: Annotated[str, StringConstraints(min_length=1, max_length=254)] = Field(
        alias="from", description="Sender: a phone number (+15005550006) or an e-mail address."
    )
    account_sid: Annotated[str, StringConstraints(pattern=r"^AC[0-9a-fA-F]{32}$")] | None = Field(
        default=None, description="Twilio Account SID (twilio)."
    )
    auth_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the Twilio auth token (twilio)."
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the SendGrid API key (sendgrid)."
    )
    host: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9.-]{1,253}$")] | None = Field(
        default=None, description="SMTP server host (smtp)."
    )
    port: int = Field(default=587, ge=1, le=65535, description="SMTP server port (smtp).")
    starttls: bool = Field(default=True, description="Upgrade the SMTP connection (smtp).")
    username: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        default=None, description="SMTP user name (smtp)."
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the SMTP password (smtp)."
    )

    def problems(self, where: str) -> list[str]:
        needs = {
            FollowUpProviderType.TWILIO: ("accountSid", "authTokenSecretRef"),
            FollowUpProviderType.SENDGRID: ("apiKeySecretRef",),
            FollowUpProviderType.SMTP: ("host",),
        }[self.type]
        given = self.model_dump(by_alias=True, exclude_none=True)
        return [f"{where}: a {self.type.value} provider needs {f}" for f in needs if f not in given]


class FollowUpProviders(_Model):
    sms: list[FollowUpProvider] = Field(
        default_factory=list,
        max_length=4,
        description="SMS providers, tried in order.",
        json_schema_extra={"default": []},
    )
    whatsapp: list[FollowUpProvider] = Field(
        default_factory=list,
        max_length=4,
        description="WhatsApp providers, tried in order.",
        json_schema_extra={"default": []},
    )
    email: list[FollowUpProvider] = Field(
        default_factory=list,
        max_length=4,
        description="E-mail providers, tried in order.",
        json_schema_extra={"default": []},
    )


class FollowUpRule(_Model):
    min_score: Ratio = Field(
        description="Lower bound of the score band (decimal string, 0-1); the highest band a "
        "score reaches wins."
    )
    channel: FollowUpChannel = Field(description="sms, whatsapp or email.")
    template: Annotated[str, StringConstraints(pattern=TEMPLATE_NAME_PATTERN)] = Field(
        description="Name of one of the tenant's templates."
    )
    delay_minutes: int = Field(
        default=0, ge=0, le=60 * 24 * 30, description="Minutes after scoring (before quiet hours)."
    )
    whatsapp_content_sid: (
        Annotated[str, StringConstraints(pattern=r"^HX[0-9a-fA-F]{32}$")] | None
    ) = Field(
        default=None,
        description="Approved WhatsApp template (Content SID) sent outside the 24 h session.",
    )


MAX_SUBJECT_CHARS = 998
TEMPLATE_ONE_SOURCE_RULE = "has(self.body) != has(self.configMapRef)"
TEMPLATE_ONE_SOURCE_MESSAGE = "a template has exactly one of body and configMapRef"
TEMPLATE_ONE_SUBJECT_RULE = (
    "!has(self.configMapRef) || !has(self.configMapRef.subjectKey) || "
    "!has(self.subject) || self.subject == ''"
)
TEMPLATE_ONE_SUBJECT_MESSAGE = "a template has subject or configMapRef.subjectKey, not both"


class TemplateConfigMapRef(_Model):
    """Template text kept in a ConfigMap of the LeadModel's namespace (read by the operator,
    validated, and written into the follow-ups config; docs/followups.md)."""

    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=253)] = Field(
        description="Name of a ConfigMap in the LeadModel's namespace."
    )
    key: Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN, max_length=253)] = Field(
        description="Key of the ConfigMap's data holding the body (Jinja2)."
    )
    subject_key: (
        Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN, max_length=253)] | None
    ) = Field(default=None, description="Key holding the e-mail subject (Jinja2); optional.")


class FollowUpTemplate(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": TEMPLATE_ONE_SOURCE_RULE, "message": TEMPLATE_ONE_SOURCE_MESSAGE},
                {"rule": TEMPLATE_ONE_SUBJECT_RULE, "message": TEMPLATE_ONE_SUBJECT_MESSAGE},
            ]
        }
    )

    name: Annotated[str, StringConstraints(pattern=TEMPLATE_NAME_PATTERN)] = Field(
        description="Template name rules refer to."
    )
    subject: Annotated[str, StringConstraints(max_length=MAX_SUBJECT_CHARS)] = Field(
        default="", description="E-mail subject (Jinja2)."
    )
    body: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_CHARS)] | None = (
        Field(
            default=None,
            description="Message body (Jinja2, sandboxed, StrictUndefined; variables name, score, "
            "tenant); it must render on a sample lead or the spec is InvalidSpec. Exactly one of "
            "body and configMapRef.",
        )
    )
    config_map_ref: TemplateConfigMapRef | None = Field(
        default=None,
        description="The body (and optionally the subject) from a ConfigMap instead of inline: "
        "validated like an inline template when the spec is applied and whenever the "
        "ConfigMap changes.",
    )

    def problems(self, where: str) -> list[str]:
        errors = []
        if (self.body is None) == (self.config_map_ref is None):
            errors.append(f"{where} ({self.name}): {TEMPLATE_ONE_SOURCE_MESSAGE}")
        ref = self.config_map_ref
        if ref is not None and ref.subject_key is not None and self.subject:
            errors.append(f"{where} ({self.name}): {TEMPLATE_ONE_SUBJECT_MESSAGE}")
        return errors


class QuietHoursSpec(_Model):
    start: Annotated[str, StringConstraints(pattern=CLOCK_PATTERN)] = Field(
        default="08:00", description="Sending opens (recipient's local time, HH:MM)."
    )
    end: Annotated[str, StringConstraints(pattern=CLOCK_PATTERN)] = Field(
        default="21:00", description="Sending closes (recipient's local time, HH:MM)."
    )


class VaultKey(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        description="Key id stored with each sealed contact."
    )
    secret_ref: SecretKeyRef = Field(
        description="Secret key holding 32 random bytes as hex (openssl rand -hex 32)."
    )


class ContactVaultSpec(_Model):
    current: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        description="Id of the key new contacts are sealed with."
    )
    keys: list[VaultKey] = Field(
        min_length=1,
        max_length=8,
        description="Keys that open contacts; remove one after horizonHours (rotation).",
    )


class FollowUpWebhooks(_Model):
    sendgrid_public_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="SendGrid event webhook verification key (base64 DER)."
    )
    whatsapp_app_secret_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Meta app secret that signs WhatsApp callbacks."
    )
    whatsapp_verify_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Token Meta's subscription check must present."
    )


class EmailReplies(_Model):
    """Replies to e-mail follow-ups through SendGrid's Inbound Parse (docs/followups.md)."""

    domain: Annotated[
        str,
        StringConstraints(
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
            max_length=200,
        ),
    ] = Field(
        description="Receiving domain of the Inbound Parse (its MX is mx.sendgrid.net): "
        "e-mails are sent with Reply-To reply+<token>@domain."
    )
    credentials_secret_ref: SecretKeyRef = Field(
        description="Secret key holding user:password (one pair a line) that the Inbound "
        "Parse URL carries as basic auth (https://user:password@host/...)."
    )


class FollowUpTenant(_Model):
    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)] = Field(
        description="Tenant (the ingest key's)."
    )
    rate_limit_per_second: int | None = Field(
        default=None, ge=1, le=10_000, description="Sends per sliding second; unset: no limit."
    )
    vault: ContactVaultSpec = Field(description="Encryption keys of the tenant's contacts.")
    quiet_hours: QuietHoursSpec = Field(
        default_factory=QuietHoursSpec,
        description="Local hours in which sending is allowed; outside, follow-ups are deferred.",
        json_schema_extra={"default": {}},
    )
    rules: list[FollowUpRule] = Field(
        min_length=1, max_length=16, description="Channel, template and delay by score band."
    )
    templates: list[FollowUpTemplate] = Field(
        min_length=1, max_length=32, description="Message templates, inline or from ConfigMaps."
    )
    email_replies: EmailReplies | None = Field(
        default=None,
        description="Record replies to e-mail follow-ups (SendGrid Inbound Parse); unset: "
        "e-mails carry no reply address of ours.",
    )
    providers: FollowUpProviders = Field(
        default_factory=FollowUpProviders,
        description="Providers per channel, in failover order.",
        json_schema_extra={"default": {}},
    )
    webhooks: FollowUpWebhooks = Field(
        default_factory=FollowUpWebhooks,
        description="Secrets that verify provider callbacks.",
        json_schema_extra={"default": {}},
    )

    def problems(self, where: str) -> list[str]:
        errors: list[str] = []
        names = [t.name for t in self.templates]
        if len(set(names)) != len(names):
            errors.append(f"{where}.templates: template names must be unique")
        for j, template in enumerate(self.templates):
            errors += template.problems(f"{where}.templates[{j}]")
        key_ids = [k.id for k in self.vault.keys]
        if len(set(key_ids)) != len(key_ids):
            errors.append(f"{where}.vault.keys: key ids must be unique")
        if self.vault.current not in key_ids:
            errors.append(f"{where}.vault.current {self.vault.current!r} is not in vault.keys")
        for i, rule in enumerate(self.rules):
            if rule.template not in names:
                errors.append(f"{where}.rules[{i}].template {rule.template!r} is not a template")
            if not getattr(self.providers, rule.channel.value):
                errors.append(f"{where}.rules[{i}]: channel {rule.channel.value} has no providers")
        for channel in FOLLOW_UP_CHANNELS:
            for j, provider in enumerate(getattr(self.providers, channel)):
                errors += provider.problems(f"{where}.providers.{channel}[{j}]")
                allowed = (
                    {FollowUpProviderType.TWILIO}
                    if channel != "email"
                    else {FollowUpProviderType.SENDGRID, FollowUpProviderType.SMTP}
                )
                if provider.type not in allowed:
                    errors.append(
                        f"{where}.providers.{channel}[{j}]: {provider.type.value} cannot send "
                        f"{channel}"
                    )
        return errors


class FollowUps(_Model):
    """Follow-ups by SMS, WhatsApp and e-mail: the operator runs the worker and webhooks app."""

    image: ImageRef | None = Field(
        default=None,
        description="Image of the worker and webhooks app; defaults to the jobs image (SDKs).",
    )
    replicas: int = Field(default=1, ge=0, le=20, description="Worker Pods to run.")
    resources: Resources = Field(
        default_factory=Resources,
        description="Compute resources of each container; unset: 50m CPU and 128Mi requested, "
        "512Mi limit.",
        json_schema_extra={"default": {}},
    )
    horizon_hours: int = Field(
        default=72, ge=1, le=24 * 90, description="Contacts expire this long after scoring."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts before a follow-up is dead-lettered."
    )
    backoff_base_seconds: int = Field(default=1, ge=1, le=3600, description="First retry delay.")
    backoff_max_seconds: int = Field(
        default=300, ge=1, le=86_400, description="Longest retry delay."
    )
    status_callback_base: Annotated[
        str, StringConstraints(pattern=r"^(https?://[^\s]+)?$", max_length=2000)
    ] = Field(
        default="",
        description="Public base URL of the webhooks Service (providers post status callbacks "
        "and replies there); empty: no status callbacks.",
    )
    tenants: list[FollowUpTenant] = Field(
        min_length=1, max_length=MAX_FOLLOW_UP_TENANTS, description="Per-tenant follow-up rules."
    )

    def semantic_errors(self) -> list[str]:
        errors: list[str] = []
        names = [t.name for t in self.tenants]
        if len(set(names)) != len(names):
            errors.append("followUps.tenants: tenant names must be unique")
        for i, tenant in enumerate(self.tenants):
            errors += tenant.problems(f"followUps.tenants[{i}]")
        return errors

    def secret_refs(self) -> dict[str, SecretKeyRef]:
        """Field path -> Secret reference of every credential the follow-ups mount."""
        refs: dict[str, SecretKeyRef] = {}
        for i, tenant in enumerate(self.tenants):
            base = f"spec.followUps.tenants[{i}]"
            for j, key in enumerate(tenant.vault.keys):
                refs[f"{base}.vault.keys[{j}].secretRef"] = key.secret_ref
            for channel in FOLLOW_UP_CHANNELS:
                for j, p in enumerate(getattr(tenant.providers, channel)):
                    for field_name in ("auth_token", "api_key", "password"):
                        ref = getattr(p, f"{field_name}_secret_ref")
                        if ref is not None:
                            alias = to_camel(f"{field_name}_secret_ref")
                            refs[f"{base}.providers.{channel}[{j}].{alias}"] = ref
            if tenant.email_replies is not None:
                refs[f"{base}.emailReplies.credentialsSecretRef"] = (
                    tenant.email_replies.credentials_secret_ref
                )
            for field_name in (
                "sendgrid_public_key",
                "whatsapp_app_secret",
                "whatsapp_verify_token",
            ):
                ref = getattr(tenant.webhooks, f"{field_name}_secret_ref")
                if ref is not None:
                    refs[f"{base}.webhooks.{to_camel(field_name + '_secret_ref')}"] = ref
        return refs

    def template_configmaps(self) -> set[str]:
        """Names of the ConfigMaps templates are read from."""
        return {
            t.config_map_ref.name
            for tenant in self.tenants
            for t in tenant.templates
            if t.config_map_ref is not None
        }


SIGNATURE_NEEDS_KEY_RULE = (
    "self.gates.signature != 'Required' || (has(self.signing) && has(self.signing.keySecretRef))"
)


class LeadModelSpec(_Model):
    """Desired state of a LeadModel: which model serves and the bar every candidate clears."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": SIGNATURE_NEEDS_KEY_RULE,
                    "message": "gates.signature Required needs signing.keySecretRef",
                    "reason": "FieldValueRequired",
                    "fieldPath": ".signing",
                },
            ]
        }
    )

    model_version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] = Field(
        default="",
        description="Pin the serving version (unix seconds, as in the registry); "
        "empty serves the newest version that passed the gates.",
    )
    promotion: Promotion = Field(
        default=Promotion.AUTOMATIC,
        description="Automatic: roll out each candidate that passes the gates. "
        "Manual: candidates wait until spec.modelVersion names them.",
    )
    gates: Gates = Field(
        default_factory=Gates,
        description="Quality bar every candidate must clear before it serves.",
        json_schema_extra={"default": {}},
    )
    training: Training = Field(
        default_factory=Training,
        description="Scheduled retraining from the scorer's outcome export.",
        json_schema_extra={"default": {}},
    )
    pii_backfill: PiiBackfill = Field(
        default_factory=PiiBackfill,
        description="Scheduled scrub of PII already stored in Redis.",
        json_schema_extra={"default": {}},
    )
    scorer: Scorer = Field(
        default_factory=Scorer,
        description="The online scoring service.",
        json_schema_extra={"default": {}},
    )
    redis: Redis = Field(description="Where leads, outcomes and chat memory live.")
    pii: Pii = Field(
        default_factory=Pii,
        description="PII detection and key naming for the scorer and the backfill.",
        json_schema_extra={"default": {}},
    )
    signing: Signing = Field(
        default_factory=Signing,
        description="Artifact signature verification.",
        json_schema_extra={"default": {}},
    )
    artifacts: Artifacts = Field(
        default_factory=Artifacts,
        description="Where model artifacts are stored: configMap (default) or s3.",
        json_schema_extra={"default": {}},
    )
    history: History = Field(
        default_factory=History,
        description="Model versions kept for rollback.",
        json_schema_extra={"default": {}},
    )
    outcomes: Outcomes = Field(
        default_factory=Outcomes,
        description="When a lead's outcome counts (one window for experiments, outcome guards "
        "and retention).",
        json_schema_extra={"default": {}},
    )
    guards: Guards = Field(
        default_factory=Guards,
        description="Outcome guards around a promotion: a replay before any traffic, a "
        "rollback on matured AUC (docs/operator.md).",
        json_schema_extra={"default": {}},
    )
    retention: Retention = Field(
        default_factory=Retention,
        description="How long Redis keeps leads and leads with an outcome.",
        json_schema_extra={"default": {}},
    )
    pod_security_context: PodSecurityContext = Field(
        default_factory=PodSecurityContext,
        description="UID, GID and fsGroup for every Pod the operator creates (all optional); "
        "the Pods always run as non-root with the RuntimeDefault seccomp profile.",
        json_schema_extra={"default": {}},
    )
    experiment: Experiment | None = Field(
        default=None, description="An A/B experiment over variants of the model and app flags."
    )
    follow_ups: FollowUps | None = Field(
        default=None,
        description="Follow-ups by SMS, WhatsApp and e-mail (docs/followups.md): set, the "
        "operator runs the follow-up worker and its webhooks app.",
    )
    network_policy: NetworkPolicy = Field(
        default_factory=NetworkPolicy,
        description="NetworkPolicies for the scorer, the Jobs and Redis (opt-in).",
        json_schema_extra={"default": {}},
    )

    @property
    def pinned_version(self) -> int | None:
        return int(self.model_version) if self.model_version else None

    def retention_floor(self) -> tuple[int, str]:
        """The longest window that reads stored leads, in days, and the field that sets it."""
        floors = [(self.outcomes.window_days, "outcomes.windowDays")]
        if self.experiment is not None:
            floors.append((self.experiment.max_duration_days, "experiment.maxDurationDays"))
        return max(floors, key=lambda floor: floor[0])

    def retention_errors(self) -> list[str]:
        """Retention never drops a lead a window still reads (that would bias the statistic);
        a LeadModel's own fields only, so not a CEL rule: the operator says why, as InvalidSpec."""
        errors: list[str] = []
        days, field = self.retention_floor()
        if self.retention.lead_days < days:
            errors.append(
                f"retention.leadDays {self.retention.lead_days} is below {days}, the longest "
                f"window that reads leads ({field}): leads would expire before they are counted"
            )
        if self.retention.outcome_days < self.retention.lead_days:
            errors.append(
                f"retention.outcomeDays {self.retention.outcome_days} is below retention.leadDays "
                f"{self.retention.lead_days}: a lead would expire sooner once its outcome is known"
            )
        return errors

    def semantic_errors(self) -> list[str]:
        """Rules the schema cannot express (kept in step with the CEL rules it can)."""
        errors: list[str] = self.retention_errors()
        if self.gates.signature is SignaturePolicy.REQUIRED and self.signing.key_secret_ref is None:
            errors.append("gates.signature Required needs signing.keySecretRef")
        if self.experiment is not None:
            errors += self.experiment.semantic_errors()
            if self.experiment.primary_metric is PrimaryMetric.REPLY and self.follow_ups is None:
                errors.append("experiment.primaryMetric reply needs spec.followUps")
        if self.follow_ups is not None:
            errors += self.follow_ups.semantic_errors()
            if self.redis.mode is RedisMode.CLUSTER:
                errors.append("followUps does not run on redis.mode cluster yet: use standalone")
        if self.guards.replay is not None:
            errors += self.guards.replay.semantic_errors(self.retention)
        errors += self.network_policy.semantic_errors()
        if self.scorer.autoscaling is not None:
            errors += self.scorer.autoscaling.semantic_errors()
        if self.artifacts.config_map is not None and self.artifacts.s3 is not None:
            errors.append("artifacts names one store: configMap or s3")
        bootstrap = self.training.bootstrap
        if bootstrap is not None and len(bootstrap.sources()) != 1:
            errors.append("bootstrap names exactly one of url, configMapKeyRef, secretKeyRef")
        return errors


# Status --------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Verdict(StrEnum):
    PASSED = "Passed"
    REJECTED = "Rejected"


class Condition(_Model):
    type: str = Field(description="Ready, Trained, Validated, RolledOut or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason, e.g. AucBelowThreshold.")
    message: str = Field(default="", description="Human-readable detail.")
    observed_generation: int = Field(
        default=0, description="metadata.generation the condition was computed for."
    )
    last_transition_time: str = Field(
        default="", description="When status last changed (RFC 3339)."
    )


class Candidate(_Model):
    version: str = Field(description="Version of the newest model in the registry.")
    auc: str = Field(default="", description="Its test AUC.")
    n_train: int = Field(default=0, description="Labelled leads it was trained on.")
    verdict: Verdict = Field(description="Passed or Rejected by the gates.")
    reason: str = Field(description="CamelCase reason of the verdict.")
    message: str = Field(default="", description="Why, in words.")


class HistoryEntry(_Model):
    version: str = Field(description="Model version.")
    auc: str = Field(default="", description="Its test AUC.")
    promoted_at: str = Field(default="", description="When it started serving (RFC 3339).")
    retired_at: str = Field(default="", description="When it stopped serving (RFC 3339).")
    reason: str = Field(default="", description="Why it was promoted or retired.")
    rolled_back_at: str = Field(
        default="",
        description="When it was rolled back (RFC 3339); it is not served again until a person "
        "allows it (`leadops allow NAME VERSION`).",
    )
    rolled_back_by: str = Field(
        default="", description="Who rolled it back: leadops-operator, or a person's user name."
    )
    message: str = Field(default="", description="Why it was rolled back, in words.")


class ExperimentPhase(StrEnum):
    RUNNING = "Running"
    AWAITING_PROMOTION = "AwaitingPromotion"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    INCONCLUSIVE = "Inconclusive"
    INVALID = "Invalid"
    PAUSED = "Paused"


class ExperimentVariantStatus(_Model):
    name: str = Field(description="Variant name.")
    assigned: int = Field(default=0, description="Units bucketed into it so far.")
    leads: int = Field(default=0, description="Its matured leads.")
    conversions: int = Field(default=0, description="Their conversions.")


class ExperimentStatus(_Model):
    name: str = Field(description="The experiment (spec.experiment.name).")
    phase: ExperimentPhase = Field(description="Where the experiment stands.")
    reason: str = Field(default="", description="CamelCase reason of the phase.")
    message: str = Field(default="", description="Why, in words.")
    started_at: str = Field(default="", description="When the operator first saw it (RFC 3339).")
    verdict: str = Field(
        default="", description="The latest evaluation's verdict (promote, abort, continue, ...)."
    )
    variant: str = Field(default="", description="The variant the verdict names (a winner).")
    evaluated_at: str = Field(default="", description="When the latest evaluation ran.")
    look: int = Field(default=0, description="Looks done (one per matured day).")
    looks: int = Field(default=0, description="Looks planned (maxDurationDays).")
    alpha_spent: str = Field(default="", description="Alpha the looks so far may have used.")
    variants: list[ExperimentVariantStatus] = Field(
        default_factory=list, description="Per-variant counts of the latest evaluation."
    )
    served_variant: str = Field(
        default="",
        description="Once promoted: the winning variant, whose flags the scorer returns with "
        "every lead (bucketing stopped).",
    )
    served_flags: dict[str, str] = Field(
        default_factory=dict,
        description="Once promoted: the winner's flags as they won, served to every lead while "
        "the experiment stays in the spec (a later edit of its flags changes nothing).",
        json_schema_extra={"default": {}, "additionalProperties": {"type": "string"}},
    )


class BackfillResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INCOMPLETE = "Incomplete"


class PiiBackfillRun(_Model):
    """One finished PII-backfill run, as its Pod's status and termination message say."""

    pod: str = Field(description="The run's Pod.")
    result: BackfillResult = Field(
        description="Succeeded; Failed (the Pod failed with no summary: killed, crashed, "
        "Redis unreachable); Incomplete (it stopped early or some keys failed)."
    )
    finished_at: str = Field(default="", description="When it ended (RFC 3339).")
    exit_code: int = Field(default=0, description="The container's exit code.")
    scanned_keys: int = Field(default=0, ge=0, description="Keys it looked at.")
    redacted_items: int = Field(default=0, ge=0, description="Values it redacted.")
    errors: int = Field(default=0, ge=0, description="Keys it could not scrub.")
    message: str = Field(default="", description="Why it failed, in words.")


class PiiGateOverride(_Model):
    """A promotion the PII gate would have held, let through by a person's annotation."""

    version: str = Field(description="The version promoted.")
    reason: str = Field(description="The leadops.io/pii-gate-override annotation's value.")
    at: str = Field(description="When (RFC 3339).")
    gate_reason: str = Field(default="", description="Why the gate was closed then.")


class PiiGateStatus(_Model):
    """The PII gate: the last backfill result and what it holds (condition PiiCompliant)."""

    last_run: PiiBackfillRun | None = Field(
        default=None, description="The newest finished PII-backfill run (dry runs aside)."
    )
    period_seconds: int = Field(
        default=0,
        ge=0,
        description="The longest gap between two runs of spec.piiBackfill.schedule; a result "
        "older than twice this is stale, and a LeadModel younger than it has none due yet.",
    )
    stale_at: str = Field(
        default="", description="When the last run's result turns stale (RFC 3339)."
    )
    held_version: str = Field(
        default="", description="A version whose promotion waits for the gate to open."
    )
    override: str = Field(
        default="",
        description="The leadops.io/pii-gate-override annotation's reason while it is set: "
        "promotions pass the gate.",
    )
    last_override: PiiGateOverride | None = Field(
        default=None, description="The last promotion that passed the gate by the override."
    )


class ReplayStatus(_Model):
    """The last replay of a candidate against the serving version (spec.guards.replay)."""

    candidate: str = Field(description="The candidate version replayed.")
    baseline: str = Field(description="The serving version it was replayed against.")
    job: str = Field(default="", description="The replay Job.")
    state: str = Field(
        default="",
        description="Running, Succeeded (a verdict), Failed (no verdict) or Skipped (a first "
        "model, an experiment's winner, a pinned version: no replay).",
    )
    verdict: str = Field(default="", description="Pass, Fail or Inconclusive.")
    reason: str = Field(
        default="",
        description="NotWorse, ReplayWorse, ScoreShift, TooFewLeads or Uncertain (of the "
        "verdict); JobFailed.",
    )
    message: str = Field(default="", description="The verdict, or the failure, in words.")
    candidate_auc: str = Field(default="", description="The candidate's AUC on the leads.")
    baseline_auc: str = Field(default="", description="The serving version's AUC on them.")
    difference: str = Field(default="", description="candidateAuc - baselineAuc.")
    ci: list[str] = Field(
        default_factory=list, description="The difference's paired (DeLong) interval: low, high."
    )
    confidence: str = Field(default="", description="The interval's confidence level.")
    leads: int = Field(default=0, ge=0, description="Leads with a known outcome replayed.")
    conversions: int = Field(default=0, ge=0, description="Of which converted.")
    score_psi: str = Field(
        default="", description="PSI of the candidate's scores against the serving version's."
    )
    finished_at: str = Field(default="", description="When the replay ended (RFC 3339).")
    held: bool = Field(
        default=False, description="The candidate's promotion waits or was refused by it."
    )


class MaturedAucStatus(_Model):
    version: str = Field(description="The promoted version the guard judged.")
    previous_version: str = Field(description="The version it replaced, scored in shadow.")
    verdict: str = Field(
        description="Collecting, Drop, NoDrop, Inconclusive (one class only) or Expired (too "
        "few leads within maxDays), as the scorer says it."
    )
    auc: str = Field(default="", description="Its AUC on the matured leads.")
    previous_auc: str = Field(default="", description="The previous version's, same leads.")
    difference: str = Field(default="", description="auc - previousAuc.")
    ci_low: str = Field(default="", description="Lower bound of the difference's interval.")
    ci_high: str = Field(default="", description="Upper bound of the difference's interval.")
    leads: int = Field(default=0, ge=0, description="Matured leads it rests on (so far).")
    conversions: int = Field(default=0, ge=0, description="Conversions among them.")


class LeadModelStatus(_Model):
    observed_generation: int = Field(default=0, description="Last generation reconciled.")
    serving_version: str = Field(default="", description="Model version the scorer serves.")
    previous_version: str = Field(default="", description="Version served before it.")
    candidate: Candidate | None = Field(
        default=None, description="The newest registry version and its gate verdict."
    )
    auc: str = Field(default="", description="Test AUC of the serving version.")
    drift_score: str = Field(default="", description="Drift score the scorer reports.")
    estimated_auc: str = Field(
        default="",
        description="AUC expected from the serving model's recent leads before their outcomes "
        "arrive (confidence-based estimate from the artifact's calibration map), the mean of "
        "the scorer Pods' estimates weighted by their leads; empty: no estimate yet. Below "
        "gates.minAuc over at least 500 leads: Degraded=True/EstimatedAucLow, never a rollback.",
    )
    estimated_auc_leads: int = Field(
        default=0, ge=0, description="Recent scored leads estimatedAuc rests on (all Pods)."
    )
    health: str = Field(
        default="",
        description="How the serving model is doing, as the scorer reports it: ok, "
        "warning_low_auc, warning_high_drift, warning_stale, critical_low_auc, error, or "
        "no_model (nothing serves yet). The same words as the scorer's /ops/model-status.",
    )
    scorer_pods_reported: int = Field(
        default=0,
        description="Ready scorer Pods that answered /ops/model-status this pass; health is "
        "the worst of theirs, driftScore the highest.",
    )
    scorer_pods_asked: int = Field(
        default=0, description="Ready scorer Pods asked this pass (the Service's EndpointSlices)."
    )
    last_rollout: str = Field(default="", description="When the scorer last changed version.")
    awaiting_promotion: str = Field(
        default="",
        description="Under Manual promotion: a version that passed the gates and waits for a "
        "person to set spec.modelVersion to it.",
    )
    conditions: list[Condition] = Field(default_factory=list, description="Current state.")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="Versions that served, newest first."
    )
    experiment: ExperimentStatus | None = Field(
        default=None, description="The A/B experiment of spec.experiment, if any."
    )
    pii_gate: PiiGateStatus | None = Field(
        default=None, description="The PII gate: the last backfill result and what it holds."
    )
    replay: ReplayStatus | None = Field(
        default=None,
        description="The replay gate (spec.guards.replay): the last candidate replayed against "
        "the serving version, its verdict and whether it holds the promotion.",
    )
    matured_auc: list[MaturedAucStatus] = Field(
        default_factory=list,
        description="The matured-AUC guard's verdict per promoted version, newest first.",
    )


# Cron ----------------------------------------------------------------------------------

_CRON_MACROS = {"@annually", "@yearly", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, low, high, names whose index + offset is the value)
_CRON_FIELDS: tuple[tuple[str, int, int, list[str], int], ...] = (
    ("minute", 0, 59, [], 0),
    ("hour", 0, 23, [], 0),
    ("day of month", 1, 31, [], 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
)
_STEP = re.compile(r"^(?P<range>[^/]+)(/(?P<step>[0-9]+))?$")


def validate_cron(schedule: str) -> str:
    """Check a five-field cron schedule the way the CronJob controller parses it."""
    text = schedule.strip()
    if text in _CRON_MACROS:
        return text
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"cron schedule {schedule!r} needs 5 fields, has {len(fields)}")
    for value, (name, low, high, names, offset) in zip(fields, _CRON_FIELDS, strict=True):
        for part in value.split(","):
            _check_cron_part(part, name=name, low=low, high=high, names=names, offset=offset)
    return text


def _cron_number(token: str, *, name: str, names: list[str], offset: int) -> int:
    if token.lower() in names:
        return names.index(token.lower()) + offset
    if not token.isdigit():
        raise ValueError(f"cron {name} {token!r} is not a number")
    return int(token)


def _check_cron_part(
    part: str, *, name: str, low: int, high: int, names: list[str], offset: int
) -> None:
    match = _STEP.match(part)
    if match is None:
        raise ValueError(f"cron {name} {part!r} is malformed")
    rng, step = match["range"], match["step"]
    if step is not None and int(step) == 0:
        raise ValueError(f"cron {name} step must be positive")
    if rng in {"*", "?"}:
        return
    bounds = rng.split("-")
    if len(bounds) > 2:
        raise ValueError(f"cron {name} {part!r} is malformed")
    numbers = [_cron_number(b, name=name, names=names, offset=offset) for b in bounds]
    for number in numbers:
        if not low <= number <= high:
            raise ValueError(f"cron {name} {number} is outside {low}-{high}")
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        raise ValueError(f"cron {name} range {rng!r} runs backwards")
