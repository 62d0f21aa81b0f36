"""Request and response bodies of the scorer's HTTP API (the operations guide's fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from leadops.contract.artifact import Metrics as ArtifactMetrics
from leadops.contract.artifact import TrainingInfo
from leadops.contract.card import ModelCard
from leadops.scorer.health import Health

# Lead ids are server-made (32 hex digits); anything else is refused before touching Redis.
LeadId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
MAX_MESSAGE = 10_000


class ExperimentAnswer(BaseModel):
    """The lead's experiment variant and the flags the calling app applies."""

    name: str
    variant: str
    flags: dict[str, str]


class ScoreResponse(BaseModel):
    lead_id: str
    score: float = Field(ge=0, le=1)
    model_version: int
    health: Health
    stored: Literal[True, "spooled", False] = Field(
        description='true: in Redis; "spooled": in the local spool, replayed to Redis once it is '
        "back; false: queued only (bestEffort durability), not yet stored."
    )
    experiment: ExperimentAnswer | None = Field(
        default=None, description="Present only while an experiment runs."
    )


class NotStoredBody(BaseModel):
    """A 503 of POST /v1/lead: nothing was stored; retry (Retry-After says when)."""

    detail: str
    stored: Literal[False] = False


class ExperimentVariantCounts(BaseModel):
    name: str
    weight: int
    flags: dict[str, str]
    leads: int


class ExperimentStatus(BaseModel):
    """GET /ops/experiment: the running experiment and this replica's live counts."""

    running: bool
    name: str | None
    unit: str | None
    since: float = Field(description="Unix time the counts started (this process's start).")
    variants: list[ExperimentVariantCounts]


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: LeadId
    converted: bool


class OutcomeResponse(BaseModel):
    ok: Literal[True] = True
    lead_id: str
    converted: bool


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE)]


class MessageResponse(BaseModel):
    ok: Literal[True] = True
    lead_id: str
    # How many messages the chat memory holds now is not returned: that is a read of lead data.
    redacted: bool


class ModelStatus(BaseModel):
    """Exactly the operations guide's `/ops/model-status` fields."""

    loaded: bool
    version: int | None
    version_date: str | None
    auc: float | None
    n_train: int | None
    load_time: float | None
    age_hours: float | None
    drift_score: float | None
    health: Health


class ReloadAccepted(BaseModel):
    ok: Literal[True] = True
    version: int
    auc: float
    n_train: int
    previous_version: int | None
    load_time: float


class ReloadRejected(BaseModel):
    """The guide's rejection body; `auc`/`min_auc` only for the AUC gate, `reason` always."""

    model_config = ConfigDict(extra="allow")

    ok: Literal[False] = False
    error: str
    reason: str
    rejected: Literal[True] = True
    auc: float | None = None
    min_auc: float | None = None


class SignatureInfo(BaseModel):
    status: Literal["verified", "unsigned", "not_checked"]
    algorithm: str | None = None
    key_id: str | None = None


class Staleness(BaseModel):
    age_hours: float
    stale_after_hours: float
    stale: bool


class ModelCardResponse(BaseModel):
    """The artifact's card plus what the scorer knows: digest/signature checks and staleness."""

    version: int
    version_date: str
    created_at: datetime
    training_window: str
    training: TrainingInfo
    metrics: ArtifactMetrics
    card: ModelCard
    digest: str
    digest_verified: bool
    signature: SignatureInfo
    staleness: Staleness


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    health: Health
    model_version: int | None
    store: Literal["redis", "memory"]
    store_ok: bool


class ErrorBody(BaseModel):
    detail: str
