"""Benchmark `leadops pii-backfill --redis-mode cluster` on a Redis Cluster (3 masters + 3
replicas) against the same backfill on one redis-server, same data, same run (issue #21's
goal: >= 70 % of the single-node elements/s).

Run: `.venv/bin/python -m bench.pii_backfill_cluster [--keys 10000] [--per-key 100] [--rounds 3]`

Seeds bench.pii_backfill's data (1,000,000 list elements in 10,000 keys, 5 % with PII) into
both, then alternates: dry runs (re-runnable on the same data) round by round, then one real
run on each and a second real run (nothing left). Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import redis
from tests.fixtures.redis_cluster import RedisClusterServer
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from bench.pii_backfill import backfill, seed
from leadops.jobs.pii_backfill.cpu_quota import default_workers

CLUSTER = ("--redis-mode", "cluster")


def _rate(summary: dict[str, Any]) -> float:
    return float(summary["scanned_items"]) / float(summary["seconds"])


def measure(*, keys: int, per_key: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadops-bench-backfill-cluster-") as workdir:
        (Path(workdir) / "single").mkdir()
        single = RedisServer(Path(workdir) / "single")
        cluster = RedisClusterServer(Path(workdir) / "cluster")
        single.start()
        try:
            cluster.start()
            expected = seed(redis.Redis.from_url(single.url), keys=keys, per_key=per_key)
            seed(cluster.cluster_client(decode_responses=False), keys=keys, per_key=per_key)  # type: ignore[arg-type]
            per_master = [m.client().dbsize() for m in cluster.masters()]
            dry: dict[str, list[dict[str, Any]]] = {"single": [], "cluster": []}
            for round_ in range(rounds):
                dry["single"].append(backfill(single.url, "--dry-run"))
                dry["cluster"].append(backfill(cluster.url, "--dry-run", *CLUSTER))
                print(
                    f"round {round_ + 1} dry: single {_rate(dry['single'][-1]):,.0f}/s, "
                    f"cluster {_rate(dry['cluster'][-1]):,.0f}/s"
                )
            real = {
                "single": backfill(single.url),
                "cluster": backfill(cluster.url, *CLUSTER),
            }
            again = {
                "single": backfill(single.url),
                "cluster": backfill(cluster.url, *CLUSTER),
            }
            print(f"real: {real}\nagain: {again}")
        finally:
            cluster.stop()
            single.stop()
    return {
        "dry": dry,
        "real": real,
        "again": again,
        "expected": expected,
        "per_master": per_master,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--per-key", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    m = measure(keys=args.keys, per_key=args.per_key, rounds=args.rounds)
    elements = args.keys * args.per_key
    for runs in m["dry"].values():
        for summary in runs:
            assert summary["scanned_items"] == elements, "scan missed elements"
            assert summary["redacted_items"] == m["expected"], "wrong PII count"
    for summary in m["real"].values():
        assert summary["redacted_items"] == m["expected"]
    for summary in m["again"].values():
        assert summary["redacted_items"] == 0

    dry_ratios = [
        _rate(c) / _rate(s) for s, c in zip(m["dry"]["single"], m["dry"]["cluster"], strict=True)
    ]
    real_ratio = _rate(m["real"]["cluster"]) / _rate(m["real"]["single"])
    again_ratio = _rate(m["again"]["cluster"]) / _rate(m["again"]["single"])
    median = statistics.median(dry_ratios)

    def verdict(ratio: float) -> str:
        return "met" if ratio >= 0.7 else "**missed**"

    def row(name: str, single: list[dict[str, Any]], cluster: list[dict[str, Any]]) -> str:
        best_s = max(_rate(s) for s in single)
        best_c = max(_rate(c) for c in cluster)
        return f"| {name} | {best_s:,.0f} | {best_c:,.0f} | {best_c / best_s:.0%} |"

    lines = [
        "## PII backfill on Redis Cluster (`bench/pii_backfill_cluster.py`)",
        "",
        f"Machine: {machine()}; redis-server 7.0.15 on loopback: one server, and a cluster of 3 "
        "masters + 3 replicas (`redis-cli --cluster create --cluster-replicas 1`), all on the "
        "same 2 CPUs as the backfill and its workers.",
        f"Command: `.venv/bin/python -m bench.pii_backfill_cluster --keys {args.keys} --per-key "
        f"{args.per_key} --rounds {args.rounds}` (under the heavy lock): bench.pii_backfill's "
        f"data ({elements:,} list elements, 5 % with PII) in both; keys per master "
        f"{', '.join(str(n) for n in m['per_master'])}. Defaults: `--batch 500`, "
        f"`--workers {default_workers()}`. Elements/s = scanned elements / the run's `seconds`. "
        "Dry runs alternate one server / cluster, round by round; then one real run each.",
        "",
        "| run | one redis-server, elements/s | Redis Cluster, elements/s | cluster / one |",
        "|---|---:|---:|---:|",
        row(f"dry run, best of {args.rounds}", m["dry"]["single"], m["dry"]["cluster"]),
        row("real run", [m["real"]["single"]], [m["real"]["cluster"]]),
        row("second run (nothing left)", [m["again"]["single"]], [m["again"]["cluster"]]),
        "",
        f"Same-round dry-run ratios: {', '.join(f'{r:.0%}' for r in dry_ratios)} (median "
        f"{median:.0%}; goal >= 70 %: {verdict(median)}); real run {real_ratio:.0%} "
        f"({verdict(real_ratio)}); second run {again_ratio:.0%}. Both redacted exactly "
        f"{m['expected']:,} values and the second runs nothing.",
        "",
        "Where the difference goes: on a cluster each round's reads go through redis-py's "
        "ClusterPipeline (a slot lookup per command, each master its share), and the next "
        "round's reads are not overlapped with screening the last one (the single-node path "
        "sends the next round on a raw connection before looking at the previous one).",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("pii_backfill_cluster", text)


if __name__ == "__main__":
    main()
