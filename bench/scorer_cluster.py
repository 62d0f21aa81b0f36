"""Benchmark: the scorer's POST /v1/lead on Redis Cluster (3 masters + 3 replicas) vs one
redis-server, same run, rounds alternating (issue #21's goal: within 10 % of standalone).

Run: `.venv/bin/python -m bench.scorer_cluster [--duration 10] [--rounds 3]`. Needs `wrk`.
Both scorers run as in production (durability acknowledged: each lead is answered once its
batch is in Redis); each lead carries a chat_id, so each batch also pushes first messages (on
the cluster: guarded by a marker key on the chat list's slot). Writes its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from tests.fixtures.artifacts import build_artifact
from tests.fixtures.ports import free_port
from tests.fixtures.redis_cluster import RedisClusterServer
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from bench.scorer import LEAD, PINNING, WORK, Run, Target, best_run, run_rounds

STANDALONE = "scorer + one redis-server"
CLUSTER = "scorer + Redis Cluster (3 masters + 3 replicas)"
BODY: dict[str, object] = LEAD | {"chat_id": "bench-chat"}


def _target(model: Path, *, url: str, mode: str, base_env: dict[str, str]) -> Target:
    port = free_port()
    env = base_env | {
        "LEADOPS_API_KEYS": "bench-key-0123456789",
        "LEADOPS_REDIS_URL": url,
        "LEADOPS_REDIS_MODE": mode,
    }
    argv = [sys.executable, "-m", "leadops.cli", "serve", "--model", str(model)]
    argv += ["--port", str(port), "--log-level", "warning"]
    return (argv, env, "/health", f"http://127.0.0.1:{port}/v1/lead", BODY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer_cluster", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per target")
    parser.add_argument(
        "--pin", action="store_true", help="scorer on a CPU of its own, wrk and Redis on the rest"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.scorer_cluster: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    model = WORK / "model-300.json"
    build_artifact(model, trees=300, depth=6, rows=3000, seed=42)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    with tempfile.TemporaryDirectory(prefix="leadops-bench-cluster-") as workdir:
        single = RedisServer(Path(workdir) / "single")
        (Path(workdir) / "single").mkdir()
        cluster = RedisClusterServer(Path(workdir) / "cluster")
        single.start()
        try:
            cluster.start()
            if args.pin:
                PINNING.enable(redis=[single.process, *(node.process for node in cluster.nodes)])
            targets = {
                STANDALONE: _target(model, url=single.url, mode="standalone", base_env=base_env),
                CLUSTER: _target(model, url=cluster.url, mode="cluster", base_env=base_env),
            }
            results = run_rounds(targets, args=args, scorers=(STANDALONE, CLUSTER))
        finally:
            cluster.stop()
            single.stop()
    report(results, args=args)
    return 0


def report(results: dict[str, list[Run]], *, args: argparse.Namespace) -> None:
    ratios = [
        c.rps / s.rps for s, c in zip(results[STANDALONE], results[CLUSTER], strict=True)
    ]  # fmt: skip
    cpu = [
        s.cpu_us_per_request / c.cpu_us_per_request
        for s, c in zip(results[STANDALONE], results[CLUSTER], strict=True)
    ]
    median = statistics.median(ratios)
    lines = [
        "## Scorer on Redis Cluster (bench/scorer_cluster.py)",
        "",
        f"- Machine: {machine()}; redis-server 7.0.15 on loopback (the cluster: six "
        "processes on the same CPUs as wrk, and, unpinned, as the scorer).",
        f"- Command: `.venv/bin/python -m bench.scorer_cluster --duration {args.duration} "
        f"--rounds {args.rounds} --connections {args.connections}"
        f"{' --pin' if args.pin else ''}` ({PINNING.describe()}).",
        "- Load: `wrk -t1` on loopback, one scorer at a time, rounds alternate targets; durability "
        "acknowledged; every lead carries a chat_id (its first message is pushed too). Best "
        "round per target (median of rounds in brackets).",
        "",
        "| target | req/s | p50 ms | p99 ms | errors | server CPU us/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in (STANDALONE, CLUSTER):
        runs = results[name]
        best = best_run(runs)
        med = statistics.median(r.rps for r in runs)
        lines.append(
            f"| {name} | {best.rps:.0f} ({med:.0f}) | {best.p50_ms:.2f} | {best.p99_ms:.2f} | "
            f"{sum(r.errors for r in runs)} | {best.cpu_us_per_request:.0f} |"
        )
    verdict = "met" if median >= 0.9 else "**missed**"
    lines += [
        "",
        f"- Cluster vs standalone, same-round throughput ratios: "
        f"{', '.join(f'{r:.0%}' for r in ratios)} (median {median:.0%}; goal >= 90 %: {verdict}).",
        f"- Server CPU per request, standalone / cluster, same round: "
        f"{', '.join(f'{r:.0%}' for r in cpu)} (median {statistics.median(cpu):.0%}): "
        "a batch costs one script per master (three sends, on one connection a master, every "
        "share written before any reply is read: leadops.scorer.cluster_send) where one "
        "redis-server takes one script.",
        f"- Machine load (1-minute load average after each run): "
        f"{', '.join(f'{r.load_average:.1f}' for rs in results.values() for r in rs)}.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("scorer_cluster", text)


if __name__ == "__main__":
    raise SystemExit(main())
