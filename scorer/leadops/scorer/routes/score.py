"""/v1: score a lead, record its outcome, add chat messages (redacted before storing)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Response, status

from leadops import pii
from leadops.contract.lead import Lead
from leadops.scorer import erasure, schemas, scoring, store, tenancy
from leadops.scorer.deps import ColdStartModelDep, StateDep, TenantDep
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["score"])

STORE_DOWN = "lead store unavailable; nothing was recorded, retry later"
UNKNOWN_LEAD = "unknown lead_id"
SPOOLED = "lead spooled while the store was down, not replayed yet; retry later"
JSON = "application/json"


# Ingest key missing or wrong (401), a body naming another tenant (403), keys file broken (503).
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody},
    403: {"model": schemas.ErrorBody},
    503: {"model": schemas.ErrorBody},
}


@router.post(
    "/lead",
    response_model=schemas.ScoreResponse,
    # 503: nothing stored (NotStoredBody), or the ingest keys file is unreadable (ErrorBody).
    responses={**_REFUSALS, 503: {"model": schemas.NotStoredBody | schemas.ErrorBody}},
)
async def score_lead(
    lead: Lead,
    state: StateDep,
    model: ColdStartModelDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=scoring.IDEMPOTENCY_KEY.pattern,
            description="A random value (e.g. a UUID) the caller reuses when it retries the "
            "same lead: every retry gets the same lead_id and the lead is stored once.",
        ),
    ] = None,
) -> Response:
    """Score a lead. As served, most leads are answered by the ASGI fast path (fastpath)
    with the same scoring code; this route answers the rest (and documents the schema)."""
    lead = tenancy.lead_of(lead, tenant, open_mode=state.ingest_keys.open)
    try:
        answer = await scoring.answer_lead(lead, state, model, idempotency_key=idempotency_key)
    except scoring.NotStored:
        return scoring.not_stored_response()
    # Serialised once in answer_lead: returning the model would make FastAPI validate it a
    # second time against response_model (which still documents it).
    return Response(answer, media_type=JSON)


def _not_yet_replayed(state: ScorerState, lead_id: str) -> None:
    """A lead answered "spooled" is not in the store until replayed: 503, not 404."""
    if lead_id in state.writer.spooled_ids:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            SPOOLED,
            headers={"Retry-After": str(scoring.RETRY_AFTER_SECONDS)},
        )


@router.post(
    "/outcome",
    response_model=schemas.OutcomeResponse,
    responses={**_REFUSALS, 404: {"model": schemas.ErrorBody}},
)
async def record_outcome(
    body: schemas.OutcomeRequest, state: StateDep, tenant: TenantDep
) -> schemas.OutcomeResponse:
    await state.writer.flushed(body.lead_id)
    _not_yet_replayed(state, body.lead_id)
    try:
        # Another tenant's lead is "unknown" (404): its existence is not revealed.
        found = await state.store.record_outcome(
            body.lead_id, converted=body.converted, at=time.time(), tenant=tenant
        )
    except store.StoreUnavailable as exc:
        state.metrics.records_dropped.labels(kind="outcome").inc()
        logger.error("Outcome not recorded: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, STORE_DOWN) from None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN_LEAD)
    _count_outcome(state, found, converted=body.converted)
    return schemas.OutcomeResponse(lead_id=body.lead_id, converted=body.converted)


def _count_outcome(state: ScorerState, outcome: store.Outcome, *, converted: bool) -> None:
    """Per-variant outcome and conversion counts, for a lead of the running experiment."""
    configured = state.experiment
    if configured is None or not outcome.variant:
        return
    experiment = configured.experiment
    if outcome.experiment != experiment.name:
        return  # a lead of an earlier experiment
    if not any(v.name == outcome.variant for v in experiment.variants):
        return  # labels only ever name the configured variants
    m = state.metrics
    m.experiment_outcomes.labels(experiment.name, outcome.variant).inc()
    if converted:
        m.experiment_conversions.labels(experiment.name, outcome.variant).inc()


@router.post(
    "/lead/{lead_id}/messages",
    response_model=schemas.MessageResponse,
    responses={**_REFUSALS, 404: {"model": schemas.ErrorBody}},
)
async def add_message(
    lead_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    body: schemas.MessageRequest,
    state: StateDep,
    tenant: TenantDep,
) -> schemas.MessageResponse:
    await state.writer.flushed(lead_id)
    _not_yet_replayed(state, lead_id)
    text = pii.redact(body.text)
    try:
        memory = await state.store.lead_memory_key(lead_id, tenant=tenant)
        if memory is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN_LEAD)
        await state.store.append_message(memory, text)
    except store.StoreUnavailable as exc:
        state.metrics.records_dropped.labels(kind="message").inc()
        logger.error("Message not recorded: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, STORE_DOWN) from None
    return schemas.MessageResponse(lead_id=lead_id, redacted=text != body.text)


@router.delete(
    "/lead/{lead_id}",
    response_model=schemas.EraseResponse,
    responses={**_REFUSALS},
)
async def erase_lead(
    lead_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    state: StateDep,
    tenant: TenantDep,
) -> schemas.EraseResponse:
    """Right to erasure: the caller's tenant's lead record, chat memory, sealed contact and
    scheduled follow-ups. Idempotent; another tenant's lead is left alone and not revealed."""
    await state.writer.flushed(lead_id)
    _not_yet_replayed(state, lead_id)
    try:
        if isinstance(state.store, store.RedisStore):
            done = await erasure.erase_lead(state.store.client, lead_id, tenant=tenant)
            parts = schemas.ErasedParts(
                record=done.record,
                chat_memory=done.chat_memory,
                contact=done.contact,
                follow_ups=done.follow_ups,
            )
        else:
            if not isinstance(state.store, store.MemoryStore):
                raise TypeError(f"unknown store {type(state.store).__name__}")
            record, memory = await state.store.erase_lead(lead_id, tenant=tenant)
            parts = schemas.ErasedParts(
                record=record, chat_memory=memory, contact=False, follow_ups=0
            )
    except store.StoreUnavailable as exc:
        logger.error("Lead not erased: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, STORE_DOWN) from None
    state.metrics.erasures.labels(found=str(parts.record).lower()).inc()
    return schemas.EraseResponse(lead_id=lead_id, erased=parts)
