"""Benchmark (issue #20): the scorer's POST /v1/lead with follow-ups on (LEADOPS_FOLLOWUPS_CONFIG:
every lead has a phone and an e-mail and reaches a band, so every lead's contact is sealed and
its job queued by the follow-up writer) vs off, in the same run: same model, same real Redis,
durability bestEffort, uvloop + httptools (`leadops serve`).

Load: a bounded loop of keep-alive HTTP/1.1 requests on loopback (asyncio, `--connections`
connections, `--requests` requests per run after a warm-up of a tenth of that), one server at
a time, the two targets alternating within each round.

Run: `flock /work/heavy.lock .venv/bin/python -m bench.scorer_followups [--requests 20000]
[--rounds 3]`. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.followups import config_data, tenant_spec
from tests.fixtures.ports import free_port
from tests.fixtures.provider_twins import Twin, TwinServer
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from bench.scorer import LEAD, WORK, cpu_seconds, serving

OFF = "scorer, follow-ups off"
ON = "scorer, follow-ups on"
TENANT = "default"  # open ingest
RULES = [
    {"minScore": "0.5", "channel": "sms", "template": "hot", "delayMinutes": 5},
    {"minScore": "0.0", "channel": "email", "template": "warm", "delayMinutes": 720},
]
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us_per_request: float = 0.0
    load_average: float = 0.0


async def _load(port: int, body: bytes, *, requests: int, connections: int) -> Run:
    """`requests` POST /v1/lead over `connections` keep-alive connections; bounded."""
    request = (
        b"POST /v1/lead HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    latencies: list[float] = []
    errors = 0
    left = requests

    async def connection() -> None:
        nonlocal left, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                found = _LENGTH.search(head)
                await reader.readexactly(int(found.group(1)) if found else 0)
                latencies.append(time.perf_counter() - began)
                if head[9:12] != b"200":
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Run(
        rps=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        errors=errors,
        requests=len(latencies),
    )


def _followup_counts(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("leadops_followups_") and sample.name.endswith("_total"):
                label = ",".join(sample.labels.values())
                key = f"{sample.name.removeprefix('leadops_followups_')}{{{label}}}"
                out[key] = out.get(key, 0.0) + sample.value
    return out


def _settled(port: int, leads: int, *, timeout: float = 30.0) -> dict[str, float]:
    """The follow-up counters once every lead's follow-up is written or dropped."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _followup_counts(port)
        done = sum(v for k, v in counts.items() if k.startswith(("scheduled_", "dropped_")))
        if done >= leads or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer_followups", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", type=int, default=300)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    model = build_artifact(WORK / "model-300.json", trees=args.trees, depth=6, rows=3000, seed=42)
    redis_server = RedisServer(WORK)
    redis_server.start()
    body = json.dumps(LEAD).encode()  # a phone and an e-mail: every lead gets a follow-up
    with tempfile.TemporaryDirectory(prefix="bench-followups-") as tmp, TwinServer(Twin()) as twin:
        config = Path(tmp) / "followups.json"
        spec = tenant_spec(Path(tmp), twin, name=TENANT, rules=RULES)
        config.write_text(json.dumps(config_data({TENANT: spec})))
        salt = Path(tmp) / "key-salt"
        salt.write_bytes(os.urandom(32))
        base = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
        env_off = base | {
            "LEADOPS_REDIS_URL": redis_server.url,
            "LEADOPS_DURABILITY": "bestEffort",
            "LEADOPS_MODEL_PATH": str(model.path),
            "LEADOPS_KEY_SALT_FILE": str(salt),
        }
        targets = {OFF: env_off, ON: env_off | {"LEADOPS_FOLLOWUPS_CONFIG": str(config)}}
        results: dict[str, list[Run]] = {name: [] for name in targets}
        counts: dict[str, float] = {}
        try:
            for round_ in range(args.rounds):
                for name, env in targets.items():
                    port = free_port()
                    argv_ = [sys.executable, "-m", "leadops.cli", "serve", "--port", str(port)]
                    with serving(argv_, port=port, env=env, ready="/ready") as pid:
                        warm = max(args.requests // 10, args.connections)
                        asyncio.run(_load(port, body, requests=warm, connections=args.connections))
                        cpu_before = cpu_seconds(pid)
                        run = asyncio.run(
                            _load(port, body, requests=args.requests, connections=args.connections)
                        )
                        run.cpu_us_per_request = (
                            (cpu_seconds(pid) - cpu_before) * 1e6 / run.requests
                        )
                        if name == ON:
                            found = _settled(port, warm + run.requests)
                            for key, value in found.items():
                                counts[key] = counts.get(key, 0.0) + value
                    run.load_average = os.getloadavg()[0]
                    results[name].append(run)
                    print(
                        f"round {round_ + 1} {name}: {run.rps:.0f} req/s p50 {run.p50_ms:.2f} "
                        f"ms p99 {run.p99_ms:.2f} ms errors {run.errors} "
                        f"cpu {run.cpu_us_per_request:.0f} us/request "
                        f"load {run.load_average:.1f}",
                        flush=True,
                    )
        finally:
            redis_server.stop()
    report(results, counts, args=args)
    return 0


def _ratios(values: list[float]) -> str:
    shown = ", ".join(f"{v:.0%}" for v in values)
    return f"{shown} (median {statistics.median(values):.0%})"


def report(
    results: dict[str, list[Run]], counts: dict[str, float], *, args: argparse.Namespace
) -> None:
    rounds = list(zip(results[OFF], results[ON], strict=True))
    throughput = [on.rps / off.rps for off, on in rounds]
    cpu = [off.cpu_us_per_request / on.cpu_us_per_request for off, on in rounds]
    loads = [run.load_average for runs in results.values() for run in runs]
    leads = (1 + 1 / 10) * args.requests * args.rounds  # warm-up included
    lines = [
        "## Scorer with follow-ups on vs off (bench/scorer_followups.py)",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        f"- Command: `flock /work/heavy.lock .venv/bin/python -m bench.scorer_followups "
        f"--requests {args.requests} --rounds {args.rounds} --connections {args.connections}`",
        f"- Both: `leadops serve` (uvloop + httptools), durability bestEffort, real Redis, a "
        f"{args.trees}-tree depth-6 model. On: LEADOPS_FOLLOWUPS_CONFIG with two bands; every "
        "lead has a phone and an e-mail, so every lead's contact is sealed (AES-GCM) and its "
        "job queued by the follow-up writer. Load: a bounded loop of "
        f"{args.requests} keep-alive requests over {args.connections} connections on loopback "
        "(asyncio, in the bench process), after a warm-up of a tenth of that; the two targets "
        "alternate within each round; best round shown (median of rounds in brackets).",
        f"- 1-minute load average after each run {min(loads):.1f} to {max(loads):.1f} on "
        f"{os.cpu_count()} CPUs (shared machine; the load generator shares them too).",
        "",
        "| target | req/s | p50 ms | p99 ms | errors | server CPU us/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        best = max(runs, key=lambda r: r.rps)
        median = statistics.median(r.rps for r in runs)
        lines.append(
            f"| {name} | {best.rps:.0f} ({median:.0f}) | {best.p50_ms:.2f} | {best.p99_ms:.2f} | "
            f"{sum(r.errors for r in runs)} | "
            f"{statistics.median(r.cpu_us_per_request for r in runs):.0f} |"
        )
    scheduled = sum(v for k, v in counts.items() if k.startswith("scheduled_total"))
    dropped = sum(v for k, v in counts.items() if k.startswith("dropped_total"))
    lines += [
        "",
        f"- Throughput with follow-ups on vs off, same round: {_ratios(throughput)}.",
        f"- The same from server CPU per request (load-independent), same round: {_ratios(cpu)}.",
        f"- Follow-ups of the 'on' runs: {scheduled:.0f} scheduled, {dropped:.0f} dropped, of "
        f"{leads:.0f} leads answered (the scorer's own counters).",
    ]
    section = "\n".join(lines)
    write_section("scorer_followups", section)
    print(section)


if __name__ == "__main__":
    raise SystemExit(main())
