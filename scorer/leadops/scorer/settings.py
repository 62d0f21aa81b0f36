"""The scorer's configuration: one class, read from `LEADOPS_*` environment variables.

Every field is documented in README.md ("Scorer settings"); keep the two in step.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadops.redis_mode import RedisMode
from leadops.scorer import auth, retention
from leadops.scorer.experiment import Experiment
from leadops.scorer.matured import GuardConfig
from leadops.secret_env import read_secret_file


class Durability(StrEnum):
    """When POST /v1/lead may answer 200 (docs/operations.md, "Durability")."""

    ACKNOWLEDGED = "acknowledged"  # once Redis acknowledged the record; else 503
    SPOOLED = "spooled"  # once Redis or the local spool (fsync'd) holds it; else 503
    BEST_EFFORT = "bestEffort"  # at once; a record Redis cannot take is dropped and counted


class VariantModelFile(BaseModel):
    """Where an experiment variant's model artifact is, and the digest it must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Scorer settings. Secrets are SecretStr so they never show in reprs or logs."""

    model_config = SettingsConfigDict(
        env_prefix="LEADOPS_", populate_by_name=True, extra="ignore", frozen=True
    )

    model_path: Path | None = Field(
        default=None, description="Model artifact (model.json) to load at start and on reload."
    )
    api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated API keys valid for /ops/* (several: rotation)."
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="File with API keys, one per line or comma-separated (a mounted Secret).",
    )
    ingest_keys: SecretStr | None = Field(
        default=None,
        description="Ingest keys as TENANT=KEY, comma-separated: a /v1 caller's tenant is its "
        "key's; unset (and no file) = open ingest for tenant `default` only.",
    )
    ingest_keys_file: Path | None = Field(
        default=None,
        description="File of TENANT=KEY ingest keys, one per line (a mounted Secret); re-read "
        "when it changes.",
    )
    dev_open_ops: bool = Field(
        default=False, description="Dev only: serve /ops/* without a key when none is configured."
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LEADOPS_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis URL for leads, outcomes and chat memory; unset = in-process store.",
    )
    redis_url_file: Path | None = Field(
        default=None,
        description="File holding the Redis URL (a mounted Secret; how the operator passes it); "
        "LEADOPS_REDIS_URL wins when both are set.",
    )
    redis_mode: RedisMode = Field(
        default=RedisMode.STANDALONE,
        description="standalone (one Redis, or a primary with replicas behind one address) or "
        "cluster (Redis Cluster or a cluster-mode managed Redis; the URL names any node).",
    )
    redis_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Per-operation Redis timeout; a lead batch gets two tries of it.",
    )
    retention_days: int = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Days a lead record and its chat memory are kept after their last write; "
        "0 keeps them until erased.",
    )
    outcome_retention_days: int = Field(
        default=365,
        ge=0,
        le=36_500,
        description="Days a lead record is kept once its outcome is recorded (training reads "
        "it); at least retention_days; 0 keeps it until erased.",
    )
    retention_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Overrides retention_days, in seconds (tests and benchmarks).",
    )
    outcome_retention_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Overrides outcome_retention_days, in seconds (tests and benchmarks).",
    )
    durability: Durability = Field(
        default=Durability.ACKNOWLEDGED,
        description="When a lead is answered 200: acknowledged, spooled or bestEffort.",
    )
    spool_dir: Path | None = Field(
        default=None, description="Directory of the local spool (needed by spooled durability)."
    )
    spool_max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Spool size limit; past it leads get 503."
    )
    verify_key: SecretStr | None = Field(
        default=None,
        description="Key artifact signatures must verify against (ed25519 PEM or HMAC secret); "
        "when set, unsigned artifacts are refused.",
    )
    verify_key_file: Path | None = Field(
        default=None, description="File holding the verify key (a mounted Secret)."
    )
    model_digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="The only artifact digest to serve (set by the operator to the version it "
        "validated); any other model file is refused with DigestMismatch, on start and reload.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        description="The most replicas this scorer runs as (the operator sets spec.scorer."
        "replicas, or autoscaling.maxReplicas); above 1 without Redis, /ops/reload-model "
        "answers 409, since a reload would reach one replica only.",
    )
    replica_group: str = Field(
        default="scorer",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Names the replicas that serve one model together: a reload is announced "
        "on Redis under this name and every replica of the group loads it (the operator sets "
        "NAMESPACE/NAME).",
    )
    follow_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often a replica re-reads the reload announcement, in case it missed "
        "the message (pub/sub delivers at most once).",
    )
    cold_start: bool = Field(
        default=False,
        description="While no model is loaded, accept and store leads unscored (score null, "
        "health no_model) and report ready, so outcomes accumulate for the first training.",
    )
    followups_config: Path | None = Field(
        default=None,
        description="The follow-ups config the worker reads (the LeadModel's `<name>-followups` "
        "ConfigMap, vault key files mounted at its paths): a scored lead of a tenant in it gets "
        "its follow-up scheduled (docs/followups.md); needs a standalone Redis.",
    )
    followups_queue_capacity: int = Field(
        default=10_000,
        gt=0,
        le=1_000_000,
        description="Follow-ups waiting to be written to Redis; past it a follow-up is dropped "
        'and counted (leadops_followups_dropped_total{reason="queue_full"}).',
    )
    docs: bool = Field(default=False, description="Serve /docs, /redoc and /openapi.json.")
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Largest accepted request body; larger -> 413."
    )
    drift_window: int = Field(
        default=500, gt=0, description="How many recent scored leads the drift score looks at."
    )
    drift_min_samples: int = Field(
        default=50, gt=0, description="Scored leads needed before a drift score is reported."
    )
    estimate_window: int = Field(
        default=5000,
        gt=0,
        le=1_000_000,
        description="How many recent scores of the serving model the estimated AUC looks at.",
    )
    estimate_min_leads: int = Field(
        default=100, gt=0, description="Scored leads needed before an estimated AUC is reported."
    )
    auc_warning: float = Field(
        default=0.65, ge=0, le=1, description="AUC below this -> warning_low_auc."
    )
    auc_critical: float = Field(
        default=0.55, ge=0, le=1, description="AUC below this -> critical_low_auc."
    )
    drift_warning: float = Field(
        default=3.0, gt=0, description="Drift score (sigma) above this -> warning_high_drift."
    )
    stale_hours: float = Field(
        default=48.0, gt=0, description="Model older than this (hours) -> warning_stale."
    )
    max_attribute_columns: int = Field(
        default=200,
        gt=0,
        description="Distinct attribute names one tenant may store; a new name past it is "
        "dropped from the lead (counted in leadops_attributes_dropped_total).",
    )
    parity_probe_rows: int = Field(
        default=256, gt=0, description="Rows checked against xgboost at load time (1e-6)."
    )
    experiment: Experiment | None = Field(
        default=None,
        description="The A/B experiment as JSON (spec.experiment's name, unit and variants; "
        "`winner` once concluded); "
        "a malformed one stops the scorer at start.",
    )
    variant_models: dict[str, VariantModelFile] = Field(
        default_factory=dict,
        description="The model files of the experiment's model variants, as JSON: "
        '{"VERSION": {"path": ..., "digest": "sha256:..."}}.',
    )

    previous_model: VariantModelFile | None = Field(
        default=None,
        description="The model file of the version the serving one replaced, as JSON "
        '{"path": ..., "digest": "sha256:..."}: scored in shadow for the matured-AUC guard.',
    )
    matured_auc: GuardConfig | None = Field(
        default=None,
        description="The matured-AUC guard of this rollout as JSON (servingVersion, "
        "previousVersion, since, minLeads, minConversions, maxDrop, alpha, maxDays, "
        "windowDays); needs LEADOPS_PREVIOUS_MODEL.",
    )
    matured_auc_window_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Overrides the guard's windowDays, in seconds (tests and benchmarks).",
    )
    matured_auc_max_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Overrides the guard's maxDays, in seconds (tests and benchmarks).",
    )
    matured_auc_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How often the guard's verdict is recomputed from the store, at most.",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.auc_critical > self.auc_warning:
            raise ValueError("auc_critical must not exceed auc_warning")
        if self.durability is Durability.SPOOLED and self.spool_dir is None:
            raise ValueError("spooled durability needs a spool directory (LEADOPS_SPOOL_DIR)")
        self.env_ingest_keys()  # a malformed entry is a bad setting at start
        for problem in self.retention().problems():
            raise ValueError(problem)
        if self.experiment is not None:
            for version in self.experiment.model_versions():
                if version not in self.variant_models:
                    raise ValueError(
                        f"experiment variant modelVersion {version} has no file in "
                        "LEADOPS_VARIANT_MODELS"
                    )
        if self.matured_auc is not None and self.previous_model is None:
            raise ValueError("LEADOPS_MATURED_AUC needs LEADOPS_PREVIOUS_MODEL")
        return self

    def retention(self) -> retention.Retention:
        """How long Redis keeps a lead, and a lead with an outcome."""
        lead = self.retention_seconds
        outcome = self.outcome_retention_seconds
        return retention.Retention(
            lead_seconds=self.retention_days * retention.DAY_SECONDS if lead is None else lead,
            outcome_seconds=(
                self.outcome_retention_days * retention.DAY_SECONDS if outcome is None else outcome
            ),
        )

    def env_ingest_keys(self) -> tuple[tuple[str, bytes], ...]:
        """(tenant, key) pairs from LEADOPS_INGEST_KEYS (the file's are read by auth.IngestKeys)."""
        raw = self.ingest_keys.get_secret_value() if self.ingest_keys is not None else ""
        return auth.parse_ingest_keys(raw, where="LEADOPS_INGEST_KEYS")

    def redis_url_value(self) -> str | None:
        """The Redis URL, from the value or the file; None when neither is set."""
        if self.redis_url is not None:
            return self.redis_url.get_secret_value()
        if self.redis_url_file is not None:
            return read_secret_file(self.redis_url_file, variable="LEADOPS_REDIS_URL_FILE")
        return None

    def verify_key_material(self) -> bytes | None:
        """The signature verify key's bytes, from the value or the file; None when unset."""
        if self.verify_key is not None:
            return self.verify_key.get_secret_value().encode()
        if self.verify_key_file is not None:
            return self.verify_key_file.read_bytes()
        return None

    def env_api_keys(self) -> tuple[str, ...]:
        """Keys from LEADOPS_API_KEYS (the file's keys are read by auth.KeyRing)."""
        raw = self.api_keys.get_secret_value() if self.api_keys is not None else ""
        return auth.parse_keys(raw)
