"""Benchmark: what the matured-AUC guard's shadow scoring costs the scorer.

Two `leadops serve` processes on the same real redis-server, the same 300-tree serving model:
guard off, and guard on (a second 300-tree model, the previous version, scores every lead
too; its score goes into the record and the lead into the guard index). Targets alternate
within each round; the figures are same-round ratios (the machine is shared). Load: an asyncio
httpx client with --connections concurrent requests for --duration seconds (no `wrk` here);
CPU per request is the server process's own (from /proc), which the client's load does not
change.

Run: `.venv/bin/python -m bench.scorer_matured_auc [--duration 10] [--rounds 3]`.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass

import httpx
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.ports import free_port
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from bench.scorer import LEAD, WORK, cpu_seconds, serving
from leadops.contract import artifact

OFF = "guard off"
ON = "guard on (previous version in shadow)"


@dataclass
class Result:
    rps: float
    cpu_us: float


async def load(url: str, *, duration: float, connections: int) -> int:
    """POST the bench lead from `connections` concurrent workers for `duration` s; 200s."""
    done = 0
    stop = time.monotonic() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < stop:
            answer = await client.post(url, json=LEAD)
            if answer.status_code == 200:
                done += 1

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer_matured_auc")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    serving_model = build_artifact(
        WORK / "guard-serving.json", version=now - 60, trees=300, depth=6, seed=1
    )
    previous = build_artifact(WORK / "guard-previous.json", version=now - 3600, trees=300, depth=6)
    redis_dir = WORK / "guard-redis"
    shutil.rmtree(redis_dir, ignore_errors=True)
    redis_dir.mkdir(parents=True)
    server = RedisServer(redis_dir)
    server.start()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    base |= {"LEADOPS_REDIS_URL": server.url, "LEADOPS_API_KEYS": "bench-key-0123456789"}
    guard = {
        "LEADOPS_PREVIOUS_MODEL": json.dumps(
            {"path": str(previous.path), "digest": artifact.load_artifact(previous.path).digest}
        ),
        "LEADOPS_MATURED_AUC": json.dumps(
            {
                "servingVersion": serving_model.version,
                "previousVersion": previous.version,
                "since": now,
            }
        ),
    }
    results: dict[str, list[Result]] = {OFF: [], ON: []}
    try:
        for round_ in range(args.rounds):
            for name, env in ((OFF, base), (ON, base | guard)):
                port = free_port()
                argv_ = [sys.executable, "-m", "leadops.cli", "serve"]
                argv_ += ["--model", str(serving_model.path), "--port", str(port)]
                argv_ += ["--log-level", "warning"]
                url = f"http://127.0.0.1:{port}/v1/lead"
                with serving(argv_, port=port, env=env, ready="/health") as pid:
                    asyncio.run(load(url, duration=2, connections=args.connections))  # warm-up
                    before = cpu_seconds(pid)
                    done = asyncio.run(
                        load(url, duration=args.duration, connections=args.connections)
                    )
                    used = cpu_seconds(pid) - before
                result = Result(rps=done / args.duration, cpu_us=used * 1e6 / max(done, 1))
                results[name].append(result)
                print(
                    f"round {round_ + 1} {name}: {result.rps:.0f} req/s, "
                    f"{result.cpu_us:.0f} us CPU/request"
                )
    finally:
        server.stop()
    ratios = [on.rps / off.rps for off, on in zip(results[OFF], results[ON], strict=True)]
    cpu = [on.cpu_us / off.cpu_us for off, on in zip(results[OFF], results[ON], strict=True)]
    rows = "\n".join(
        f"| {i + 1} | {off.rps:.0f} | {on.rps:.0f} | {on.rps / off.rps:.2f} | {off.cpu_us:.0f} | "
        f"{on.cpu_us:.0f} | {on.cpu_us / off.cpu_us:.2f} |"
        for i, (off, on) in enumerate(zip(results[OFF], results[ON], strict=True))
    )
    body = f"""## Matured-AUC guard: shadow scoring's cost (`bench/scorer_matured_auc.py`)

- Run on {machine()}.
- Command: `.venv/bin/python -m bench.scorer_matured_auc --duration {args.duration:g} --rounds
  {args.rounds}`. Two `leadops serve` on one real redis-server (durability acknowledged), a
  300-tree depth-6 serving model; "on" adds a 300-tree previous version scoring every lead in
  shadow. Load: an asyncio httpx client, {args.connections} concurrent requests (on the same
  2 cores: it takes CPU from the scorer, alike in both). Targets alternate within a round.

| round | off req/s | on req/s | on/off | off CPU us/request | on CPU us/request | on/off |
|---:|---:|---:|---:|---:|---:|---:|
{rows}

- Median same-round ratio, guard on / off: throughput {statistics.median(ratios):.2f}, scorer CPU
  per request {statistics.median(cpu):.2f}. The Python client bounds the throughput here (both
  targets run below the scorer's capacity), so the CPU per request is the figure that says what
  the guard costs a saturated scorer: that much more CPU per lead, i.e. about that much fewer
  leads per core. It is one more featurize + tree walk per lead (and three more fields in its
  record), only while the guard shadows: from a promotion until its verdict or maxDays.
"""
    write_section("scorer_matured_auc", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
