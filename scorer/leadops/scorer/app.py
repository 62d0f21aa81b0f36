"""The scorer application: `create_app(settings)`; the model is loaded in the lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from leadops import logsafety, pii
from leadops.contract import artifact as contract_artifact
from leadops.pii import chat_keys
from leadops.redis_mode import RedisMode
from leadops.scorer import (
    cluster_store,
    fastpath,
    followup_writer,
    guardrails,
    health,
    matured,
    metrics,
    replicas,
    retention,
    spool,
    store,
    tenancy,
    variants,
    writer,
)
from leadops.scorer.auth import IngestKeys, KeyRing, KeysFileUnreadable
from leadops.scorer.columns import AttributeColumns
from leadops.scorer.middleware import RequestGuard, RequestMetrics
from leadops.scorer.model import ModelRejected, load_configured
from leadops.scorer.routes import health as health_routes
from leadops.scorer.routes import ops as ops_routes
from leadops.scorer.routes import score as score_routes
from leadops.scorer.settings import Settings
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

WRITE_QUEUE_CAPACITY = 10_000


def _make_store(settings: Settings) -> store.LeadStore:
    # Read the key salt and the PII regions now: a bad value stops the start, not a lead.
    pii.default_detector()
    if chat_keys.process_salt() is None:
        logger.warning(
            "No key salt (%s): chat key names are hashed with a public key, so a guessed "
            "chat_id can be confirmed; use this for dev and demos only",
            chat_keys.SALT_FILE_ENV,
        )
    redis_url = settings.redis_url_value()
    if redis_url is None:
        logger.warning(
            "No Redis URL (LEADOPS_REDIS_URL / LEADOPS_REDIS_URL_FILE / REDIS_URL): leads and "
            "outcomes are kept in process memory and lost on restart; use this for dev and "
            "demos only"
        )
        return store.MemoryStore()
    if settings.redis_mode is RedisMode.CLUSTER:
        return cluster_store.ClusterStore(
            redis_url, timeout=settings.redis_timeout_seconds, keep=settings.retention()
        )
    return store.RedisStore(
        redis_url, timeout=settings.redis_timeout_seconds, keep=settings.retention()
    )


def _trimmer(settings: Settings, lead_store: store.LeadStore) -> retention.Trimmer | None:
    """The export indexes' trim, where records expire."""
    keep = settings.retention()
    if not keep.expires or not isinstance(lead_store, store.RedisStore):
        return None
    return retention.Trimmer(lead_store, every=keep.trim_every_seconds)


def _guardrail_sink(lead_store: store.LeadStore) -> guardrails.Sink:
    """Where every replica's experiment guardrail counts add up: beside the leads."""
    if isinstance(lead_store, store.RedisStore):
        return guardrails.RedisSink(lead_store.client)
    return guardrails.MemorySink()


def _followups(
    settings: Settings, lead_store: store.LeadStore, m: metrics.Metrics
) -> followup_writer.FollowUpWriter | None:
    """The follow-up writer when LEADOPS_FOLLOWUPS_CONFIG is set; a bad config, a missing vault
    key file or a store the worker cannot share stops the start."""
    if settings.followups_config is None:
        return None
    if not isinstance(lead_store, store.RedisStore) or isinstance(
        lead_store, cluster_store.ClusterStore
    ):
        raise RuntimeError(
            "LEADOPS_FOLLOWUPS_CONFIG needs a standalone Redis (LEADOPS_REDIS_URL), the one the "
            "follow-ups worker reads"
        )
    rules = followup_writer.FollowUpRules.load(
        settings.followups_config, salt=chat_keys.process_salt()
    )
    logger.info("Scheduling follow-ups for %d tenant(s)", len(rules.config.tenants))
    return followup_writer.FollowUpWriter(
        lead_store.client, rules, m=m, capacity=settings.followups_queue_capacity
    )


def _verify_keys(settings: Settings) -> contract_artifact.VerifyKeys | None:
    material = settings.verify_key_material()
    return None if material is None else contract_artifact.VerifyKeys.from_bytes(material)


def _load_at_start(state: ScorerState) -> None:
    settings = state.settings
    if settings.model_path is None:
        logger.warning("No model path (LEADOPS_MODEL_PATH): serving no_model until a reload")
        return
    try:
        model = load_configured(
            settings.model_path,
            settings,
            verify_keys=state.verify_keys,
            expect_digest=settings.model_digest,
        )
    except ModelRejected as exc:
        state.metrics.reloads.labels(result="rejected", reason=exc.reason).inc()
        logger.error("Model %s not loaded at start: %s", settings.model_path, exc)
        return
    state.serve(model)
    state.metrics.reloads.labels(result="loaded", reason="").inc()
    logger.info("Serving model version %d (auc %.4f)", model.version, model.auc)


