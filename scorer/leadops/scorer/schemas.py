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
    score: float | None = Field(
        ge=0,
        le=1,
        description="Conversion probability; null while no model is loaded (cold start: the "
        "lead is stored unscored and its outcome still counts for training).",
    )
    model_version: int | None = Field(description="Version that scored it; null unscored.")
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
    model_version: int | None = Field(
        description="The model this variant serves; null: the serving model."
    )
    leads: int


class ExperimentStatus(BaseModel):
    """GET /ops/experiment: the running experiment and this replica's live counts."""

    running: bool
    name: str | None
    unit: str | None
    invalid: str | None = Field(
        default=None,
        description="Why the configured experiment does not run (a variant model refused); "
        "the serving model answers every lead.",
    )
    winner: str | None = Field(
        default=None,
        description="The variant that won (the experiment concluded): every lead is answered "
        "with its flags and nothing is bucketed.",
    )
    since: float = Field(description="Unix time the counts started (this process's start).")
    variants: list[ExperimentVariantCounts]


class GuardrailVariantCounts(BaseModel):
    name: str
    answers: int = Field(description="Leads of this variant answered 200, every replica.")
    failures: int = Field(description="Leads of this variant whose scoring raised (500).")
    answer_seconds: list[int] = Field(
        description="Answers per answer-time bucket (not cumulative), one per bound in "
        "`bounds` and a last one above them all."
    )


class ExperimentGuardrailCounts(BaseModel):
    """GET /ops/experiment/guardrails: the running experiment's counts over every replica."""

    experiment: str | None = Field(description="The running experiment; null: none runs.")
    bounds: list[float] = Field(description="Answer-time bucket upper bounds, in seconds.")
    variants: list[GuardrailVariantCounts]


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


class ErasedParts(BaseModel):
    record: bool
    chat_memory: bool
    contact: bool
    follow_ups: int = Field(description="Scheduled follow-ups cancelled.")


class EraseResponse(BaseModel):
    """What this call erased; a second call erases nothing (all false, 0) and is still 200."""

    ok: Literal[True] = True
    lead_id: str
    erased: ErasedParts


class FollowUpQueue(BaseModel):
    scheduled: int = Field(description="Follow-ups waiting for their time (fu:scheduled).")
    due: int = Field(description="Due follow-ups no worker has read yet (stream lag).")
    in_flight: int = Field(description="Read by a worker, not yet settled (pending entries).")
    dead_lettered: int = Field(description="Entries in the dead-letter stream (fu:dlq).")


class ChannelStats(BaseModel):
    counts: dict[str, int] = Field(
        description="Events by outcome (sent, delivered, failed, bounced, opened, clicked, "
        "replied, suppressed, deferred, retried, dead_lettered, expired, ...)."
    )
    rates: dict[str, float | None] = Field(
        description="delivery, failure, bounce and reply rates of sent; open and click rates "
        "of delivered; null before the first send."
    )


class FollowUpsStatus(BaseModel):
    queue: FollowUpQueue
    tenants: dict[str, dict[str, ChannelStats]] = Field(
        description="Tenant -> channel (sms, whatsapp, email) -> counts and rates."
    )


class ModelStatus(BaseModel):
    """Exactly the operations guide's `/ops/model-status` fields; with `?estimate=true`
    also the estimated AUC (the route leaves fields that were not set out of the answer)."""

    loaded: bool
    version: int | None
    version_date: str | None
    auc: float | None
    n_train: int | None
    load_time: float | None
    age_hours: float | None
    drift_score: float | None
    health: Health
    estimated_auc: float | None = Field(
        default=None,
        description="AUC expected from the serving model's recent leads before their outcomes "
        "arrive (its calibration map applied to their scores); null: no map, or too few leads.",
    )
    estimated_auc_leads: int | None = Field(
        default=None, description="Recent scored leads the estimate rests on (0: none)."
    )


class MaturedAuc(BaseModel):
    """The matured-AUC guard: serving vs previous version on the same matured leads."""

    state: Literal["Off", "Collecting", "Drop", "NoDrop", "Inconclusive", "Expired"] = Field(
        description="Off: no guard (or its previous model was refused: `error`); Collecting: "
        "fewer matured leads or conversions than the minimums; Drop: the interval's upper "
        "bound of serving - previous is below -max_drop; NoDrop: it is not; Inconclusive: the "
        "matured leads hold one class only; Expired: max_days passed with too few leads."
    )
    serving_version: int | None = None
    previous_version: int | None = None
    shadowing: bool = Field(
        default=False, description="Leads are scored by the previous version too, now."
    )
    leads: int = Field(default=0, description="Matured leads the verdict rests on (so far).")
    conversions: int = 0
    min_leads: int | None = None
    min_conversions: int | None = None
    serving_auc: float | None = None
    previous_auc: float | None = None
    difference: float | None = Field(default=None, description="serving_auc - previous_auc.")
    ci_low: float | None = None
    ci_high: float | None = None
    alpha: float | None = Field(default=None, description="The interval is two-sided 1 - alpha.")
    max_drop: float | None = None
    error: str = ""


class ReloadAccepted(BaseModel):
    ok: Literal[True] = True
    version: int
    auc: float
    n_train: int
    previous_version: int | None
    load_time: float
    # True when the other replicas were told to load it too (Redis; docs/operations.md).
    announced: bool = False


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
