"""FastAPI dependencies, all in one place: the scorer state, the serving model, the API key
(`require_api_key`, the /ops router's dependency)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, HTTPException, Query, Request, status

from leadops.scorer import tenancy
from leadops.scorer.auth import KeysFileUnreadable
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState

NO_KEY_CONFIGURED = "no API key configured"
KEYS_UNREADABLE = "API keys file unreadable"


def get_state(request: Request) -> ScorerState:
    return cast(ScorerState, request.app.state.scorer)


async def _state_dependency(request: Request) -> ScorerState:
    # async: a plain `def` dependency would run in the threadpool on every request.
    return get_state(request)


StateDep = Annotated[ScorerState, Depends(_state_dependency)]


async def get_model(request: Request) -> ServingModel:
    # Read the reference once: this request uses this model from start to end.
    # (Takes the request, not StateDep: one dependency less on the scoring hot path.)
    model = cast(ScorerState, request.app.state.scorer).model
    if model is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded")
    return model


ModelDep = Annotated[ServingModel, Depends(get_model)]


async def get_model_or_cold_start(request: Request) -> ServingModel | None:
    """The serving model; None while none is loaded and cold start is on (the lead is stored
    unscored), else the same 503 as ModelDep."""
    state = cast(ScorerState, request.app.state.scorer)
    model = state.model
    if model is None and not state.settings.cold_start:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded")
    return model


ColdStartModelDep = Annotated[ServingModel | None, Depends(get_model_or_cold_start)]


async def ingest_tenant(
    state: StateDep,
    x_api_key: Annotated[
        str | None, Header(max_length=512, description="Ingest key: names the caller's tenant.")
    ] = None,
) -> str:
    """The caller's tenant (its ingest key's; `default` when ingest is open), else 401/503."""
    return tenancy.caller_tenant(state.ingest_keys, x_api_key)


TenantDep = Annotated[str, Depends(ingest_tenant)]


async def require_api_key(
    state: StateDep,
    x_api_key: Annotated[
        str | None, Header(max_length=512, description="API key (preferred).")
    ] = None,
    api_key: Annotated[str | None, Query(max_length=512, description="API key (fallback).")] = None,
) -> None:
    keyring = state.keyring
    try:
        configured = keyring.configured()
        # The header wins when both are given; neither value is ever echoed or logged.
        accepted = keyring.accepts(x_api_key if x_api_key is not None else api_key)
    except KeysFileUnreadable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, KEYS_UNREADABLE) from None
    if not configured:
        if state.settings.dev_open_ops:
            return
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_KEY_CONFIGURED)
    if not accepted:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key (x-api-key header or api_key query parameter)",
        )