async def _join_replicas(state: ScorerState) -> replicas.Announcer | None:
    """With Redis: the announcer, after serving the group's last announced reload (a replica
    that starts after a reload serves what the others serve)."""
    settings = state.settings
    url = settings.redis_url_value()
    if url is None:
        return None
    announcer = replicas.Announcer(
        url,
        group=settings.replica_group,
        timeout=settings.redis_timeout_seconds,
        poll_seconds=settings.follow_poll_seconds,
        cluster=settings.redis_mode is RedisMode.CLUSTER,
    )
    try:
        await announcer.converge(state)
    except (RedisError, OSError) as exc:
        # Followed later by the background task; the file's model serves meanwhile.
        logger.warning("Cannot read the reload announcement at start (%s)", type(exc).__name__)
    return announcer


def _warn_about_keys(state: ScorerState) -> None:
    try:
        ops_keys = state.keyring.configured()
    except KeysFileUnreadable:
        ops_keys = True  # logged by the keyring; /ops answers 503 until the file is fixed
    if not ops_keys:
        if state.settings.dev_open_ops:
            logger.warning("No API key configured and LEADOPS_DEV_OPEN_OPS set: /ops is OPEN")
        else:
            logger.warning("No API key configured: /ops/* answers 503 until one is")
    if state.ingest_keys.open:
        logger.warning(
            "No ingest keys (LEADOPS_INGEST_KEYS / LEADOPS_INGEST_KEYS_FILE): /v1 needs no key "
            "and serves tenant %r only",
            tenancy.OPEN_TENANT,
        )


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body without the refused values: each error's `type`, `loc` and `msg`.

    The submitted value (`input`) and the error context are left out: they may be a lead's
    PII, an API key sent in a header, or text JSON cannot write (a lone surrogate, NaN), which
    would turn the 422 into a 500 whose traceback quotes it. The field is named by `loc`.
    """
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "type": error.get("type", "value_error"),
            "loc": [_encodable(part) for part in error.get("loc", ())],
            "msg": _encodable(error.get("msg", "invalid value")),
        }
        for error in exc.errors()
    ]
    if logger.isEnabledFor(logging.DEBUG):
        # Where and why only: the refused values stay out of the log as they stay out of the
        # body, and so do attribute names (loc's third part on), which are the caller's text.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        where = "; ".join(f"{'.'.join(map(str, e['loc'][:2]))} ({e['type']})" for e in detail)
        logger.debug("422 %s %s: %s", request.method, route, where)
    return JSONResponse(status_code=422, content={"detail": detail})


def _encodable(value: Any) -> Any:
    # Attribute names appear in `loc`; a lone surrogate in one is written escaped (\ud800).
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class ScorerAPI(FastAPI):
    """FastAPI, with POST /v1/lead first offered to the ASGI fast path (leadops.scorer.fastpath).

    Dependency overrides (tests) only take effect through FastAPI: with any set, every request
    takes the full app.
    """

    lead_path: fastpath.LeadFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lead_path = self.lead_path
        if lead_path is not None and fastpath.takes(scope) and not self.dependency_overrides:
            await lead_path(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def full_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def scorer_state(self) -> ScorerState | None:
        state: ScorerState | None = getattr(self.state, "scorer", None)
        return state


def _load_guard(state: ScorerState) -> None:
    """The previous model, through the serving path, for the matured-AUC guard; a refused one
    turns the guard off (said in /ops/matured-auc), the serving model serves all the same."""
    settings = state.settings
    config, where = settings.matured_auc, settings.previous_model
    if config is None or where is None:
        return
    try:
        previous = load_configured(
            where.path,
            settings,
            min_auc=settings.auc_critical,
            verify_keys=state.verify_keys,
            expect_digest=where.digest,
        )
    except ModelRejected as exc:
        state.guard_error = f"previous model refused ({exc.reason}: {exc.error})"
        logger.error("Matured-AUC guard off: %s", state.guard_error)
        return
    if previous.version != config.previous_version:
        state.guard_error = f"the previous model file holds version {previous.version}"
        logger.error("Matured-AUC guard off: %s", state.guard_error)
        return
    state.guard = matured.Guard(
        config=config,
        previous=previous,
        window_seconds=matured.window_seconds(config, settings.matured_auc_window_seconds),
        max_seconds=matured.max_seconds(config, settings.matured_auc_max_seconds),
        refresh_seconds=settings.matured_auc_refresh_seconds,
    )
    logger.info(
        "Matured-AUC guard: version %d scored beside previous version %d",
        config.serving_version,
        config.previous_version,
    )


@asynccontextmanager
async def _background_work(state: ScorerState) -> AsyncIterator[None]:
    """The scorer's background tasks, started once its state is served and stopped after the
    last request: the record writer, follow-ups, guardrail counts, replicas, retention trims."""
    settings = state.settings
    running = state.experiment if isinstance(state.experiment, variants.RunningExperiment) else None
    trimmer = _trimmer(settings, state.store)
    await state.writer.start()
    if state.followups is not None:
        await state.followups.start()
    if running is not None:
        running.guardrails.start()
    if state.announcer is not None:
        state.announcer.start(state)
    if trimmer is not None:
        trimmer.start()
    try:
        yield
    finally:
        if trimmer is not None:
            await trimmer.stop()
        if state.announcer is not None:
            await state.announcer.close()
        if running is not None:
            await running.guardrails.stop()  # this replica's last counts
        await state.writer.stop()
        if state.followups is not None:
            await state.followups.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """A scorer app; each app has its own metrics registry, store and model reference."""
    settings = settings if settings is not None else Settings()
    logsafety.install()  # also when served by another ASGI server than `leadops serve`
    m = metrics.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lead_store = _make_store(settings)
        lead_spool = None
        if settings.spool_dir is not None:
            lead_spool = spool.Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
        record_writer = writer.RecordWriter(
            lead_store,
            m=m,
            capacity=WRITE_QUEUE_CAPACITY,
            durability=settings.durability,
            lead_spool=lead_spool,
        )
        state = ScorerState(
            settings=settings,
            metrics=m,
            keyring=KeyRing(keys=settings.env_api_keys(), keys_file=settings.api_keys_file),
            ingest_keys=IngestKeys(
                entries=settings.env_ingest_keys(), keys_file=settings.ingest_keys_file
            ),
            store=lead_store,
            writer=record_writer,
            thresholds=health.Thresholds(
                auc_warning=settings.auc_warning,
                auc_critical=settings.auc_critical,
                drift_warning=settings.drift_warning,
                stale_hours=settings.stale_hours,
            ),
            columns=AttributeColumns(cap=settings.max_attribute_columns, m=m, redact=pii.redact),
            verify_keys=_verify_keys(settings),
            followups=_followups(settings, lead_store, m),
        )
        _warn_about_keys(state)
        _load_at_start(state)
        state.announcer = await _join_replicas(state)
        # Every variant model passes the gates before the first lead is bucketed.
        state.experiment = variants.load(
            settings, verify_keys=state.verify_keys, m=m, sink=_guardrail_sink(lead_store)
        )
        _load_guard(state)
        app.state.scorer = state
        # Everything allocated so far (modules, the model) lives as long as the process: keep
        # it out of the cyclic GC's full collections, which otherwise rescan it under load.
        gc.freeze()
        try:
            async with _background_work(state):
                yield
        finally:
            await lead_store.close()

    docs = settings.docs
    app = ScorerAPI(
        title="LeadOps scorer",
        version="1",
        lifespan=lifespan,
        # A slash redirect's Location is built from the request's Host header: an open redirect
        # anyone can aim (and cache-poison) with a forged Host. Routes match exactly instead.
        redirect_slashes=False,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # Its metrics are Prometheus (/metrics); FastAPI's OpenTelemetry hooks would cost every
        # request a provider lookup, and the /v1/lead fast path runs outside them anyway.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.include_router(score_routes.router)
    app.include_router(ops_routes.router)
    app.include_router(health_routes.router)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        state: ScorerState = app.state.scorer
        state.refresh_drift_metric()
        if state.guard is not None:
            # The guard's verdict, at most once per its refresh interval; a store down leaves
            # it out, the other metrics are still worth a scrape.
            with contextlib.suppress(store.StoreUnavailable):
                state.guard.publish(m, await state.guard.report(state.store))
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_exception_handler(RequestValidationError, validation_error)
    request_metrics = RequestMetrics(m)
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.max_body_bytes, request_metrics=request_metrics
    )
    app.lead_path = fastpath.LeadFastPath(
        full_app=app.full_app,
        state=app.scorer_state,
        max_body_bytes=settings.max_body_bytes,
        request_metrics=request_metrics,
    )
    return app
