"""Benchmark (issue #18): the scorer's POST /v1/lead with durability bestEffort,
(1) on asyncio + h11 (uvicorn's pure-Python stack: the scorer as it served before uvloop and
httptools were installed), (2) on uvloop + httptools (what `leadops serve` picks now),
(3) the bare FastAPI endpoint (bench.bare_app) on uvloop + httptools, and (4) the scorer on
uvloop + httptools running a two-variant experiment (two 300-tree models, every lead scored
by both: the shadow scores), plus model time per lead for each model.

Run: `.venv/bin/python -m bench.scorer_experiment [--duration 10] [--rounds 3]`. Needs `wrk`.
Targets alternate within a round; goals are judged on same-round ratios (the machine is shared).
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from datetime import UTC, datetime
from typing import Any

from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.ports import free_port
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from bench.scorer import (
    LEAD,
    PINNING,
    ROOT,
    VARIED_LEADS,
    WORK,
    Run,
    Target,
    model_time,
    run_rounds,
)

H11 = "scorer, asyncio + h11"
FAST = "scorer, uvloop + httptools"
BARE = "bare FastAPI, uvloop + httptools"
EXPERIMENT = "scorer + 2-variant experiment (2 models, shadow), uvloop + httptools"
# Names run_rounds reads the scorer's own scoring histogram from.
SCORER_TARGETS = (H11, FAST, EXPERIMENT)


def _uvicorn(app: str, port: int, *, loop: str, http: str, factory: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--loop", loop]
    argv += ["--http", http, "--no-access-log", "--log-level", "warning"]
    return [*argv, "--factory"] if factory else argv


def two_models(trees: int = 300) -> tuple[Built, Built]:
    """The control's model and the challenger's (the next version): depth 6, other seeds."""
    WORK.mkdir(parents=True, exist_ok=True)
    control = build_artifact(WORK / "model-300.json", trees=trees, depth=6, rows=3000, seed=42)
    challenger = build_artifact(
        WORK / "model-300-b.json",
        version=control.version + 1,
        trees=trees,
        depth=6,
        rows=3000,
        seed=43,
    )
    return control, challenger


def experiment_spec(**variant_b: Any) -> dict[str, Any]:
    """The benchmark's experiment (LEADOPS_EXPERIMENT): 50/50 by lead; `variant_b`: what
    variant b has besides its weight (a modelVersion, flags)."""
    return {
        "name": "bench",
        "unit": "lead",
        "variants": [
            {"name": "control", "weight": 50},
            {"name": "b", "weight": 50, **variant_b},
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer_experiment", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument(
        "--pin", action="store_true", help="server on a CPU of its own, wrk and Redis on the rest"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.scorer_experiment: wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    control, challenger = two_models(args.trees)
    micro = {"control": model_time(control.path), "challenger": model_time(challenger.path)}
    redis_server = RedisServer(WORK)
    redis_server.start()
    if args.pin:
        PINNING.enable(redis=[redis_server.process])
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    scorer_env = base_env | {
        "LEADOPS_REDIS_URL": redis_server.url,
        "LEADOPS_API_KEYS": "bench-key-0123456789",
        "LEADOPS_DURABILITY": "bestEffort",
        "LEADOPS_MODEL_PATH": str(control.path),
    }
    experiment_env = scorer_env | {
        "LEADOPS_EXPERIMENT": json.dumps(experiment_spec(modelVersion=str(challenger.version))),
        "LEADOPS_VARIANT_MODELS": json.dumps(
            {str(challenger.version): {"path": str(challenger.path)}}
        ),
    }
    ports = {name: free_port() for name in (H11, FAST, BARE, EXPERIMENT)}
    url = "http://127.0.0.1:{}/v1/lead".format
    app = "leadops.scorer.app:create_app"
    targets: dict[str, Target] = {
        H11: (
            _uvicorn(app, ports[H11], loop="asyncio", http="h11", factory=True),
            scorer_env,
            "/health",
            url(ports[H11]),
            LEAD,
        ),
        FAST: (
            _uvicorn(app, ports[FAST], loop="uvloop", http="httptools", factory=True),
            scorer_env,
            "/health",
            url(ports[FAST]),
            LEAD,
        ),
        BARE: (
            _uvicorn("bench.bare_app:app", ports[BARE], loop="uvloop", http="httptools"),
            base_env | {"PYTHONPATH": str(ROOT)},
            "/health",
            url(ports[BARE]),
            LEAD,
        ),
        EXPERIMENT: (
            _uvicorn(app, ports[EXPERIMENT], loop="uvloop", http="httptools", factory=True),
            experiment_env,
            "/health",
            url(ports[EXPERIMENT]),
            LEAD,
        ),
    }
    try:
        results = run_rounds(targets, args=args, scorers=SCORER_TARGETS)
    finally:
        redis_server.stop()
    report(results, micro, args=args)
    return 0


def _best(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: r.rps)


def _ratios(values: list[float], *, percent: bool) -> str:
    shown = ", ".join(f"{v:.0%}" if percent else f"{v:.2f}x" for v in values)
    median = statistics.median(values)
    return f"{shown} (median {median:.0%})" if percent else f"{shown} (median {median:.2f}x)"


def report(
    results: dict[str, list[Run]],
    micro: dict[str, dict[str, float]],
    *,
    args: argparse.Namespace,
) -> None:
    per_round = [
        dict(zip(results, runs, strict=True)) for runs in zip(*results.values(), strict=True)
    ]
    speedup = [r[FAST].rps / r[H11].rps for r in per_round]
    vs_bare = [r[FAST].rps / r[BARE].rps for r in per_round]
    shadow = [r[EXPERIMENT].rps / r[FAST].rps for r in per_round]
    # Load-independent: server CPU per request, same round (throughput on an idle machine).
    cpu_speedup = [r[H11].cpu_us_per_request / r[FAST].cpu_us_per_request for r in per_round]
    cpu_vs_bare = [r[BARE].cpu_us_per_request / r[FAST].cpu_us_per_request for r in per_round]
    cpu_shadow = [r[FAST].cpu_us_per_request / r[EXPERIMENT].cpu_us_per_request for r in per_round]
    loads = [run.load_average for runs in results.values() for run in runs]
    lines = [
        "## Scorer with an experiment, and uvloop + httptools (bench/scorer_experiment.py)",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        f"- Command: `.venv/bin/python -m bench.scorer_experiment "
        f"--duration {args.duration} --rounds {args.rounds} --connections {args.connections}"
        f"{' --pin' if args.pin else ''}` ({PINNING.describe()})",
        f"- Every scorer: durability bestEffort, real Redis, a {args.trees}-tree depth-6 model; "
        "the experiment target adds a second model of the same size, a 50/50 split by lead, "
        "each lead answered by its variant's model and scored by the other one with its "
        "record's batch (the shadow scores in the record). Load: "
        f"`wrk -t1 -c{args.connections}` on loopback, one server at a time, targets alternate "
        "within each round; best round shown (median of rounds in brackets).",
        f"- Machine load: 1-minute load average after each run {min(loads):.1f} to "
        f"{max(loads):.1f}, median {statistics.median(loads):.1f}, on {os.cpu_count()} CPUs (the "
        "benchmark itself keeps one or two busy): absolute figures move between rounds; the "
        "goals are judged on same-round ratios.",
        "",
        "| target | req/s | p50 ms | p99 ms | errors | server CPU us/request | scoring us/lead |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        b = _best(runs)
        med = statistics.median(r.rps for r in runs)
        scoring = [r.scoring_us for r in runs if r.scoring_us is not None]
        lines.append(
            f"| {name} | {b.rps:.0f} ({med:.0f}) | {b.p50_ms:.2f} | {b.p99_ms:.2f} | "
            f"{sum(r.errors for r in runs)} | "
            f"{statistics.median(r.cpu_us_per_request for r in runs):.0f} | "
            + (f"{statistics.median(scoring):.0f} |" if scoring else "- |")
        )
    lines += [
        "",
        f"- uvloop + httptools vs asyncio + h11, the scorer, same round: "
        f"{_ratios(speedup, percent=False)}; goal >= 1.4x.",
        f"- Scorer vs the bare app, both on uvloop + httptools, same round: "
        f"{_ratios(vs_bare, percent=True)}; goal >= 70 %.",
        f"- Scorer with the two-variant experiment vs without, same round: "
        f"{_ratios(shadow, percent=True)}; goal >= 85 %.",
        "- The same three comparisons from server CPU per request (load-independent: the "
        "throughput ratio on an otherwise idle machine), same round: uvloop + httptools vs "
        f"h11 {_ratios(cpu_speedup, percent=False)}; scorer vs bare "
        f"{_ratios(cpu_vs_bare, percent=True)}; with vs without the experiment "
        f"{_ratios(cpu_shadow, percent=True)}.",
        "- Model time per lead per model (featurize.vector + compiled trees, best of 7 timeit "
        "repeats; goal <= 50 us): control "
        f"{micro['control']['featurize'] + micro['control']['compiled']:.1f} us, challenger "
        f"{micro['challenger']['featurize'] + micro['challenger']['compiled']:.1f} us for the "
        f"benchmark's lead again and again; over {VARIED_LEADS} different leads, one at a time, "
        f"control {micro['control']['featurize_varied'] + micro['control']['compiled_varied']:.1f}"
        " us, challenger "
        f"{micro['challenger']['featurize_varied'] + micro['challenger']['compiled_varied']:.1f}"
        " us (a lead repeated lets the CPU predict its walk through the trees). "
        "'scoring us/lead' is the server's own histogram under load: lead_to_row with PII "
        "redaction plus the answering model's featurize + trees (the other model's shadow "
        "score is computed with the record's batch, outside this histogram).",
    ]
    section = "\n".join(lines)
    write_section("scorer_experiment", section)
    print(section)


if __name__ == "__main__":
    raise SystemExit(main())
