"""Profile: server-side CPU per POST /v1/lead, in process, through the whole ASGI stack.

Calls the ASGI app directly (no sockets, no HTTP parsing): what remains is the Python work a
request costs inside uvicorn's app call, for the scorer and for the bare endpoint (bench.bare_app).
Run: `.venv/bin/python -m bench.scorer_profile [--requests 2000] [--rounds 5] [--profile]`
(--profile prints the cProfile top functions of the scorer loop). Memory store: no Redis here.
Also prints the model time inside those requests (featurize.vector + compiled trees, wall
clock per lead): what the timeit table of bench.scorer measures hot, here with the caches
shared with the whole ASGI stack.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.asgi import post_scope

from bench.scorer import LEAD
from leadops.contract import featurize
from leadops.scorer.app import create_app
from leadops.scorer.model import ServingModel
from leadops.scorer.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench-scorer"
ASGIApp = Any


async def _call(app: ASGIApp, body: bytes) -> int:
    scope = post_scope(
        "/v1/lead",
        headers=[
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    )
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


class ModelClock:
    """Times the two model steps of ServingModel.score_row inside each scored request."""

    def __init__(self) -> None:
        self.featurize_ns = self.trees_ns = self.leads = 0

    def install(self) -> None:
        clock = self

        def score_row(
            model: ServingModel, row: dict[str, str], cells: featurize.RowCells | None = None
        ) -> tuple[float, npt.NDArray[np.float32]]:
            # The same two calls as ServingModel.score_row, with a clock read between them.
            t0 = time.perf_counter_ns()
            vector = model.featurizer.vector(row, cells)
            t1 = time.perf_counter_ns()
            score = model.ensemble.predict(vector)
            clock.trees_ns += time.perf_counter_ns() - t1
            clock.featurize_ns += t1 - t0
            clock.leads += 1
            return score, vector

        ServingModel.score_row = score_row  # type: ignore[method-assign, assignment]

    def reset(self) -> None:
        self.featurize_ns = self.trees_ns = self.leads = 0

    def per_lead_us(self) -> tuple[float, float]:
        n = max(self.leads, 1)
        return self.featurize_ns / n / 1e3, self.trees_ns / n / 1e3


async def per_request_us(app: ASGIApp, body: bytes, n: int) -> float:
    for _ in range(200):
        assert await _call(app, body) == 200
        await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(n):
        await _call(app, body)
        await asyncio.sleep(0)  # let the write-behind task run, as it would under uvicorn
    return (time.process_time() - started) / n * 1e6


@dataclass(frozen=True)
class InProcess:
    """Medians over interleaved rounds: CPU per request of both apps, model time per lead."""

    bare_us: float
    scorer_us: float
    featurize_us: float
    trees_us: float
    rounds: int


async def measure(n: int, *, rounds: int, profile: bool = False) -> InProcess:
    from bench import bare_app  # noqa: PLC0415

    model_path = WORK / "model-300.json"
    WORK.mkdir(parents=True, exist_ok=True)
    if not model_path.exists():
        build_artifact(model_path, trees=300, depth=6, rows=3000, seed=42)
    body = json.dumps(LEAD).encode()
    app = create_app(Settings(model_path=model_path, redis_url=None))
    clock = ModelClock()
    clock.install()
    async with app.router.lifespan_context(app):
        # Interleaved rounds, medians: the machine is shared and its load swings.
        bares, ours, featurize, trees = [], [], [], []
        for _ in range(rounds):
            bares.append(await per_request_us(bare_app.app, body, n))
            clock.reset()
            ours.append(await per_request_us(app, body, n))
            featurize_us, trees_us = clock.per_lead_us()
            featurize.append(featurize_us)
            trees.append(trees_us)
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await per_request_us(app, body, n)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
    return InProcess(
        bare_us=statistics.median(bares),
        scorer_us=statistics.median(ours),
        featurize_us=statistics.median(featurize),
        trees_us=statistics.median(trees),
        rounds=rounds,
    )


async def run(n: int, *, rounds: int, profile: bool) -> None:
    got = await measure(n, rounds=rounds, profile=profile)
    extra = got.scorer_us - got.bare_us
    print(
        f"bare: {got.bare_us:.0f} us/request, scorer: {got.scorer_us:.0f} us/request (CPU in "
        f"process, median of {rounds} interleaved rounds; extra {extra:.0f} us)"
    )
    print(
        f"model time inside requests: featurize.vector {got.featurize_us:.1f} + compiled trees "
        f"{got.trees_us:.1f} = {got.featurize_us + got.trees_us:.1f} us per lead "
        f"(wall clock, median of {rounds} rounds)"
    )


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
