"""Local control plane: cold build time, warm start to /readyz, memory of the running cluster.

    .venv/bin/python -m bench.control_plane [--runs 3] [--cold-build]

Warm start = LocalCluster.start() with the binaries already built (what every
`make test` session pays). `--cold-build` also times hack/control-plane/build.sh
with empty Go and binary caches (20+ minutes). Writes its own section of
docs/benchmarks.md; the reference figures are the issue's targets (warm start
<= 20 s, cold build <= 25 min), named as such in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import BUILD_SCRIPT, pinned_versions
from tests.fixtures.control_plane.cluster import wait_until

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START = "<!-- bench:control_plane:start -->"
END = "<!-- bench:control_plane:end -->"
COLD_DATA = re.compile(r"<!-- cold-build: (\{.*?\}) -->")
WARM_START_GOAL = 20.0
COLD_BUILD_GOAL = 25 * 60.0
WORKLOAD_REPLICAS = 10


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every live process in a process group, in KiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


def rss_by_component(cluster: LocalCluster) -> dict[str, float]:
    return {p.name: group_rss_kib(p.pid) / 1024 for p in cluster.processes}


def run_workload(cluster: LocalCluster) -> None:
    """A Deployment of WORKLOAD_REPLICAS pods rolled out to Available, then deleted."""
    apps: Any = client.AppsV1Api(cluster.api_client)
    name = "bench-web"
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": WORKLOAD_REPLICAS,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": "example.invalid/a:1"}]},
                },
            },
        },
    )
    wait_until(
        lambda: (
            apps.read_namespaced_deployment(name, "default").status.ready_replicas
            == WORKLOAD_REPLICAS
        ),
        what=f"{WORKLOAD_REPLICAS} ready replicas",
        timeout=120,
    )


def measure_warm(runs: int) -> list[dict[str, Any]]:
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="leadops-bench-") as tmp:
            cluster = LocalCluster(Path(tmp), nodes=2)
            cluster.start()
            try:
                idle = rss_by_component(cluster)
                started = time.monotonic()
                run_workload(cluster)
                rollout = time.monotonic() - started
                busy = rss_by_component(cluster)
            finally:
                cluster.stop()
            result = {
                "timings": dict(cluster.timings),
                "rss_idle": idle,
                "rss_busy": busy,
                "rollout": rollout,
            }
            print(f"run {i + 1}: {json.dumps(result)}", file=sys.stderr)
            results.append(result)
    return results


def measure_cold_build() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadops-cold-") as tmp:
        env = dict(
            os.environ,
            LEADOPS_CACHE_DIR=f"{tmp}/cache",
            GOCACHE=f"{tmp}/gocache",
            GOMODCACHE=f"{tmp}/gomodcache",
            LEADOPS_PYTHON=sys.executable,
        )
        started = time.monotonic()
        subprocess.run([str(BUILD_SCRIPT)], env=env, check=True, stdout=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        # The module cache is written read-only by Go; make it removable.
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
    return {"seconds": round(seconds), "measured": time.strftime("%Y-%m-%d"), "how": "bench"}


def render(warm: list[dict[str, Any]], cold: dict[str, Any] | None) -> str:
    pins = pinned_versions()

    def median(key: str) -> float:
        return float(statistics.median(r["timings"][key] for r in warm))

    readyz, nodes = median("apiserver_readyz"), median("workloads_possible")
    rollout = statistics.median(r["rollout"] for r in warm)
    components = list(warm[0]["rss_idle"])
    idle = {c: statistics.median(r["rss_idle"][c] for r in warm) for c in components}
    busy = {c: statistics.median(r["rss_busy"][c] for r in warm) for c in components}
    lines = [
        START,
        "## Local control plane (`bench/control_plane.py`)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"shared with other jobs (1-min load average {os.getloadavg()[0]:.1f} when the warm runs "
        f"ended). Kubernetes {pins['KUBERNETES_VERSION']}, "
        f"etcd {pins['ETCD_VERSION']}, kwok {pins['KWOK_VERSION']}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.control_plane --runs 3` "
        "(add `--cold-build` to rebuild everything from empty caches).",
        "",
        "| figure | measured | reference (issue target) | ratio |",
        "| --- | --- | --- | --- |",
        f"| warm start to API server `/readyz` (median of {len(warm)}) | {readyz:.1f} s "
        f"| {WARM_START_GOAL:.0f} s | {readyz / WARM_START_GOAL:.2f} |",
        f"| warm start to nodes Ready + default ServiceAccount (whole cluster usable) "
        f"| {nodes:.1f} s | {WARM_START_GOAL:.0f} s | {nodes / WARM_START_GOAL:.2f} |",
        f"| Deployment of {WORKLOAD_REPLICAS} replicas to all ready | {rollout:.1f} s | - | - |",
    ]
    if cold is not None:
        lines.append(
            f"| cold build, empty Go + binary caches ({cold['how']}, {cold['measured']}) "
            f"| {cold['seconds'] / 60:.1f} min | {COLD_BUILD_GOAL / 60:.0f} min "
            f"| {cold['seconds'] / COLD_BUILD_GOAL:.2f} |"
        )
    lines += [
        "",
        "Resident memory (MiB) per process group, idle after start and after the rollout:",
        "",
        "| component | idle | after rollout |",
        "| --- | --- | --- |",
        *(f"| {c} | {idle[c]:.0f} | {busy[c]:.0f} |" for c in components),
        f"| **total** | **{sum(idle.values()):.0f}** | **{sum(busy.values()):.0f}** |",
        "",
    ]
    if cold is not None:
        lines.append(f"<!-- cold-build: {json.dumps(cold)} -->")
    lines.append(END)
    return "\n".join(lines)


def write_section(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def previous_cold() -> dict[str, Any] | None:
    if not DOC.exists():
        return None
    match = COLD_DATA.search(DOC.read_text())
    return json.loads(match.group(1)) if match else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold-build", action="store_true")
    parser.add_argument(
        "--cold-build-seconds",
        type=int,
        help="record a cold build timed outside this script (e.g. by CI) instead of measuring",
    )
    parser.add_argument("--cold-build-note", default="build.sh timed by hand")
    args = parser.parse_args(argv)
    cold = previous_cold()
    if args.cold_build:
        cold = measure_cold_build()
    elif args.cold_build_seconds is not None:
        cold = {
            "seconds": args.cold_build_seconds,
            "measured": time.strftime("%Y-%m-%d"),
            "how": args.cold_build_note,
        }
    warm = measure_warm(args.runs)
    write_section(render(warm, cold))
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
