"""/ops: model status, validated hot reload, outcomes export, model card, follow-ups. All need an
API key."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse, StreamingResponse
from redis.exceptions import RedisError

from leadops.contract.columns import BASE_COLUMNS, LABEL_COLUMN
from leadops.contract.csvcells import csv_line
from leadops.scorer import erasure, guardrails, schemas, store
from leadops.scorer.deps import ModelDep, StateDep, require_api_key
from leadops.scorer.model import ModelRejected, ServingModel, load_configured, read_artifact
from leadops.scorer.state import ScorerState
from leadops.scorer.variants import SHADOW_PREFIX, InvalidExperiment, RunningExperiment

logger = logging.getLogger(__name__)

LEAD_ID = "lead_id"
FOLLOWUPS_NEED_REDIS = "follow-ups live in Redis; this scorer runs without it"

router = APIRouter(prefix="/ops", tags=["ops"], dependencies=[Depends(require_api_key)])


@router.get("/model-status", response_model=schemas.ModelStatus, response_model_exclude_unset=True)
async def model_status(
    state: StateDep,
    estimate: Annotated[
        bool,
        Query(description="Add estimated_auc and estimated_auc_leads (what the operator reads)."),
    ] = False,
) -> schemas.ModelStatus:
    model = state.model
    # The guide's fields exactly, unless asked for the estimate too.
    extra: dict[str, Any] = {}
    if estimate:
        extra = {"estimated_auc": None, "estimated_auc_leads": 0}
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
            **extra,
        )
    now = time.time()
    drift = model.drift.score(fresh=True)
    state.refresh_drift_metric()
    found = model.estimate.estimate() if estimate else None
    if found is not None:
        extra = {"estimated_auc": round(found.auc, 4), "estimated_auc_leads": found.leads}
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
        **extra,
    )


@router.get("/matured-auc", response_model=schemas.MaturedAuc)
async def matured_auc(state: StateDep) -> schemas.MaturedAuc:
    """The matured-AUC guard's verdict (what the operator reads): serving vs previous version,
    paired on the same matured leads."""
    guard = state.guard
    if guard is None:
        return schemas.MaturedAuc(state="Off", error=state.guard_error)
    try:
        found = await guard.report(state.store)
    except store.StoreUnavailable as exc:
        logger.error("Matured-AUC verdict not computed: store unavailable (%s)", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "lead store unavailable") from None
    guard.publish(state.metrics, found)
    c = guard.config
    model = state.model
    body: dict[str, Any] = {
        "state": found.state,
        "serving_version": c.serving_version,
        "previous_version": c.previous_version,
        "shadowing": model is not None and guard.shadowing(model, now=time.time()),
        "min_leads": c.min_leads,
        "min_conversions": c.min_conversions,
        "alpha": float(c.alpha),
        "max_drop": float(c.max_drop),
    }
    v = found.verdict
    if v is not None:
        body |= {
            "leads": v.leads,
            "conversions": v.conversions,
            "serving_auc": _rounded(v.serving_auc),
            "previous_auc": _rounded(v.previous_auc),
            "difference": _rounded(v.difference),
            "ci_low": _rounded(v.ci_low),
            "ci_high": _rounded(v.ci_high),
        }
    return schemas.MaturedAuc(**body)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@router.get("/experiment", response_model=schemas.ExperimentStatus)
async def experiment_status(state: StateDep) -> schemas.ExperimentStatus:
    """The running experiment and the leads this replica bucketed into each variant."""
    configured = state.experiment
    if configured is None:
        return schemas.ExperimentStatus(
            running=False, name=None, unit=None, since=state.started_at, variants=[]
        )
    experiment = configured.experiment
    running = isinstance(configured, RunningExperiment)
    invalid = configured.message if isinstance(configured, InvalidExperiment) else None
    return schemas.ExperimentStatus(
        running=running,
        name=experiment.name,
        unit=experiment.unit,
        invalid=invalid,
        winner=experiment.winner,
        since=state.started_at,
        variants=[
            schemas.ExperimentVariantCounts(
                name=v.name,
                weight=v.weight,
                flags=dict(v.flags),
                model_version=int(v.model_version) if v.model_version else None,
                leads=_leads(state, experiment.name, v.name),
            )
            for v in experiment.variants
        ],
    )


def _leads(state: ScorerState, experiment: str, variant: str) -> int:
    """Leads this replica bucketed into the variant (none: the variant never ran here)."""
    counts = state.metrics.variant_counts.get((experiment, variant))
    return 0 if counts is None else counts.leads


@router.get(
    "/experiment/guardrails",
    response_model=schemas.ExperimentGuardrailCounts,
    responses={503: {"model": schemas.ErrorBody}},
)
async def experiment_guardrails(state: StateDep) -> schemas.ExperimentGuardrailCounts:
    """Per-variant answers, failures and answer-time histogram of the running experiment,
    summed over every replica (this one's flushed first): what the evaluation's error-rate and
    p99-latency guardrails read."""
    bounds = list(guardrails.BUCKETS)
    configured = state.experiment
    if not isinstance(configured, RunningExperiment):
        return schemas.ExperimentGuardrailCounts(experiment=None, bounds=bounds, variants=[])
    try:
        counts = await configured.guardrails.read()
    except (RedisError, OSError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"store unavailable: {type(exc).__name__}"
        ) from None
    return schemas.ExperimentGuardrailCounts(
        experiment=configured.experiment.name,
        bounds=bounds,
        variants=[
            schemas.GuardrailVariantCounts(
                name=name,
                answers=fields.get(guardrails.ANSWERS, 0),
                failures=fields.get(guardrails.FAILURES, 0),
                answer_seconds=[
                    fields.get(guardrails.bucket_field(i), 0) for i in range(len(bounds) + 1)
                ],
            )
            for name, fields in counts.items()
        ],
    )


@router.post(
    "/reload-model",
    response_model=schemas.ReloadAccepted,
    responses={
        409: {"model": schemas.ErrorBody, "description": "Several replicas and no Redis"},
        422: {"model": schemas.ReloadRejected, "description": "Model rejected; old one serves"},
        503: {"model": schemas.ErrorBody, "description": "No model path, or not announced"},
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
    settings = state.settings
    if settings.model_path is None:
        return JSONResponse(
            {"detail": "no model path configured (LEADOPS_MODEL_PATH)"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if state.announcer is None and settings.replicas > 1:
        return JSONResponse(
            {"detail": ALONE_AMONG_REPLICAS.format(replicas=settings.replicas)},
            status_code=status.HTTP_409_CONFLICT,
        )
    # One reload at a time; scoring goes on with the old model while this one is checked.
    async with state.reload_lock:
        outcome = await reload_from(state, min_auc=min_auc)
    return outcome


ALONE_AMONG_REPLICAS = (
    "this scorer runs as up to {replicas} replicas (LEADOPS_REPLICAS) without Redis, so a "
    "reload would reach this replica only and the others would serve another model; roll out "
    "the version instead (spec.modelVersion, or restart the Deployment after replacing the file)"
)
NOT_ANNOUNCED = (
    "model version {version} passed but could not be announced to the other replicas "
    "(Redis: {error}); nothing changed, still serving version {serving}"
)


async def reload_from(state: ScorerState, *, min_auc: float | None) -> Any:
    settings = state.settings
    path = settings.model_path
    assert path is not None
    reloads = state.metrics.reloads
    # Never below the critical threshold: a reload must not make the scorer unready by itself.
    floor = settings.auc_critical if min_auc is None else max(min_auc, settings.auc_critical)

    def load() -> tuple[bytes, ServingModel]:
        # Read once: the bytes validated here are the bytes the other replicas load.
        data = read_artifact(path)
        return data, load_configured(
            data,
            settings,
            min_auc=floor,
            verify_keys=state.verify_keys,
            expect_digest=settings.model_digest,
        )

    try:
        data, model = await anyio.to_thread.run_sync(load)
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
    announced = await _announce(state, model, data, floor=floor)
    if announced is not None:
        return announced
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
        announced=state.announcer is not None,
    )


async def _announce(
    state: ScorerState, model: ServingModel, data: bytes, *, floor: float
) -> JSONResponse | None:
    """Tell the other replicas before serving; None when done (or not needed), else the 503
    that keeps every replica on the old model."""
    announcer = state.announcer
    if announcer is None:
        return None
    try:
        await announcer.announce(model, data, min_auc=floor)
    except (RedisError, OSError) as exc:
        state.metrics.reloads.labels(result="error", reason="NotAnnounced").inc()
        serving = state.model.version if state.model is not None else None
        if state.settings.replicas == 1:
            logger.warning(
                "model_reload of version %d not announced (%s); one replica, serving it anyway",
                model.version,
                type(exc).__name__,
            )
            return None
        logger.error(
            "model_reload of version %d not announced (%s); still serving version %s",
            model.version,
            type(exc).__name__,
            serving,
        )
        message = NOT_ANNOUNCED.format(
            version=model.version, error=type(exc).__name__, serving=serving
        )
        return JSONResponse({"detail": message}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return None


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


REPLIED_AT = "replied_at"
EXPERIMENT_COLUMNS = (
    LEAD_ID,
    "variant",
    "model_version",
    "scored_at",
    "outcome_at",
    LABEL_COLUMN,
)


@router.get(
    "/export/experiment.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every lead of the experiment"}},
)
async def export_experiment(state: StateDep) -> StreamingResponse:
    """Every stored lead of the configured experiment, matured or not, with or without an
    outcome: variant, served model version, scored_at, outcome_at, converted (empty: none
    recorded) and every variant's model score (`shadow_<variant>`), for
    `leadops experiment evaluate`. No lead contents. Without an experiment: the header only."""
    configured = state.experiment
    variants = configured.experiment.variants if configured is not None else []
    # With follow-ups: when each lead first replied to one (a reply as the primary metric).
    replies = [REPLIED_AT] if state.followups is not None else []
    header = [*EXPERIMENT_COLUMNS, *replies, *(SHADOW_PREFIX + v.name for v in variants)]
    lines = (
        _experiment_lines(state, configured.experiment.name, header)
        if configured is not None
        else _header_only(header)
    )
    return StreamingResponse(
        lines,
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="experiment.csv"'},
    )


async def _header_only(header: list[str]) -> AsyncIterator[str]:
    yield csv_line(header)


async def _experiment_lines(state: ScorerState, name: str, header: list[str]) -> AsyncIterator[str]:
    yield csv_line(header)
    rows = 0
    chunk: list[dict[str, str]] = []
    try:
        async for record in state.store.experiment_leads():
            if record.get("experiment") != name:
                continue  # a lead of an earlier experiment
            chunk.append(record)
            rows += 1
            if len(chunk) == 200:
                yield await _experiment_chunk(state, chunk, header)
                chunk = []
        yield await _experiment_chunk(state, chunk, header)
    except store.StoreUnavailable as exc:
        logger.error(
            "Experiment export interrupted after %d rows: store unavailable (%s)", rows, exc
        )
        raise ExportInterrupted from None


async def _experiment_chunk(
    state: ScorerState, records: list[dict[str, str]], header: list[str]
) -> str:
    if REPLIED_AT in header and records and isinstance(state.store, store.RedisStore):
        replied = await erasure.replied_at(
            state.store.client, [(r.get("tenant", ""), r.get(LEAD_ID, "")) for r in records]
        )
        records = [r | {REPLIED_AT: at} for r, at in zip(records, replied, strict=True)]
    return "".join(csv_line([r.get(column, "") for column in header]) for r in records)


@router.get(
    "/model-card",
    response_model=schemas.ModelCardResponse,
    responses={503: {"model": schemas.ErrorBody, "description": "No model loaded"}},
)
async def model_card(state: StateDep, model: ModelDep) -> schemas.ModelCardResponse:
    return model.card(now=time.time(), stale_hours=state.settings.stale_hours)


@router.get(
    "/followups",
    response_model=schemas.FollowUpsStatus,
    responses={503: {"model": schemas.ErrorBody}},
)
async def followups_status(state: StateDep) -> schemas.FollowUpsStatus:
    """Follow-up queue depth, dead letters and per-tenant, per-channel counts and rates."""
    if not isinstance(state.store, store.RedisStore):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, FOLLOWUPS_NEED_REDIS)
    try:
        found = await erasure.followups_status(state.store.client)
    except store.StoreUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"store unavailable: {exc}"
        ) from None
    return schemas.FollowUpsStatus.model_validate(found)
