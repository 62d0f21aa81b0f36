"""POST /v1/lead answered straight from the ASGI call, ahead of Starlette's middleware stack.

The scoring hot path. Starlette's stack (error and exception middlewares, an exit stack,
routing, a Request, four send wrappers) costs a lead more Python than its trees do. A request
this path is sure of - POST /v1/lead, a plain `application/json` body within the size limit
that parses and validates as a Lead, a model loaded - is scored here with the route's own code
(scoring.answer_lead) and counted in the same request metrics (middleware.RequestMetrics).
Anything else is handed,
with the body it already read replayed, to the full app, which answers exactly as it always
did: the 413 (RequestGuard), FastAPI's 422 bodies, the 503 without a model.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable

from fastapi import HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from leadops.contract.lead import Lead
from leadops.scorer import scoring, tenancy
from leadops.scorer.middleware import RequestMetrics, declared_length
from leadops.scorer.state import ScorerState

PATH = "/v1/lead"
JSON_TYPE = b"application/json"

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LeadFastPath:
    """Answers the POST /v1/lead requests it is sure of; hands every other one to `full_app`."""

    def __init__(
        self,
        *,
        full_app: ASGIApp,
        state: Callable[[], ScorerState | None],
        max_body_bytes: int,
        request_metrics: RequestMetrics,
    ) -> None:
        self._full_app = full_app
        self._state = state
        self._limit = max_body_bytes
        self._request_metrics = request_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self._state()
        model = None if state is None else state.model
        body = None if model is None else _declared_ok(scope, self._limit)
        messages: list[Message] = []
        if body is not None:
            body = await _read_body(receive, messages, limit=self._limit)
        lead = None if not body or state is None else _tenants_lead(state, scope, body)
        if lead is None or state is None or model is None:
            await self._full_app(scope, _replay(messages, receive), send)
            return
        status = 500
        try:
            try:
                answer = scoring.answer_lead(lead, state, model)
            except HTTPException as exc:  # scoring failed: FastAPI's own HTTPException answer
                status = exc.status_code
                await JSONResponse({"detail": exc.detail}, status, exc.headers)(
                    scope, receive, send
                )
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(answer)).encode()),
                        (b"content-type", JSON_TYPE),
                    ],
                }
            )
            status = 200
            await send({"type": "http.response.body", "body": answer})
        except Exception:
            # As Starlette's ServerErrorMiddleware: a plain 500 if nothing was sent, then re-raise
            # for the server to log.
            if status == 500:
                await PlainTextResponse("Internal Server Error", 500)(scope, receive, send)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._request_metrics.count(PATH, "POST", status, elapsed)


def takes(scope: Scope) -> bool:
    """Is this request one for the fast path to look at (POST /v1/lead, under any root path)?"""
    return scope["type"] == "http" and scope["method"] == "POST" and _route_path(scope) == PATH


def _route_path(scope: Scope) -> str:
    """The path the app's routes see: behind a proxy's prefix (`root_path`), without it, as
    Starlette's router strips it (uvicorn puts the prefix in both `path` and `root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _declared_ok(scope: Scope, limit: int) -> bytes | None:
    """b"" when the headers fit the fast path (plain JSON, declared size within the limit)."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        return None  # RequestGuard answers 413 without reading
    for name, value in scope["headers"]:
        # The first one, as Starlette's request.headers.get() (which FastAPI reads) finds.
        if name == b"content-type":
            return b"" if value == JSON_TYPE else None
    return None


async def _read_body(receive: Receive, messages: list[Message], *, limit: int) -> bytes | None:
    """The whole body, keeping every message read for a replay; None past the limit or on a
    disconnect (the full app then answers: RequestGuard's 413, Starlette's disconnect)."""
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            break
    if len(messages) == 1:
        return bytes(messages[0].get("body", b""))
    return b"".join(m.get("body", b"") for m in messages)


def _tenants_lead(state: ScorerState, scope: Scope, body: bytes) -> Lead | None:
    """The body as a lead of its caller's tenant; None when the full app must answer (bad
    JSON, bad lead, nesting too deep, ingest key missing or wrong, another tenant's body)."""
    try:
        lead = Lead.model_validate(json.loads(body))
        return tenancy.admit(state.ingest_keys, _api_key(scope), lead)
    except Exception:
        return None


def _api_key(scope: Scope) -> str | None:
    # The first one, as Starlette's request.headers.get() (which FastAPI reads) finds.
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value).decode("latin-1")
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    if not messages:
        return receive
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed
