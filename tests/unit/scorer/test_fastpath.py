"""The POST /v1/lead ASGI fast path answers exactly as the full FastAPI app does.

Each case drives the real app (lifespan, model, memory store) through its ASGI interface twice:
once as served (fast path in front) and once with the fast path removed, so the full Starlette
and FastAPI stack answers; status, headers, body and metrics must agree.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import generate_latest

from leadops.scorer import fastpath
from leadops.scorer.app import ScorerAPI, create_app
from leadops.scorer.settings import Settings
from leadops.scorer.state import ScorerState
from tests.fixtures.artifacts import Built
from tests.fixtures.asgi import post_scope
from tests.fixtures.metrics import metric_value

LEAD = json.dumps(
    {"details": "price quote for a demo please", "source": "referral", "email": "a@b.io"}
).encode()
ROUTE = {"route": "/v1/lead", "method": "POST"}


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    error: str | None = None  # the exception the app raised to the server, if any

    def json(self) -> Any:
        return json.loads(self.body)


def _call(
    app: ScorerAPI,
    chunks: list[bytes],
    *,
    headers: list[tuple[bytes, bytes]],
    disconnect: bool = False,
    root_path: str = "",
    path_suffix: str = "",
) -> Answer:
    # Behind a proxy's prefix uvicorn puts it in both `path` and `root_path`.
    path = root_path + path_suffix + "/v1/lead"
    scope = post_scope(path, headers=[(b"host", b"test"), *headers])
    scope["root_path"] = root_path
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1 or disconnect}
        for i, chunk in enumerate(chunks)
    ]
    answer = Answer()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if disconnect:
            return {"type": "http.disconnect"}  # as uvicorn: once gone, gone for good
        await asyncio.sleep(3600)  # the client waits for the answer
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            answer.error = type(exc).__name__
        await asyncio.sleep(0.02)  # let the write-behind flush what the request queued

    app.state.loop.run_until_complete(run())
    return answer


@contextmanager
def _serving(built: Built, **settings: Any) -> Iterator[ScorerAPI]:
    app = create_app(Settings(model_path=built.path, **settings))
    assert isinstance(app, ScorerAPI)
    loop = asyncio.new_event_loop()
    context = app.router.lifespan_context(app)
    loop.run_until_complete(context.__aenter__())
    app.state.loop = loop
    try:
        yield app
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


def _both(
    built: Built, chunks: list[bytes], *, fast_answers: bool | None = True, **kwargs: Any
) -> tuple[Answer, Answer, str, str]:
    """(fast path's answer, full app's answer, and each app's metrics exposition).

    `fast_answers`: the fast path must answer itself (True) or hand over (False); None: the
    request is not one for the fast path at all."""
    results = []
    for fast in (True, False):
        with _serving(built, max_body_bytes=4096) as app:
            if not fast:
                app.lead_path = None
            else:
                handed_over = _watch_hand_over(app)
            answer = _call(app, chunks, **kwargs)
            if fast and fast_answers is not None:
                assert handed_over == ([] if fast_answers else [True]), "who answered"
            state: ScorerState = app.state.scorer
            results.append((answer, generate_latest(state.metrics.registry).decode()))
    (fast_answer, fast_metrics), (full_answer, full_metrics) = results
    return fast_answer, full_answer, fast_metrics, full_metrics


def _watch_hand_over(app: ScorerAPI) -> list[bool]:
    """A list that gets one entry each time the fast path hands a request to the full app."""
    lead_path = app.lead_path
    assert lead_path is not None
    full_app = lead_path._full_app
    handed_over: list[bool] = []

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        handed_over.append(True)
        await full_app(scope, receive, send)

    lead_path._full_app = watched
    return handed_over


JSON_HEADERS = [(b"content-type", b"application/json")]


def _length(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(body)).encode())]


def test_a_scored_lead_gets_the_same_answer_and_metrics_either_way(good_model: Built) -> None:
    fast, full, fast_metrics, full_metrics = _both(
        good_model, [LEAD], headers=JSON_HEADERS + _length(LEAD)
    )
    assert fast.error is full.error is None
    assert fast.status == full.status == 200
    # Same header names and values, except the length, which follows the (random) lead id.
    assert [h for h in fast.headers if h[0] != b"content-length"] == [
        h for h in full.headers if h[0] != b"content-length"
    ]
    assert dict(fast.headers)[b"content-length"] == str(len(fast.body)).encode()
    fast_json, full_json = fast.json(), full.json()
    assert fast_json.keys() == full_json.keys() == {"lead_id", "score", "model_version", "health"}
    assert fast_json["lead_id"] != full_json["lead_id"]
    for key in ("score", "model_version", "health"):
        assert fast_json[key] == full_json[key], key
    for exposition in (fast_metrics, full_metrics):
        labels = ROUTE | {"status": "200"}
        assert metric_value(exposition, "leadops_http_requests_total", labels) == 1.0
        assert metric_value(exposition, "leadops_lead_score_count") == 1.0
        assert (
            metric_value(exposition, "leadops_http_request_duration_seconds_count", ROUTE_ONLY)
            == 1.0
        )


ROUTE_ONLY = {"route": "/v1/lead"}


def test_behind_a_root_path_the_fast_path_answers_as_the_full_app(good_model: Built) -> None:
    fast, full, fast_metrics, full_metrics = _both(
        good_model, [LEAD], headers=JSON_HEADERS + _length(LEAD), root_path="/scorer"
    )
    assert fast.status == full.status == 200
    assert fast.json()["score"] == full.json()["score"]
    for exposition in (fast_metrics, full_metrics):
        labels = ROUTE | {"status": "200"}
        assert metric_value(exposition, "leadops_http_requests_total", labels) == 1.0


def test_a_path_that_only_starts_like_the_root_path_is_not_the_lead_route(
    good_model: Built,
) -> None:
    # root_path "/scorer", path "/scorerx/v1/lead": not under the prefix, so not /v1/lead.
    scope = post_scope("/scorerx/v1/lead", headers=JSON_HEADERS)
    assert fastpath.takes(scope | {"root_path": "/scorer"}) is False
    assert fastpath.takes(scope | {"path": "/scorer/v1/lead", "root_path": "/scorer"}) is True
    fast, full, _, _ = _both(
        good_model,
        [LEAD],
        fast_answers=None,
        headers=JSON_HEADERS + _length(LEAD),
        root_path="/scorer",
        path_suffix="x",
    )
    assert fast.status == full.status == 404


def test_a_body_in_several_chunks_is_read_whole_and_scored_once(good_model: Built) -> None:
    chunks = [LEAD[:10], LEAD[10:25], LEAD[25:]]
    fast, full, fast_metrics, _ = _both(good_model, chunks, headers=JSON_HEADERS)
    assert fast.status == full.status == 200
    assert fast.json()["score"] == full.json()["score"]
    assert metric_value(fast_metrics, "leadops_lead_score_count") == 1.0


def test_a_chunked_body_past_the_limit_is_the_guards_413_counted_once(good_model: Built) -> None:
    big = json.dumps({"details": "y" * 6000}).encode()
    chunks = [big[i : i + 1000] for i in range(0, len(big), 1000)]
    fast, full, fast_metrics, full_metrics = _both(
        good_model, chunks, fast_answers=False, headers=JSON_HEADERS
    )
    assert (fast.status, fast.json()) == (full.status, full.json())
    assert fast.status == 413
    assert "4096" in fast.json()["detail"]
    for exposition in (fast_metrics, full_metrics):
        labels = ROUTE | {"status": "413"}
        assert metric_value(exposition, "leadops_http_requests_total", labels) == 1.0
        assert metric_value(exposition, "leadops_lead_score_count") == 0.0


def test_a_client_gone_mid_body_ends_as_the_full_app_ends_it(good_model: Built) -> None:
    fast, full, fast_metrics, _ = _both(
        good_model,
        [LEAD[:20]],
        fast_answers=False,
        headers=JSON_HEADERS + _length(LEAD),
        disconnect=True,
    )
    assert (fast.status, fast.body, fast.error) == (full.status, full.body, full.error)
    assert metric_value(fast_metrics, "leadops_lead_score_count") == 0.0


def test_a_refused_lead_gets_fastapis_422_from_the_full_app(good_model: Built) -> None:
    body = b'{"details": 5}'
    fast, full, fast_metrics, _ = _both(
        good_model, [body], fast_answers=False, headers=JSON_HEADERS + _length(body)
    )
    assert (fast.status, fast.json()) == (full.status, full.json())
    assert fast.status == 422
    assert fast.json()["detail"][0]["loc"] == ["body", "details"]
    labels = ROUTE | {"status": "422"}
    assert metric_value(fast_metrics, "leadops_http_requests_total", labels) == 1.0
