"""Body size limit and request metrics for every HTTP request, in one place.

`RequestGuard` is the pure-ASGI middleware (not BaseHTTPMiddleware: it sits on the scoring hot
path); the POST /v1/lead fast path (fastpath) counts in the same `RequestMetrics` and reads
the same `declared_length`, and hands any body past the limit to the guard to refuse.
"""

from __future__ import annotations

import json
import time

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadops.scorer import metrics

# Label values are a closed set: a client-chosen method name or an unmatched path would add a
# series per request (a 60 KB method name, 50 times, grew /metrics from 178 KB to 6.2 MB).
OTHER = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """The request counter and latency histogram, their labelled children cached by
    (route, method, status): labels() is a lock and a dict build per call."""

    def __init__(self, m: metrics.Metrics) -> None:
        self._metrics = m
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[str, Histogram] = {}

    def count(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._metrics.requests.labels(route=route, method=method, status=str(status))
            self._counters[key] = counter
        counter.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self._metrics.request_seconds.labels(route=route)
        timer.observe(seconds)


class RequestGuard:
    """Refuse bodies over `max_body_bytes` (413) and count/time requests by route template."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, request_metrics: RequestMetrics
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_metrics = request_metrics
        self._too_large = json.dumps(
            {"detail": f"request body larger than {max_body_bytes} bytes"}
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500
        limit = self.max_body_bytes

        async def send_counting(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            declared = declared_length(scope)
            if declared is not None and declared > limit:
                await self._reject(send_counting)
                return
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    # Chunked or lying Content-Length: count what actually arrives.
                    if received > limit:
                        raise HTTPException(413, f"request body larger than {limit} bytes")
                return message

            await self.app(scope, receive_limited, send_counting)
        finally:
            # A matched route's template is one of the app's own; anything else is `other`.
            template = getattr(scope.get("route"), "path", OTHER)
            method = scope["method"]
            elapsed = time.perf_counter() - started
            self.request_metrics.count(
                template, method if method in KNOWN_METHODS else OTHER, status_code, elapsed
            )

    async def _reject(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._too_large)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._too_large})


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length; None when absent or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
