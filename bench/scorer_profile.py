"""Profile: server-side CPU per POST /v1/lead, in process, through the whole ASGI stack.

Calls the ASGI app directly (no sockets, no HTTP parsing): what remains is the Python work a
request costs inside uvicorn's app call, for the scorer and for the bare endpoint (bench.bare_app).
Run: `.venv/bin/python -m bench.scorer_profile [--requests 2000] [--rounds 5] [--profile]`
(--profile prints the cProfile top functions of the scorer loop). Memory store: no Redis here.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

from tests.fixtures.artifacts import build_artifact

from bench.scorer import LEAD
from leadops.scorer.app import create_app
from leadops.scorer.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench-scorer"
ASGIApp = Any


async def _call(app: ASGIApp, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/lead",
        "raw_path": b"/v1/lead",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _per_request_us(app: ASGIApp, body: bytes, n: int) -> float:
    for _ in range(200):
        assert await _call(app, body) == 200
        await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(n):
        await _call(app, body)
        await asyncio.sleep(0)  # let the write-behind task run, as it would under uvicorn
    return (time.process_time() - started) / n * 1e6


async def run(n: int, *, rounds: int, profile: bool) -> None:
    from bench import bare_app  # noqa: PLC0415

    model_path = WORK / "model-300.json"
    WORK.mkdir(parents=True, exist_ok=True)
    if not model_path.exists():
        build_artifact(model_path, trees=300, depth=6, rows=3000, seed=42)
    body = json.dumps(LEAD).encode()
    app = create_app(Settings(model_path=model_path, redis_url=None))
    async with app.router.lifespan_context(app):
        # Interleaved rounds, medians: the machine is shared and its load swings.
        bares, ours = [], []
        for _ in range(rounds):
            bares.append(await _per_request_us(bare_app.app, body, n))
            ours.append(await _per_request_us(app, body, n))
        bare, our = statistics.median(bares), statistics.median(ours)
        print(
            f"bare: {bare:.0f} us/request, scorer: {our:.0f} us/request "
            f"(CPU in process, median of {rounds} interleaved rounds; extra {our - bare:.0f} us)"
        )
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await _per_request_us(app, body, n)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer_profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(run(args.requests, rounds=args.rounds, profile=args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
