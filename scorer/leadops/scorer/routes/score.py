"""/v1: score a lead, record its outcome, add chat messages (redacted before storing)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request, Response, status
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadops import pii
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, store, tenancy
from leadops.scorer.deps import ModelDep, StateDep, TenantDep, get_model, get_state
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["score"])

STORE_DOWN = "lead store unavailable; nothing was recorded, retry later"
UNKNOWN_LEAD = "unknown lead_id"
SCORING_FAILED = "scoring failed"
JSON = "application/json"
JSON_BYTES = JSON.encode()


class LeadIds:
    """Random 128-bit lead ids (32 hex digits) from os.urandom, read 4 KiB at a time.

    Ids must be unguessable (POST /v1/outcome takes one), so they come from the OS CSPRNG;
    one read per 256 leads instead of a uuid4 object and a syscall per lead.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at == len(self._hex):
            self._hex, at = os.urandom(16 * self.BATCH).hex(), 0
        self._at = at + 32
        return self._hex[at : at + 32]


_lead_ids = LeadIds()

# Ingest key missing or wrong (401), a body naming another tenant (403), keys file broken (503).
_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody},
    403: {"model": schemas.ErrorBody},
    503: {"model": schemas.ErrorBody},
}


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ScoreLeadRoute(APIRoute):
    """POST /v1/lead without FastAPI's per-request dependency solving, when the full app answers.

    As served, leads come through the ASGI fast path (leadops.scorer.fastpath) ahead of this
    route; it answers here when that path is off (ScorerAPI.lead_path None).

    A body sent as plain `application/json` that parses and validates as a Lead goes straight
    to `score_lead`: exactly what FastAPI would do with it (json.loads, the same Lead schema),
    minus its generic per-request machinery. Anything else (other content types, empty or bad
    JSON, an invalid lead) takes FastAPI's own handler, so every error body, the 413, the 503
    without a model and the OpenAPI schema stay FastAPI's, unchanged.
    """

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()

        async def handler(request: Request) -> Response:
            # Dependency overrides (tests) only take effect through FastAPI's handler.
            overridden = bool(request.app.dependency_overrides)
            lead = None if overridden else await _plain_json_lead(request)
            if lead is None:
                return await fastapi_handler(request)
            state = get_state(request)
            tenant = tenancy.caller_tenant(state.ingest_keys, request.headers.get(tenancy.HEADER))
            return await score_lead(lead, request, await get_model(request), tenant)

        return handler


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    # The first one, as Starlette's request.headers.get() (which FastAPI reads) would find.
    for name, value in headers:
        if name == b"content-type":
            return value
    return None


async def _plain_json_lead(request: Request) -> Lead | None:
    """The body as a Lead when it is plain valid JSON of a valid lead, else None."""
    if _content_type(request.scope["headers"]) != JSON_BYTES:
        return None
    try:
        body = await request.body()
        return Lead.model_validate(json.loads(body)) if body else None
    except StarletteHTTPException:
        raise  # the body limit's 413 (RequestGuard), exactly as FastAPI lets it through
    except Exception:  # bad JSON, bad lead, nesting too deep, ...: FastAPI's handler answers
        return None


async def score_lead(lead: Lead, request: Request, model: ModelDep, tenant: TenantDep) -> Response:
    # Validated once in answer_lead and serialised straight to JSON: returning the model would
    # make FastAPI validate it a second time against response_model (which still documents it).
    state = get_state(request)
    lead = tenancy.lead_of(lead, tenant, open_mode=state.ingest_keys.open)
    return Response(answer_lead(lead, state, model), media_type=JSON)


def answer_lead(lead: Lead, state: ScorerState, model: ServingModel) -> bytes:
    """Score the lead, queue its record for the store, and return the JSON answer.

    Shared by the route and the ASGI fast path (leadops.scorer.fastpath): one scoring code.
    Raises HTTPException 500 "scoring failed" when the model raises.
    """
    started = time.perf_counter()
    lead = state.columns.admit(lead)  # the tenant's attribute column cap
    try:
        row = lead_to_row(lead, redact=pii.redact)
        score, vector = model.score_row(row)
    except Exception:
        state.scoring_failed.append(True)
        logger.exception("Scoring failed with model version %d", model.version)
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, SCORING_FAILED) from None
    m = state.metrics
    m.scoring_seconds.observe(time.perf_counter() - started)
    m.scores.observe(score)
    model.drift.add(vector)
    state.scoring_failed.append(False)

    lead_id = _lead_ids.next()
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
    answer = schemas.ScoreResponse(
        lead_id=lead_id, score=score, model_version=model.version, health=state.health_now()
    )
    # Bytes straight from pydantic-core: what model_dump_json() returns, minus a decode.
    return answer.__pydantic_serializer__.to_json(answer)


def add_score_lead(app: FastAPI) -> None:
    """Register POST /v1/lead on the app itself, ahead of the routers: the hot route is matched
    first and without an included router's extra matching layer (same path, tags, schema)."""
    app.router.add_api_route(
        f"{router.prefix}/lead",
        score_lead,
        methods=["POST"],
        response_model=schemas.ScoreResponse,
        responses=_REFUSALS,
        tags=list(router.tags),
        route_class_override=ScoreLeadRoute,
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
