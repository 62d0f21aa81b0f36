"""/v1: score a lead, record its outcome, add chat messages (redacted before storing)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status

from leadops import pii
from leadops.contract.lead import Lead
from leadops.scorer import schemas, scoring, store, tenancy
from leadops.scorer.deps import ModelDep, StateDep, TenantDep

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["score"])

STORE_DOWN = "lead store unavailable; nothing was recorded, retry later"
UNKNOWN_LEAD = "unknown lead_id"
JSON = "application/json"


# Ingest key missing or wrong (401), a body naming another tenant (403), keys file broken (503).
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody},
    403: {"model": schemas.ErrorBody},
    503: {"model": schemas.ErrorBody},
}


@router.post("/lead", response_model=schemas.ScoreResponse, responses=_REFUSALS)
async def score_lead(lead: Lead, state: StateDep, model: ModelDep, tenant: TenantDep) -> Response:
    """Score a lead. As served, most leads are answered by the ASGI fast path (fastpath)
    with the same scoring code; this route answers the rest (and documents the schema)."""
    lead = tenancy.lead_of(lead, tenant, open_mode=state.ingest_keys.open)
    # Serialised once in answer_lead: returning the model would make FastAPI validate it a
    # second time against response_model (which still documents it).
    return Response(scoring.answer_lead(lead, state, model), media_type=JSON)


@router.post(
    "/outcome",
    response_model=schemas.OutcomeResponse,
    responses={**_REFUSALS, 404: {"model": schemas.ErrorBody}},
)
async def record_outcome(
    body: schemas.OutcomeRequest, state: StateDep, tenant: TenantDep
) -> schemas.OutcomeResponse:
    await state.writer.flushed(body.lead_id)
    try:
        # Another tenant's lead is "unknown" (404): its existence is not revealed.
        found = await state.store.record_outcome(
            body.lead_id, converted=body.converted, at=time.time(), tenant=tenant
        )
    except store.StoreUnavailable as exc:
        state.metrics.records_dropped.labels(kind="outcome").inc()
        logger.error("Outcome not recorded: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, STORE_DOWN) from None
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN_LEAD)
    return schemas.OutcomeResponse(lead_id=body.lead_id, converted=body.converted)


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
