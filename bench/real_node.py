"""The real node and the images: warm image build, node set-up, Pod start to Ready.

    .venv/bin/python -m bench.real_node [--runs N]

Runs hack/images/build.sh (warm: Debian root filesystems and buildah layers cached), then
starts `LocalCluster(real_node=True)` N times: each run times the node's set-up steps and
how long a Redis Pod and a scorer Pod (both from the images built here) take from
`kubectl apply` to Ready. Baseline, in the same run: the kwok cluster the other tests use
(`LocalCluster(nodes=1)`), its start and the same Redis Pod to Ready on a fake node that
runs nothing. Image sizes are the archive sizes the node imports. Writes its section of
docs/benchmarks.md. Needs root (network namespace, cgroups), like `make e2e`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.pods import REDIS_IMAGE, SCORER_IMAGE, apply, pod, wait_pod_phase
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import IMAGES_SCRIPT, NODE_IMAGES, pinned_versions

from bench.docsection import machine, write_section


def build_images() -> tuple[Path, float, dict[str, int]]:
    import subprocess  # noqa: PLC0415

    started = time.monotonic()
    out = subprocess.run([str(IMAGES_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    seconds = time.monotonic() - started
    images = Path(out.stdout.strip().splitlines()[-1])
    figures = {}
    for line in (images / "timings").read_text().splitlines():
        key, _, value = line.partition("=")
        figures[key] = int(value)
    return images, seconds, figures


def pod_to_ready(cluster: LocalCluster, namespace: str) -> dict[str, float]:
    cluster.run_kubectl("create", "namespace", namespace)
    cluster.run_kubectl("wait", "--for=create", "sa/default", "-n", namespace, "--timeout=30s")
    times = {}
    redis = pod(
        "redis",
        namespace,
        {"image": REDIS_IMAGE, "args": ["--save", "", "--protected-mode", "no"]},
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "redis", "namespace": namespace},
        "spec": {"selector": {"app": "redis"}, "ports": [{"port": 6379}]},
    }
    started = time.monotonic()
    apply(cluster, redis, service)
    wait_pod_phase(cluster, "redis", namespace, {"Running"}, timeout=120)
    times["redis"] = time.monotonic() - started
    scorer = pod(
        "scorer",
        namespace,
        {
            "image": SCORER_IMAGE,
            "command": ["leadops", "serve"],
            "args": ["--host", "0.0.0.0", "--port", "8080"],  # noqa: S104 (in a Pod)
            "env": [{"name": "LEADOPS_REDIS_URL", "value": "redis://redis:6379/0"}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1},
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "512Mi"},
            },
        },
    )
    started = time.monotonic()
    apply(cluster, scorer)
    wait_pod_phase(cluster, "scorer", namespace, {"Running"}, timeout=180)
    times["scorer"] = time.monotonic() - started
    return times


def run_kwok_baseline() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadops-bench-kwok-") as tmp:
        cluster = LocalCluster(Path(tmp), nodes=1)
        started = time.monotonic()
        cluster.start()
        total = time.monotonic() - started
        try:
            cluster.run_kubectl("create", "namespace", "bench")
            cluster.run_kubectl(
                "wait", "--for=create", "sa/default", "-n", "bench", "--timeout=30s"
            )
            began = time.monotonic()
            apply(cluster, pod("redis", "bench", {"image": REDIS_IMAGE}))
            wait_pod_phase(cluster, "redis", "bench", {"Running"}, timeout=60)
            redis = time.monotonic() - began
        finally:
            cluster.stop()
        return {"start": total, "pods": {"redis": redis}}


def run_once(images: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadops-bench-node-") as tmp:
        cluster = LocalCluster(
            Path(tmp),
            nodes=0,
            real_node=True,
            images=[images / f"{name}.tar" for name in NODE_IMAGES],
        )
        started = time.monotonic()
        cluster.start()
        total = time.monotonic() - started
        try:
            pods = pod_to_ready(cluster, "bench")
        finally:
            cluster.stop()
        return {"timings": dict(cluster.timings), "start": total, "pods": pods}


def _median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def render(
    images_warm: float, figures: dict[str, int], runs: list[dict[str, Any]], kwok: dict[str, Any]
) -> str:
    def step(end: str, begin: str | None = None) -> float:
        begun = _median(runs, "timings", begin) if begin else 0.0
        return _median(runs, "timings", end) - begun

    pins = pinned_versions()
    rows = [
        ("`hack/images/build.sh`, all six images, nothing changed", images_warm),
        ("start to API server `/readyz` (in the node's namespace)", step("apiserver_readyz")),
        ("containerd answering", step("containerd_ready", "workloads_possible")),
        (f"`ctr images import` of {', '.join(NODE_IMAGES)}",
         step("images_imported", "containerd_ready")),
        ("kubelet start to Node Ready", step("real_node_ready", "images_imported")),
        ("whole start: namespace to Node Ready + CoreDNS + kube-proxy", _median(runs, "start")),
        ("Redis Pod: `kubectl apply` to Ready", _median(runs, "pods", "redis")),
        ("scorer Pod: `kubectl apply` to Ready (readiness `/health`)",
         _median(runs, "pods", "scorer")),
    ]  # fmt: skip
    real_start, real_redis = _median(runs, "start"), _median(runs, "pods", "redis")
    baseline = [
        "| figure | real node | kwok node (baseline) | ratio |",
        "| --- | --- | --- | --- |",
        f"| whole cluster start | {real_start:.1f} s | {kwok['start']:.1f} s"
        f" | {real_start / kwok['start']:.1f} |",
        f"| Redis Pod to Ready | {real_redis:.1f} s | {kwok['pods']['redis']:.1f} s"
        f" | {real_redis / kwok['pods']['redis']:.1f} |",
    ]
    sizes = [
        f"| {name} | {figures[f'size_{name}'] / 1e6:.0f} |"
        for name in ("base", "pause", "redis", "scorer", "jobs", "operator")
    ]
    lines = [
        "## Real node and images (`bench/real_node.py`)",
        "",
        f"Machine: {machine()}. Kubernetes {pins['KUBERNETES_VERSION']}, containerd from Debian,"
        f" CoreDNS {pins['NODE_COREDNS_VERSION']}, images on Debian {pins['IMAGE_DEBIAN_SUITE']}.",
        "",
        f"Reproduce: `.venv/bin/python -m bench.real_node --runs {len(runs)}` as root"
        " (after `make images node`).",
        "",
        f"| figure (median of {len(runs)} warm runs) | seconds |",
        "| --- | --- |",
        *(f"| {label} | {value:.1f} |" for label, value in rows),
        "",
        "Against the kwok cluster the other tests use, started in the same run:",
        "",
        *baseline,
        "",
        "Image archives (uncompressed layers, what the node imports):",
        "",
        "| image | MB |",
        "| --- | --- |",
        *sizes,
        "",
        f"<!-- runs: {json.dumps(runs)} kwok: {json.dumps(kwok)} -->",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    images, images_warm, figures = build_images()
    kwok = run_kwok_baseline()
    runs = [run_once(images) for _ in range(args.runs)]
    write_section("real_node", render(images_warm, figures, runs, kwok))
    print(json.dumps({"images_warm": images_warm, "runs": runs, "kwok": kwok}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
