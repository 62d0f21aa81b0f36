"""The scorer's configuration: one class, read from `LEADOPS_*` environment variables.

Every field is documented in README.md ("Scorer settings"); keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadops.scorer import auth


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
    redis_timeout_seconds: float = Field(
        default=0.5, gt=0, description="Per-operation Redis timeout; past it the record is dropped."
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

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.auc_critical > self.auc_warning:
            raise ValueError("auc_critical must not exceed auc_warning")
        self.env_ingest_keys()  # a malformed entry is a bad setting at start
        return self

    def env_ingest_keys(self) -> tuple[tuple[str, bytes], ...]:
        """(tenant, key) pairs from LEADOPS_INGEST_KEYS (the file's are read by auth.IngestKeys)."""
        raw = self.ingest_keys.get_secret_value() if self.ingest_keys is not None else ""
        return auth.parse_ingest_keys(raw, where="LEADOPS_INGEST_KEYS")

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
