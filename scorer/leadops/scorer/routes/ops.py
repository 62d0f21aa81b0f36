"""/ops: model status, validated hot reload, outcomes export, model card. All need an API key."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse, StreamingResponse

from leadops.contract.columns import BASE_COLUMNS, LABEL_COLUMN
from leadops.contract.csvcells import csv_line
from leadops.scorer import schemas, store
from leadops.scorer.deps import ModelDep, StateDep, require_api_key
from leadops.scorer.model import ModelRejected, load_serving_model
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

LEAD_ID = "lead_id"

router = APIRouter(prefix="/ops", tags=["ops"], dependencies=[Depends(require_api_key)])


@router.get("/model-status", response_model=schemas.ModelStatus)
async def model_status(state: StateDep) -> schemas.ModelStatus:
    model = state.model
    if model is None:
        return schemas.ModelStatus(
            loaded=False,
            version=None,
            version_date=None,
            auc=None,
            n_train=None,
            load_time=None,
            age_hours=None,
            drift_score=None,
            health=state.health_now(),
        )
    now = time.time()
    drift = model.drift.score(fresh=True)
    state.refresh_drift_metric()
    return schemas.ModelStatus(
        loaded=True,
        version=model.version,
        version_date=model.version_date,
        auc=model.auc,
        n_train=model.n_train,
        load_time=model.loaded_at,
        age_hours=round(model.age_hours(now=now), 3),
        drift_score=None if drift is None else round(drift, 4),
        health=state.health_now(now=now),
    )


@router.post(
    "/reload-model",
    response_model=schemas.ReloadAccepted,
    responses={
        422: {"model": schemas.ReloadRejected, "description": "Model rejected; old one serves"},
        503: {"model": schemas.ErrorBody, "description": "No model path configured"},
    },
)
async def reload_model(
    state: StateDep,
    min_auc: Annotated[
        float | None,
        Query(
            ge=0,
            le=1,
            description="Refuse a model whose AUC is lower (never below LEADOPS_AUC_CRITICAL).",
        ),
    ] = None,
) -> Any:
    path = state.settings.model_path
    if path is None:
        return JSONResponse(
            {"detail": "no model path configured (LEADOPS_MODEL_PATH)"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    # One reload at a time; scoring goes on with the old model while this one is checked.
    async with state.reload_lock:
        outcome = await reload_from(state, min_auc=min_auc)
    return outcome


async def reload_from(state: ScorerState, *, min_auc: float | None) -> Any:
    settings = state.settings
    path = settings.model_path
    assert path is not None
    reloads = state.metrics.reloads
    # Never below the critical threshold: a reload must not make the scorer unready by itself.
    floor = settings.auc_critical if min_auc is None else max(min_auc, settings.auc_critical)
    try:
        model = await anyio.to_thread.run_sync(
            lambda: load_serving_model(
                path,
                min_auc=floor,
                verify_keys=state.verify_keys,
                expect_digest=settings.model_digest,
                drift_window=settings.drift_window,
                drift_min_samples=settings.drift_min_samples,
                probe_rows=settings.parity_probe_rows,
            )
        )
    except ModelRejected as exc:
        reloads.labels(result="rejected", reason=exc.reason).inc()
        serving = state.model.version if state.model is not None else None
        logger.warning(
            "model_reload rejected %s (%s); still serving version %s", path, exc.reason, serving
        )
        return JSONResponse(
            schemas.ReloadRejected.model_validate(exc.body()).model_dump(exclude_none=True),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    except Exception:
        reloads.labels(result="error", reason="Exception").inc()
        state.error = True
        logger.exception("model_reload failed unexpectedly for %s", path)
        return JSONResponse(
            {"ok": False, "error": "Model reload failed", "reason": "Exception", "rejected": True},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    previous = state.serve(model)
    reloads.labels(result="loaded", reason="").inc()
    logger.info(
        "model_reload loaded version %d (auc %.4f) from %s, replacing %s",
        model.version,
        model.auc,
        path,
        previous.version if previous is not None else "nothing",
    )
    return schemas.ReloadAccepted(
        version=model.version,
        auc=model.auc,
        n_train=model.n_train,
        previous_version=previous.version if previous is not None else None,
        load_time=model.loaded_at,
    )


@router.get(
    "/export/outcomes.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Leads with a known outcome"}},
)
async def export_outcomes(state: StateDep) -> StreamingResponse:
    try:
        columns = await state.store.columns()
    except store.StoreUnavailable as exc:
        logger.error("Export failed: store unavailable (%s)", exc)
        return StreamingResponse(
            iter(()), status_code=status.HTTP_503_SERVICE_UNAVAILABLE, media_type="text/csv"
        )
    attributes = sorted(set(columns) - set(BASE_COLUMNS) - store.RECORD_META)
    # lead_id first, label last: the same shape as `leadops synth` writes and training reads.
    header = [LEAD_ID, *BASE_COLUMNS, *attributes, LABEL_COLUMN]
    return StreamingResponse(
        _csv_lines(state, header),
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="outcomes.csv"'},
    )


async def _csv_lines(state: ScorerState, header: list[str]) -> AsyncIterator[str]:
    # "\n" line ends so the guide's `awk -F',' '{print $NF}'` sees the bare label; cells are
    # escaped against formula injection, which `leadops train` undoes exactly.
    lines = [csv_line(header)]
    rows = 0
    try:
        async for record in state.store.outcomes():
            lines.append(csv_line([record.get(column, "") for column in header]))
            rows += 1
            if len(lines) == 200:
                yield "".join(lines)
                lines = []
    except store.StoreUnavailable as exc:
        # The 200 and part of the file are sent: the one way left to say "incomplete" is to
        # abort the transfer (no final chunk), which every HTTP client reports as an error.
        logger.error("Export interrupted after %d rows: store unavailable (%s)", rows, exc)
        raise ExportInterrupted from None
    yield "".join(lines)


class ExportInterrupted(Exception):
    """Raised inside the export's stream so the server aborts it instead of ending it cleanly."""


@router.get(
    "/model-card",
    response_model=schemas.ModelCardResponse,
    responses={503: {"model": schemas.ErrorBody, "description": "No model loaded"}},
)
async def model_card(state: StateDep, model: ModelDep) -> schemas.ModelCardResponse:
    return model.card(now=time.time(), stale_hours=state.settings.stale_hours)
