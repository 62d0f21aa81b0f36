"""Benchmark: Redis memory under a steady lead flow, retention off vs on (issue #21's goal: a
steady lead flow reaches a flat memory curve, and no expired lead is left in the export).

Run: `.venv/bin/python -m bench.retention [--rate 100] [--duration 90] [--lead-seconds 20]`.
Each target is a real scorer (`leadops serve`) on its own fresh redis-server; leads go at a
constant rate over HTTP, each with its own chat (so a chat memory list per lead), and every
tenth lead gets an outcome. Redis's used_memory and key count are sampled every few seconds.
Off: LEADOPS_RETENTION_SECONDS=0 (nothing expires, as before retention). On: the lead
retention given, outcomes twice that. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import API_KEY, ScorerServer

from bench.docsection import machine, write_section
from bench.scorer import LEAD, WORK
from leadops.scorer import store

SAMPLE_SECONDS = 5.0
OUTCOME_EVERY = 10
MAX_IN_FLIGHT = 64


@dataclass
class Trace:
    """One target's run: (seconds since start, used_memory bytes, keys) samples and counts."""

    name: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    sent: int = 0
    errors: int = 0
    exported: int = 0
    exported_gone: int = 0
    index: int = 0

    def memory_at(self, fraction: float) -> int:
        """used_memory of the sample nearest `fraction` of the run."""
        end = self.samples[-1][0]
        return min(self.samples, key=lambda s: abs(s[0] - fraction * end))[1]

    def tail_slope(self) -> float:
        """Bytes per second over the last half of the run (least squares)."""
        half = [(t, m) for t, m, _ in self.samples if t >= self.samples[-1][0] / 2]
        times = [t for t, _ in half]
        mean_t, mean_m = statistics.fmean(times), statistics.fmean(m for _, m in half)
        num = sum((t - mean_t) * (m - mean_m) for t, m in half)
        den = sum((t - mean_t) ** 2 for t in times)
        return num / den if den else 0.0


async def _drive(
    server: ScorerServer,
    r: redis.Redis,
    trace: Trace,
    *,
    rate: float,
    duration: float,
    keep: int,
) -> None:
    """Leads at `rate` for `duration` s; `keep`: the outcome retention in s (0: none)."""
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    headers = {"x-api-key": API_KEY}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10.0) as http:

        async def one(i: int) -> None:
            async with gate:
                try:
                    answer = await http.post("/v1/lead", json=LEAD | {"chat_id": f"chat-{i}"})
                    if answer.status_code != 200:
                        trace.errors += 1
                    elif i % OUTCOME_EVERY == 0:
                        lead_id = answer.json()["lead_id"]
                        body = {"lead_id": lead_id, "converted": i % 20 == 0}
                        if (await http.post("/v1/outcome", json=body)).status_code != 200:
                            trace.errors += 1
                except httpx.HTTPError:
                    trace.errors += 1

        async def sample(start: float) -> None:
            while True:
                info = r.info("memory")
                trace.samples.append(
                    (time.monotonic() - start, int(info["used_memory"]), r.dbsize())
                )
                await asyncio.sleep(SAMPLE_SECONDS)

        start = time.monotonic()
        sampler = asyncio.create_task(sample(start))
        tasks: set[asyncio.Task[None]] = set()
        total = int(rate * duration)
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        trace.sent = total
        sampler.cancel()
        info = r.info("memory")
        trace.samples.append((time.monotonic() - start, int(info["used_memory"]), r.dbsize()))
        # When each indexed lead got its outcome (the flow has stopped: no id comes after).
        scored: list[tuple[str, float]] = r.zrange(store.OUTCOMES_KEY, 0, -1, withscores=True)  # type: ignore[assignment]
        labelled = dict(scored)
        asked = time.time()
        export = await http.get("/ops/export/outcomes.csv")
        ids = [row["lead_id"] for row in csv.DictReader(io.StringIO(export.text))]
        trace.exported = len(ids)
        # Listed although its record's TTL (set with its outcome) ran out before the export
        # began: one second of grace for the clocks.
        trace.exported_gone = sum(1 for i in ids if keep and labelled[i] + keep < asked - 1.0)
        trace.index = int(r.zcard(store.OUTCOMES_KEY))


