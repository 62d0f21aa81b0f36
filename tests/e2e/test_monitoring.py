"""LeadOps under a real Prometheus Operator (issue #17): the LeadModel's ServiceMonitor makes
a Prometheus (3.5.0, run by the operator's StatefulSet) scrape every scorer Pod; its
PrometheusRule is loaded and, with the chart's `prometheusRule.for` in seconds, planted drift
fires LeadModelHighDrift and a critical-AUC model makes LeadModelCriticalAuc pending; the
chart's static rule replaces the per-LeadModel one, never adds to it.

The tests run in file order and share one Prometheus, operator and LeadModel (module
fixtures): each step starts from the state the one before left."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from leadops.operator import alerts
from tests.e2e.monitoring import Prometheus, create_prometheus, install_operator
from tests.e2e.pods import (
    JOBS_IMAGE,
    SCORER_IMAGE,
    apply,
    get_json,
    logs,
    namespace,
    pod,
    start_redis,
    wait_for,
    wait_pod_phase,
)
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import build_images, monitoring_home

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "leadops"
LEADOPS = str(Path(sys.executable).with_name("leadops"))
NAME = "acme"
REPLICAS = 2
# Seconds instead of the shipped 1h / 5m, through the chart (prometheusRule.for).
DRIFT_FOR = "10s"
CRITICAL_FOR = "1h"  # it stays pending: the critical model is rolled back long before
# The operator rolls a critical model back about 9 s after it starts: scraped every 2 s (the
# chart's scorerMonitor.interval), its Pod is seen before it goes.
SCRAPE_INTERVAL = "2s"
LEADOPS_ALERTS = alerts.alert_names()


@dataclass
class Stack:
    prometheus: Prometheus
    namespace: str  # the LeadModel's
    operator_namespace: str
    release: str


def _leadmodel(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "modelVersion": "",
            "promotion": "Automatic",
            # Low enough that the critical-AUC model passes the gate and reaches Pods.
            "gates": {"minAuc": "0.40", "minTrainSamples": 100, "maxPositiveRate": "0.95"},
            "training": {"schedule": "0 0 1 1 *", "suspend": True},
            "piiBackfill": {"schedule": "0 0 1 1 *", "suspend": True, "keyPattern": "mem:*"},
            "scorer": {
                "replicas": REPLICAS,
                "image": SCORER_IMAGE,
                "progressDeadlineSeconds": 60,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "apiKeySecretRef": {"name": "acme-scorer-api-key", "key": "key"},
            },
            "redis": {"urlSecretRef": {"name": "acme-redis", "key": "url"}},
            "history": {"limit": 10},
        },
    }


@pytest.fixture(scope="module")
def stack(real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    suffix = secrets.token_hex(3)
    monitoring, ns, operator_ns = f"monitoring-{suffix}", f"sales-{suffix}", f"leadops-{suffix}"
    release = f"mon-{suffix}"
    for name in (monitoring, ns, operator_ns):
        namespace(real_cluster, name)
    home = monitoring_home()
    image = (build_images() / "prometheus.ref").read_text().strip()
    version = "v" + image.rpartition(":")[2]
    started = time.monotonic()
    install_operator(real_cluster, home, monitoring)
    prometheus = create_prometheus(real_cluster, home, monitoring, image=image, version=version)
    print(
        f"Prometheus Operator and Prometheus {version} Ready in {time.monotonic() - started:.1f}s"
    )
    real_cluster.run_helm(
        "install", release, str(CHART), "-n", operator_ns,
        "--set", "image.pullPolicy=Never",
        "--set", f"operator.watchNamespaces={{{ns}}}",
        "--set", "operator.resyncSeconds=5",
        "--set", f"scorerMonitor.interval={SCRAPE_INTERVAL}",
        "--set", f"prometheusRule.for.LeadModelHighDrift={DRIFT_FOR}",
        "--set", f"prometheusRule.for.LeadModelCriticalAuc={CRITICAL_FOR}",
    )  # fmt: skip
    for name, key, value in (
        ("acme-redis", "url", f"redis://redis.{ns}.svc:6379/0"),
        ("acme-scorer-api-key", "key", secrets.token_hex(16)),
    ):
        real_cluster.run_kubectl(
            "create", "secret", "generic", name, "-n", ns, f"--from-literal={key}={value}"
        )
        real_cluster.run_kubectl(
            "annotate", "secret", name, "-n", ns, f"leadops.io/usable-by={NAME}"
        )
    start_redis(real_cluster, ns)
    try:
        yield Stack(prometheus, ns, operator_ns, release)
    finally:
        real_cluster.run_kubectl("delete", "leadmodel", NAME, "-n", ns, check=False)
        real_cluster.run_helm("uninstall", release, "-n", operator_ns)
        for name in (ns, operator_ns, monitoring):
            real_cluster.run_kubectl("delete", "namespace", name, "--wait=false", check=False)


def _serving_version(cluster: LocalCluster, ns: str) -> str | None:
    value = get_json(cluster, "leadmodel", NAME, "-n", ns).get("status", {}).get("servingVersion")
    return None if value in (None, "") else str(value)


def _publish(cluster: LocalCluster, ns: str, artifact: Path) -> None:
    """`leadops publish` from this machine with the cluster's kubeconfig, as a person would."""
    result = subprocess.run(
        [LEADOPS, "publish", "--kubeconfig", str(cluster.kubeconfig), "--artifact",
         str(artifact), "--leadmodel", NAME, "--namespace", ns],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _scorer_pods(cluster: LocalCluster, ns: str) -> set[str]:
    found = get_json(cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=scorer")
    return {
        p["metadata"]["name"]
        for p in found["items"]
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    }


def _series(prometheus: Prometheus, metric: str, ns: str) -> list[dict[str, Any]]:
    return prometheus.query(f'{metric}{{namespace="{ns}", service="{NAME}-scorer"}}')


# -- 1. the ServiceMonitor: every scorer Pod scraped -------------------------------------


def test_the_leadmodels_service_monitor_makes_prometheus_scrape_every_scorer_pod(
    real_cluster: LocalCluster, stack: Stack, tmp_path: Path
) -> None:
    ns = stack.namespace
    apply(real_cluster, _leadmodel(ns))
    wait_for(
        "the LeadModel reconciled once (its uid known to publish against)",
        lambda: get_json(real_cluster, "leadmodel", NAME, "-n", ns).get("status"),
        timeout=60,
    )
    good = build_artifact(tmp_path / "good.json", auc=0.8, version=int(time.time()) - 60)
    _publish(real_cluster, ns, good.path)
    wait_for("the first version serving", lambda: _serving_version(real_cluster, ns), timeout=240)

    def all_pods() -> set[str] | None:
        running = _scorer_pods(real_cluster, ns)
        return running if len(running) == REPLICAS else None

    wait_for(f"{REPLICAS} scorer Pods Running", all_pods, timeout=120)
    monitor = get_json(real_cluster, "servicemonitor", f"{NAME}-scorer", "-n", ns)
    assert monitor["metadata"]["ownerReferences"][0]["kind"] == "LeadModel"

    started = time.monotonic()

    def every_pod_up() -> list[dict[str, Any]] | None:
        # The Pods of now: a rollout may still be replacing the first ones.
        up = [s for s in _series(stack.prometheus, "up", ns) if s["value"][1] == "1"]
        scraped = {x["metric"]["pod"] for x in up}
        return up if scraped == _scorer_pods(real_cluster, ns) else None

    up = stack.prometheus.wait_for(
        "Prometheus scraping every scorer Pod (up == 1)", every_pod_up, timeout=180
    )
    pods = _scorer_pods(real_cluster, ns)
    assert len(pods) == REPLICAS
    print(f"every scorer Pod up in Prometheus {time.monotonic() - started:.1f}s after Ready")
    assert {x["metric"]["job"] for x in up} == {f"{NAME}-scorer"}
    auc = _series(stack.prometheus, "lead_model_auc", ns)
    assert {x["metric"]["pod"] for x in auc} == pods
    for series in auc:
        labels = series["metric"]
        assert (labels["namespace"], labels["service"]) == (ns, f"{NAME}-scorer"), labels
        assert float(series["value"][1]) == pytest.approx(0.8)


# -- 2. the PrometheusRule: loaded, once --------------------------------------------------


def _leadops_rules(prometheus: Prometheus) -> list[tuple[str, dict[str, Any]]]:
    return [(f, r) for f, r in prometheus.alert_rules() if r["name"] in LEADOPS_ALERTS]


def test_the_leadmodels_prometheus_rule_is_loaded_with_the_charts_for_durations(
    real_cluster: LocalCluster, stack: Stack
) -> None:
    ns = stack.namespace
    rule = get_json(real_cluster, "prometheusrule", f"{NAME}-alerts", "-n", ns)
    assert rule["metadata"]["ownerReferences"][0]["kind"] == "LeadModel"

    def every_alert() -> list[tuple[str, dict[str, Any]]] | None:
        rules = _leadops_rules(stack.prometheus)
        return rules if {x["name"] for _, x in rules} == LEADOPS_ALERTS else None

    loaded = stack.prometheus.wait_for(
        "every LeadOps alert loaded in Prometheus", every_alert, timeout=180
    )
    # One rule per alert, from the LeadModel's own PrometheusRule (the operator's file name
    # holds its namespace and name), scoped to its series, `for:` as the chart said.
    assert sorted(x["name"] for _, x in loaded) == sorted(LEADOPS_ALERTS)
    assert all(f"/{ns}-{NAME}-alerts-" in f for f, _ in loaded), {f for f, _ in loaded}
    by_name = {x["name"]: x for _, x in loaded}
    assert by_name["LeadModelHighDrift"]["duration"] == 10
    assert by_name["LeadModelCriticalAuc"]["duration"] == 3600
    assert by_name["LeadModelStale"]["duration"] == 15 * 60
    assert f'namespace="{ns}"' in by_name["LeadModelHighDrift"]["query"]


# -- 3. planted drift fires LeadModelHighDrift --------------------------------------------

ODD_LEADS = 240  # through the Service: each of the two Pods gets well over the 50 it needs


def test_planted_high_drift_fires_lead_model_high_drift(
    real_cluster: LocalCluster, stack: Stack
) -> None:
    ns = stack.namespace
    # Leads unlike training: huge visit counts, a new source, no details at all.
    script = f"""
import json, httpx
odd = {{"source": "tiktok", "attributes": {{"visits": 900.0, "plan": "enterprise"}}}}
errors = 0
with httpx.Client(base_url="http://{NAME}-scorer.{ns}.svc:8080", timeout=30) as http:
    for _ in range({ODD_LEADS}):
        errors += http.post("/v1/lead", json=odd).status_code != 200
print(json.dumps({{"errors": errors}}))
"""
    apply(
        real_cluster,
        pod("drift", ns, {"image": JOBS_IMAGE, "command": ["python", "-c", script]},
            restartPolicy="Never"),
    )  # fmt: skip
    wait_pod_phase(real_cluster, "drift", ns, {"Succeeded"}, timeout=180)
    planted = time.monotonic()
    assert json.loads(logs(real_cluster, "drift", ns).strip().splitlines()[-1]) == {"errors": 0}
    drift = stack.prometheus.wait_for(
        "lead_model_drift_score above 3 in Prometheus",
        lambda: [
            s for s in _series(stack.prometheus, "lead_model_drift_score", ns)
            if float(s["value"][1]) > 3
        ],
        timeout=120,
    )  # fmt: skip
    seen = time.monotonic()
    firing = stack.prometheus.wait_for(
        "LeadModelHighDrift firing",
        lambda: [
            a for a in stack.prometheus.alerts("LeadModelHighDrift", ns) if a["state"] == "firing"
        ],
        timeout=120,
    )
    fired = time.monotonic()
    print(
        f"planted drift: scraped above 3 after {seen - planted:.1f}s, LeadModelHighDrift firing"
        f" {fired - planted:.1f}s after the leads were sent (for: {DRIFT_FOR})"
    )
    (alert,) = firing
    assert alert["labels"]["service"] == f"{NAME}-scorer"
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) > 3, (alert, drift)


# -- 4. a critical-AUC model: LeadModelCriticalAuc pending --------------------------------


def test_a_critical_auc_model_makes_lead_model_critical_auc_pending(
    real_cluster: LocalCluster, stack: Stack, tmp_path: Path
) -> None:
    ns = stack.namespace
    assert not stack.prometheus.alerts("LeadModelCriticalAuc", ns)
    bad = build_artifact(tmp_path / "critical.json", auc=0.50, version=int(time.time()))
    _publish(real_cluster, ns, bad.path)
    published = time.monotonic()
    # The critical Pod is scraped until the rollback removes it, so the alert may be pending
    # only for a while: Prometheus's own ALERTS series keeps that it was. (No earlier pending:
    # a no-model scorer exports NaN, which no AUC rule matches.)
    selector = f'alertname="LeadModelCriticalAuc", alertstate="pending", namespace="{ns}"'
    stack.prometheus.wait_for(
        "LeadModelCriticalAuc pending",
        lambda: stack.prometheus.query(f"count_over_time(ALERTS{{{selector}}}[10m])"),
        timeout=180,
    )
    print(
        f"critical-AUC model: LeadModelCriticalAuc pending {time.monotonic() - published:.1f}s"
        " after `leadops publish` returned"
    )
    (lowest,) = stack.prometheus.query(
        f'min(min_over_time(lead_model_auc{{namespace="{ns}", service="{NAME}-scorer"}}[10m]))'
    )
    assert float(lowest["value"][1]) == pytest.approx(0.50)
    assert not [
        a for a in stack.prometheus.alerts("LeadModelCriticalAuc", ns) if a["state"] == "firing"
    ]


# -- 5. the chart's static rules replace the operator's, never add to them ----------------


def test_the_charts_static_rule_replaces_the_per_leadmodel_rule_in_prometheus(
    real_cluster: LocalCluster, stack: Stack
) -> None:
    ns = stack.namespace
    real_cluster.run_helm(
        "upgrade", stack.release, str(CHART), "-n", stack.operator_namespace, "--reuse-values",
        "--set", "prometheusRule.enabled=true",
    )  # fmt: skip
    wait_for(
        "the operator's own PrometheusRule removed (LEADOPS_ALERT_RULES=false)",
        lambda: (
            real_cluster.run_kubectl(
                "get", "prometheusrule", f"{NAME}-alerts", "-n", ns, check=False
            ).returncode
            != 0
        ),
        timeout=180,
        interval=1,
    )

    def only_the_static_rule() -> list[tuple[str, dict[str, Any]]] | None:
        rules = _leadops_rules(stack.prometheus)
        files = {f for f, _ in rules}
        if any(f"{ns}-{NAME}-alerts" in f for f in files) or not rules:
            return None
        return rules

    rules = stack.prometheus.wait_for(
        "Prometheus holding the chart's rule only", only_the_static_rule, timeout=240
    )
    # Each LeadOps alert exactly once, unscoped (cluster-wide), with the chart's `for:`.
    assert sorted(x["name"] for _, x in rules) == sorted(LEADOPS_ALERTS)
    static = f"/{stack.operator_namespace}-{stack.release}-leadops-"
    assert all(static in f for f, _ in rules), {f for f, _ in rules}
    by_name = {x["name"]: x for _, x in rules}
    assert by_name["LeadModelHighDrift"]["duration"] == 10
    assert "namespace=" not in by_name["LeadModelHighDrift"]["query"]
