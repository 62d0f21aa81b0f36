"""/v1: score a lead, record its outcome, add chat messages (redacted before storing)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status

from leadops import pii
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, store
from leadops.scorer.deps import ModelDep, StateDep, get_state

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["score"])

STORE_DOWN = "lead store unavailable; nothing was recorded, retry later"
UNKNOWN_LEAD = "unknown lead_id"


@router.post("/lead", response_model=schemas.ScoreResponse)
async def score_lead(lead: Lead, request: Request, model: ModelDep) -> schemas.ScoreResponse:
    state = get_state(request)  # no dependency: this is the hot path
    started = time.perf_counter()
    try:
        row = lead_to_row(lead, redact=pii.redact)
        score, vector = model.score_row(row)
    except Exception:
        state.error = True
        logger.exception("Scoring failed with model version %d", model.version)
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "scoring failed") from None
    m = state.metrics
    m.scoring_seconds.observe(time.perf_counter() - started)
    m.scores.observe(score)
    model.drift.add(vector)

    lead_id = uuid.uuid4().hex
    chat_id = lead.chat_id or lead_id
    record = row | {
        "score": repr(score),
        "model_version": str(model.version),
        "chat_id": chat_id,
    }
    state.writer.submit(
        store.LeadWrite(
            lead_id=lead_id,
            record=record,
            columns=list(row),
            memory=store.memory_key(lead.tenant, chat_id),
            # `details` in the row is already redacted by the shared PII detector.
            message=row["details"] or None,
        )
    )
    return schemas.ScoreResponse(
        lead_id=lead_id, score=score, model_version=model.version, health=state.health_now()
    )


@router.post(
    "/outcome",
    response_model=schemas.OutcomeResponse,
    responses={404: {"model": schemas.ErrorBody}, 503: {"model": schemas.ErrorBody}},
)
async def record_outcome(body: schemas.OutcomeRequest, state: StateDep) -> schemas.OutcomeResponse:
    await state.writer.flushed(body.lead_id)
    try:
        found = await state.store.record_outcome(
            body.lead_id, converted=body.converted, at=time.time()
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
    responses={404: {"model": schemas.ErrorBody}, 503: {"model": schemas.ErrorBody}},
)
async def add_message(
    lead_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    body: schemas.MessageRequest,
    state: StateDep,
) -> schemas.MessageResponse:
    await state.writer.flushed(lead_id)
    text = pii.redact(body.text)
    try:
        memory = await state.store.lead_memory_key(lead_id)
        if memory is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, UNKNOWN_LEAD)
        await state.store.append_message(memory, text)
    except store.StoreUnavailable as exc:
        state.metrics.records_dropped.labels(kind="message").inc()
        logger.error("Message not recorded: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, STORE_DOWN) from None
    return schemas.MessageResponse(lead_id=lead_id, redacted=text != body.text)
