"""The operator, started exactly as the chart's Deployment starts it (same arguments and
environment), authenticated as the chart's ServiceAccount, reconciles a LeadModel on the
real control plane: the chart's least-privilege RBAC is enough, and nothing is Forbidden."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from leadops.contract import artifact as contract
from tests.fixtures.chart import (
    ChartOperator,
    install_crd,
    service_account_kubeconfig,
    start_chart_operator,
)
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.model_artifact import make_artifact
from tests.fixtures.ports import free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tenants" / "acme" / "leadmodel.yaml"


@pytest.fixture
def chart_operator(
    k8s_cluster: KubeCluster, k8s_namespace: str, tmp_path: Path
) -> Iterator[tuple[ChartOperator, int, int]]:
    install_crd(k8s_cluster)
    metrics_port, health_port = free_port(), free_port()
    values = [
        "--set", f"operator.watchNamespaces={{{k8s_namespace}}}",
        "--set", f"operator.metricsPort={metrics_port}",
        "--set", f"operator.healthPort={health_port}",
        "--set", "operator.resyncSeconds=5",
    ]  # fmt: skip
    operator = start_chart_operator(
        k8s_cluster,
        release=f"rb-{secrets.token_hex(3)}",
        namespace=k8s_namespace,
        values=values,
        workdir=tmp_path,
        # As in a Pod: every ready scorer Pod is asked, through the Service's EndpointSlices.
        env={"LEADOPS_SCORER_PODS": "true"},
    )
    try:
        yield operator, metrics_port, health_port
    finally:
        operator.stop()
        k8s_cluster.run_helm("uninstall", operator.release, "-n", k8s_namespace)


def _await(what: str, check: Any, *, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s; operator log:\n{log.read_text()}")
        time.sleep(0.2)


def test_operator_with_the_chart_rbac_reconciles_a_leadmodel(
    k8s_cluster: KubeCluster,
    k8s_namespace: str,
    chart_operator: tuple[ChartOperator, int, int],
    tmp_path: Path,
) -> None:
    operator, metrics_port, health_port = chart_operator
    process, log = operator.process, operator.log

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{health_port}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    _await("kopf liveness /healthz", healthy, timeout=60, log=log)
    opted_in = (("acme-redis", "url"), ("acme-scorer-api-key", "key"), ("acme-key-salt", "salt"))
    for secret, key in opted_in:
        k8s_cluster.run_kubectl(
            "create", "secret", "generic", secret, "-n", k8s_namespace,
            f"--from-literal={key}=unused-here",
        )  # fmt: skip
        # The Secrets opt in to the LeadModel: without it the spec is InvalidSpec.
        k8s_cluster.run_kubectl(
            "annotate", "secret", secret, "-n", k8s_namespace, "leadops.io/usable-by=acme"
        )
    example = yaml.safe_load(EXAMPLE.read_text())
    example["metadata"]["namespace"] = k8s_namespace
    # The scorer's autoscaler and disruption budget are made with the chart's RBAC too.
    example["spec"].setdefault("scorer", {})["autoscaling"] = {"minReplicas": 2, "maxReplicas": 4}
    k8s_cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(example))

    def reconciled() -> dict[str, Any] | None:
        out = k8s_cluster.run_kubectl("get", "leadmodel", "acme", "-n", k8s_namespace, "-o", "json")
        status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
        return status if status.get("observedGeneration") == 1 else None

    status = _await("status.observedGeneration", reconciled, timeout=90, log=log)
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Degraded"}, status
    names = {
        kind: k8s_cluster.run_kubectl(
            "get", kind, "-n", k8s_namespace, "-l", "leadops.io/leadmodel=acme", "-o", "name"
        ).stdout.split()
        for kind in (
            "cronjobs",
            "services",
            "serviceaccounts",
            "roles",
            "rolebindings",
            "horizontalpodautoscalers",
            "poddisruptionbudgets",
        )
    }
    assert names["cronjobs"] == ["cronjob.batch/acme-pii-backfill", "cronjob.batch/acme-train"]
    assert names["services"] == ["service/acme-scorer"]
    # The training Job's account, and the token-less ones of the backfill and the scorer.
    assert names["serviceaccounts"] == [
        "serviceaccount/acme-jobs",
        "serviceaccount/acme-pii-backfill",
        "serviceaccount/acme-scorer",
    ]
    assert names["roles"] == ["role.rbac.authorization.k8s.io/acme-jobs"]
    assert names["horizontalpodautoscalers"] == ["horizontalpodautoscaler.autoscaling/acme-scorer"]
    assert names["poddisruptionbudgets"] == ["poddisruptionbudget.policy/acme-scorer"]
    text = log.read_text()
    assert "Forbidden" not in text
    assert " 403" not in text
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert "leadops_operator_reconciles_total" in metrics
    _publish_as_the_jobs_account(k8s_cluster, k8s_namespace, tmp_path)


def _publish_as_the_jobs_account(cluster: KubeCluster, namespace: str, tmp_path: Path) -> None:
    """The training Job's Role (granted by the operator, so within the chart's RBAC) lets
    `leadops publish` read its LeadModel and publish a version owned by it."""
    kubeconfig = service_account_kubeconfig(
        cluster, tmp_path / "jobs.kubeconfig", namespace, "acme-jobs"
    )
    artifact = tmp_path / "model.json"
    artifact.write_bytes(contract.dumps(contract.seal(make_artifact(n=200))))
    leadops = Path(sys.executable).parent / "leadops"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    published = subprocess.run(
        [str(leadops), "publish", "--artifact", str(artifact), "--leadmodel", "acme",
         "--namespace", namespace],
        capture_output=True, text=True, check=False, timeout=120,
        env={**env, "KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    out = cluster.run_kubectl(
        "get", "configmap", "-n", namespace, "-l", "leadops.io/component=model", "-o", "json"
    )
    (cm,) = json.loads(out.stdout)["items"]
    assert [r["name"] for r in cm["metadata"]["ownerReferences"]] == ["acme"]
