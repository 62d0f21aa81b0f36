"""/health (liveness: the process answers) and /ready (a model fit to serve is loaded)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from leadops.scorer import health, schemas
from leadops.scorer.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/health", response_model=schemas.Liveness)
async def liveness() -> schemas.Liveness:
    return schemas.Liveness()


@router.get(
    "/ready", response_model=schemas.Readiness, responses={503: {"model": schemas.Readiness}}
)
async def readiness(state: StateDep, response: Response) -> schemas.Readiness:
    model = state.model
    now_health = state.health_now()
    # Cold start: no model yet, but leads are stored unscored, so traffic is welcome.
    cold = model is None and state.settings.cold_start and now_health is health.Health.NO_MODEL
    ready = cold or now_health not in health.NOT_READY
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    # A store outage does not make the scorer unready: scoring still answers.
    store_ok = await state.store.ping()
    state.metrics.store_up.set(1 if store_ok else 0)
    return schemas.Readiness(
        ready=ready,
        health=now_health,
        model_version=model.version if model is not None else None,
        store=state.store.kind,
        store_ok=store_ok,
    )