def run(
    name: str, model: Path, workdir: Path, *, env: dict[str, str], args: argparse.Namespace
) -> Trace:
    (workdir / name).mkdir()
    server_redis = RedisServer(workdir / name)
    server_redis.start()
    trace = Trace(name)
    try:
        scorer = ScorerServer(
            model=model,
            env=env | {"LEADOPS_API_KEYS": API_KEY, "LEADOPS_REDIS_URL": server_redis.url},
            log_path=workdir / f"{name}.log",
        )
        try:
            r = redis.Redis.from_url(server_redis.url, decode_responses=True)
            keep = int(env["LEADOPS_OUTCOME_RETENTION_SECONDS"])
            asyncio.run(_drive(scorer, r, trace, rate=args.rate, duration=args.duration, keep=keep))
        finally:
            scorer.stop()
    finally:
        server_redis.stop()
    return trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="leads per second")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of lead flow")
    parser.add_argument("--lead-seconds", type=int, default=20, help="lead retention (on)")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    model = WORK / "model-retention.json"
    build_artifact(model, trees=100, depth=4, rows=2000, seed=7)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    off = base | {"LEADOPS_RETENTION_SECONDS": "0", "LEADOPS_OUTCOME_RETENTION_SECONDS": "0"}
    on = base | {
        "LEADOPS_RETENTION_SECONDS": str(args.lead_seconds),
        "LEADOPS_OUTCOME_RETENTION_SECONDS": str(2 * args.lead_seconds),
    }
    with tempfile.TemporaryDirectory(prefix="leadops-bench-retention-") as tmp:
        traces = [
            run("off", model, Path(tmp), env=off, args=args),
            run("on", model, Path(tmp), env=on, args=args),
        ]
    report(traces, args=args)
    return 0


def report(traces: list[Trace], *, args: argparse.Namespace) -> None:
    off, on = traces
    mb = 1e6
    table = [
        f"| {t:.0f} | {m_off / mb:.2f} | {k_off} | {m_on / mb:.2f} | {k_on} |"
        for (t, m_off, k_off), (_, m_on, k_on) in zip(off.samples, on.samples, strict=False)
    ]
    grown_off = off.memory_at(1.0) - off.memory_at(0.0)
    grown_on = on.memory_at(1.0) - on.memory_at(0.0)
    last_off = off.memory_at(1.0) - off.memory_at(2 / 3)
    last_on = on.memory_at(1.0) - on.memory_at(2 / 3)
    command = (
        f"`.venv/bin/python -m bench.retention --rate {args.rate:g} --duration "
        f"{args.duration:g} --lead-seconds {args.lead_seconds}`"
    )
    lines = [
        "## Retention: Redis memory under a steady lead flow (`bench/retention.py`)",
        "",
        f"- Machine: {machine()}; redis-server on loopback, one fresh server per target.",
        f"- Command: {command} (under the heavy lock).",
        f"- Load: {args.rate:g} leads/s for {args.duration:g} s over HTTP to a real scorer, "
        "each lead with its own chat (a chat memory list each), an outcome for every "
        f"{OUTCOME_EVERY}th lead. Off: `LEADOPS_RETENTION_SECONDS=0` (nothing expires, as "
        f"before). On: leads and chat memory {args.lead_seconds} s, leads with an outcome "
        f"{2 * args.lead_seconds} s.",
        f"- Sent: off {off.sent} leads ({off.errors} errors), on {on.sent} ({on.errors} errors).",
        "",
        "| s | off: used_memory MB | off: keys | on: used_memory MB | on: keys |",
        "|---:|---:|---:|---:|---:|",
        *table,
        "",
        f"- used_memory at the end: off {off.memory_at(1.0) / mb:.2f} MB, on "
        f"{on.memory_at(1.0) / mb:.2f} MB; grown since the start: off {grown_off / mb:+.2f} MB, "
        f"on {grown_on / mb:+.2f} MB (off / on: **{grown_off / max(grown_on, 1):.1f}x**).",
        f"- Growth over the last third of the run: off {last_off / mb:+.2f} MB, on "
        f"{last_on / mb:+.2f} MB; slope over the last half: off {off.tail_slope() / 1e3:+.1f} "
        f"kB/s, on {on.tail_slope() / 1e3:+.1f} kB/s (flat: near 0).",
        f"- Export at the end: off {off.exported} rows, on {on.exported} rows; rows of a lead "
        "whose outcome retention had run out before the export began: off "
        f"{off.exported_gone}, on {on.exported_gone}; outcome index: off "
        f"{off.index} ids, on {on.index} ids (trimmed as their records expire).",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    write_section("retention", body)


if __name__ == "__main__":
    raise SystemExit(main())
