"""Benchmark: three scorer replicas (real `leadops serve` processes) and a real redis-server
behind one loopback address (a round-robin TCP proxy), scored under load while 10 reloads,
sent through the same address, alternate two model versions.

Checked: every response is a 200 naming one of the two versions, every reload reaches every
replica (each one asked directly), none is left on the old version, 0 errors. Baseline in the
same run: the same load through the same proxy with no reload.

Run: `.venv/bin/python -m bench.scorer_replicas [--requests 6000] [--reloads 10]`.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tests.fixtures.artifacts import build_artifact
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.replicas import Report, RoundRobinProxy, reloads_under_load
from tests.fixtures.scorer import API_KEY, KEY_SALT, ScorerServer

from bench.docsection import machine, write_section
from leadops.pii import chat_keys

REPLICAS = 3


def _run(args: argparse.Namespace, work: Path) -> tuple[Report, Report, tuple[int, int]]:
    v1 = build_artifact(work / "v1.json", version=1_800_000_001, trees=100, seed=1)
    v2 = build_artifact(work / "v2.json", version=1_800_000_002, trees=100, seed=2)
    serving = work / "model.json"
    shutil.copy(v1.path, serving)
    salt = work / "key-salt"
    salt.write_bytes(KEY_SALT)
    redis_server = RedisServer(work)
    redis_server.start()
    scorers: list[ScorerServer] = []
    proxy: RoundRobinProxy | None = None
    try:
        env = {
            "LEADOPS_API_KEYS": API_KEY,
            "LEADOPS_REDIS_URL": redis_server.url,
            "LEADOPS_REPLICAS": str(REPLICAS),
            chat_keys.SALT_FILE_ENV: str(salt),
        }
        scorers = [
            ScorerServer(model=serving, env=env, log_path=work / f"scorer-{i}.log")
            for i in range(REPLICAS)
        ]
        proxy = RoundRobinProxy([s.port for s in scorers])
        load = functools.partial(
            reloads_under_load,
            address=proxy.url,
            replicas=[s.url for s in scorers],
            serving=serving,
            models=[(v1.path, v1.version), (v2.path, v2.version)],
            requests=args.requests,
            api_key=API_KEY,
            connections=args.connections,
        )
        baseline = asyncio.run(load(reloads=0))
        loaded = asyncio.run(load(reloads=args.reloads))
    finally:
        if proxy is not None:
            proxy.stop()
        for server in scorers:
            server.stop()
        redis_server.stop()
    return baseline, loaded, (v1.version, v2.version)


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.0f} ms"


def _section(
    args: argparse.Namespace, baseline: Report, loaded: Report, versions: tuple[int, int]
) -> str:
    ok = (
        not loaded.errors
        and not baseline.errors
        and set(loaded.versions) <= set(versions)
        and not loaded.unsettled
        and loaded.reload_answers == [200] * args.reloads
        and len(set(loaded.final_versions)) == 1
    )
    counts = ", ".join(f"v{v}: {n}" for v, n in sorted(loaded.versions.items(), key=str))
    settle = loaded.settle_seconds
    return f"""## Three scorer replicas agree on a reload (`bench/scorer_replicas.py`)

Machine: {machine()}.

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, while other helpers ran on the same 2 cores
(noisy: compare only the two rows of this run). Reproduce:
`.venv/bin/python -m bench.scorer_replicas --requests {args.requests} --reloads {args.reloads}`.
Three `leadops serve` processes (100-tree model, one real redis-server,
`LEADOPS_REPLICAS=3`) behind one loopback address: a round-robin TCP proxy in the benchmark's
process (each connection to the next replica), {args.connections} client connections. Each
reload (one each time another 1/{args.reloads + 1} of the requests is answered) swaps the file
and is sent through the proxy (so it reaches one replica); the benchmark then asks every
replica directly until all three serve the reloaded version.

| run | requests | errors | req/s | reloads (HTTP 200) | settled p50 / max | not settled |
| --- | ---: | ---: | ---: | ---: | --- | ---: |
| baseline: no reload | {baseline.responses} | {len(baseline.errors)} | \
{baseline.rate:.0f} | 0 | - | - |
| {args.reloads} reloads | {loaded.responses} | {len(loaded.errors)} | {loaded.rate:.0f} | \
{loaded.reload_answers.count(200)} of {len(loaded.reload_answers)} | \
{_ms(settle, 0.5)} / {_ms(settle, 1.0)} | {len(loaded.unsettled)} |

Throughput with reloads / without: {loaded.rate / baseline.rate if baseline.rate else 0:.2f}.
Responses by `model_version` under reloads: {counts} (the two versions are {versions[0]}
and {versions[1]}). After the last reload the replicas served {loaded.final_versions}.
"Settled"
is the time from the reload's 200 to the moment the last replica reported the new version (the
others follow on the pub/sub message; the poll, every 2 s, is the backstop).
Result: **{"met" if ok else "NOT met"}** (every response one of the two versions, no replica
left on the old one, 0 errors).
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.scorer_replicas")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--connections", type=int, default=24)
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        baseline, loaded, versions = _run(args, Path(tmp))
    body = _section(args, baseline, loaded, versions)
    print(body)
    if not args.no_write:
        write_section("scorer_replicas", body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
