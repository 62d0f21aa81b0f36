"""The LeadModel resource as pydantic models: the single source of the CRD schema.

`crds/leadmodel.yaml` is generated from these models (`python -m leadops.operator.crd`);
a unit test fails when the committed CRD and the models disagree. Numbers that are not
counts are strings in the spec (Kubernetes API conventions) and parsed to Decimal here.
Pure module: pydantic and the standard library only.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

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


class SecretKeyRef(_Model):
    name: Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=253)] = Field(
        description="Name of a Secret in the LeadModel's namespace."
    )
    key: Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN, max_length=253)] = Field(
        description="Key inside the Secret's data."
    )


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


class Training(_Model):
    schedule: CronSchedule = Field(
        default="17 3 * * *",
        description="Cron schedule (UTC) of the retraining CronJob.",
    )
    suspend: bool = Field(default=False, description="Suspend scheduled retraining.")
    image: ImageRef | None = Field(
        default=None, description="Image of the training Job; defaults to spec.scorer.image."
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="Compute resources of the training container.",
        json_schema_extra={"default": {}},
    )
    active_deadline_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="Kill a training Job running longer."
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)


class PiiBackfill(_Model):
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
        default=None, description="Image of the backfill Job; defaults to spec.scorer.image."
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="Compute resources of the backfill container.",
        json_schema_extra={"default": {}},
    )

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


class Scorer(_Model):
    replicas: int = Field(default=2, ge=0, le=100, description="Scorer Pods to run.")
    image: ImageRef = Field(default="leadops/scorer:0.1.0", description="Scorer container image.")
    resources: Resources = Field(
        default_factory=Resources,
        description="Compute resources of the scorer container.",
        json_schema_extra={"default": {}},
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
    progress_deadline_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="A rollout not Available within this many seconds is rolled back.",
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


class Redis(_Model):
    url_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the Redis URL (redis://user:pass@host:6379/0)."
    )


class Signing(_Model):
    key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the artifact signing key (ed25519 PEM private key or "
        "HMAC secret): mounted only into the training Job, which signs; the operator verifies "
        "with it, and with it set an unsigned or wrongly signed artifact never passes.",
    )


class History(_Model):
    limit: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Model versions kept in the registry; older ones are deleted, never the "
        "serving or previous version.",
    )


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
    history: History = Field(
        default_factory=History,
        description="Model versions kept for rollback.",
        json_schema_extra={"default": {}},
    )

    @property
    def pinned_version(self) -> int | None:
        return int(self.model_version) if self.model_version else None

    def semantic_errors(self) -> list[str]:
        """Rules the schema cannot express (kept in step with the CEL rules it can)."""
        errors: list[str] = []
        if self.gates.signature is SignaturePolicy.REQUIRED and self.signing.key_secret_ref is None:
            errors.append("gates.signature Required needs signing.keySecretRef")
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


class LeadModelStatus(_Model):
    observed_generation: int = Field(default=0, description="Last generation reconciled.")
    serving_version: str = Field(default="", description="Model version the scorer serves.")
    previous_version: str = Field(default="", description="Version served before it.")
    candidate: Candidate | None = Field(
        default=None, description="The newest registry version and its gate verdict."
    )
    auc: str = Field(default="", description="Test AUC of the serving version.")
    drift_score: str = Field(default="", description="Drift score the scorer reports.")
    health: str = Field(default="", description="Health the scorer reports (seed values).")
    last_rollout: str = Field(default="", description="When the scorer last changed version.")
    conditions: list[Condition] = Field(default_factory=list, description="Current state.")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="Versions that served, newest first."
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
