"""The chart, the CRD, the examples and the operations guide's kubectl commands against the
real local control plane (tests/fixtures/k8s_cluster.py)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.fixtures.chart import install_crd
from tests.fixtures.control_plane import KubeCluster
from tests.integration.guide import bash_blocks

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "leadops"
EXAMPLE = ROOT / "examples" / "tenants" / "acme" / "leadmodel.yaml"
# Kinds whose CRDs (Prometheus Operator) the bare control plane does not have.
NEEDS_PROMETHEUS_OPERATOR = {"ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="module")
def leadmodel_crd(k8s_cluster: KubeCluster) -> None:
    """The LeadModel CRD installed for real (idempotent: other suites may apply it too)."""
    install_crd(k8s_cluster)


def test_rendered_chart_passes_server_side_dry_run(
    k8s_cluster: KubeCluster, k8s_namespace: str, leadmodel_crd: None
) -> None:
    for values in ([], ["--set", "operator.watchNamespaces={" + k8s_namespace + "}"]):
        rendered = k8s_cluster.run_helm(
            "template", "lo", str(CHART), "--namespace", k8s_namespace,
            "--set", "prometheusRule.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
            *values,
        )  # fmt: skip
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        applicable = [d for d in docs if d["kind"] not in NEEDS_PROMETHEUS_OPERATOR]
        assert len(applicable) >= 8
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": applicable})
        result = k8s_cluster.run_kubectl(
            "apply", "--server-side", "--dry-run=server", "--field-manager=leadops-tests",
            "-f", "-", input_text=manifest,
        )  # fmt: skip
        for doc in applicable:
            assert f"{doc['metadata']['name']} serverside-applied (server dry run)" in result.stdout
    rbac: Any = client.RbacAuthorizationV1Api(k8s_cluster.api_client)
    names = [r.metadata.name for r in rbac.list_cluster_role().items]
    assert "lo-leadops-framework" not in names, "a dry run persists nothing"


def test_server_side_dry_run_rejects_a_broken_render(
    k8s_cluster: KubeCluster, k8s_namespace: str
) -> None:
    """The check above can fail: a Deployment with an invalid field is refused by the API."""
    rendered = k8s_cluster.run_helm(
        "template", "lo", str(CHART), "--namespace", k8s_namespace,
        "--show-only", "templates/deployment.yaml",
        "--set", "operator.metricsPort=8081",  # same port as health: the API refuses it
    )  # fmt: skip
    result = k8s_cluster.run_kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-",
        input_text=rendered.stdout, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "containerPort" in result.stderr or "Duplicate value" in result.stderr


@pytest.fixture
def installed_release(k8s_cluster: KubeCluster, k8s_namespace: str) -> Iterator[str]:
    release = f"lo-{secrets.token_hex(3)}"
    k8s_cluster.run_helm(
        "install", release, str(CHART), "--namespace", k8s_namespace,
        "--skip-crds", "--wait", "--timeout", "120s",
    )  # fmt: skip
    try:
        yield release
    finally:
        k8s_cluster.run_helm(
            "uninstall", release, "--namespace", k8s_namespace, "--wait", check=False
        )


def test_helm_install_brings_the_operator_deployment_up(
    k8s_cluster: KubeCluster, k8s_namespace: str, leadmodel_crd: None, installed_release: str
) -> None:
    """A real install: the Deployment becomes Available (kwok runs the pod), RBAC is bound."""
    apps: Any = client.AppsV1Api(k8s_cluster.api_client)
    deployment = apps.read_namespaced_deployment(f"{installed_release}-leadops", k8s_namespace)
    # Two replicas by default: a leader and a standby that takes the Lease over.
    assert deployment.spec.replicas == 2
    assert deployment.status.available_replicas == 2
    # The operator's ServiceAccount may do what reconciling needs, and nothing it does not.
    sa = f"system:serviceaccount:{k8s_namespace}:{installed_release}-leadops"
    allowed = {
        ("patch", "leadmodels.leadops.io/status"): "yes",
        ("create", "cronjobs.batch"): "yes",
        ("create", "configmaps"): "yes",
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"): "yes",
        ("get", "secrets"): "yes",
        ("list", "secrets"): "no",
        ("update", "leadmodels.leadops.io"): "no",
        ("update", "leadmodels.leadops.io/status"): "no",
        ("delete", "namespaces"): "no",
        # No more than the operator needs: no Pods, Jobs created only (the bootstrap), no way
        # to grant what it lacks.
        ("create", "pods"): "no",
        ("create", "jobs.batch"): "yes",  # the bootstrap Job, once
        ("patch", "jobs.batch"): "no",
        ("delete", "jobs.batch"): "no",
        ("escalate", "roles.rbac.authorization.k8s.io"): "no",
        ("bind", "roles.rbac.authorization.k8s.io"): "no",
        # The follow-ups Deployment goes when spec.followUps does (the LeadModel stays, so the
        # garbage collector would not remove it).
        ("delete", "deployments.apps"): "yes",
        ("delete", "statefulsets.apps"): "no",
    }
    for (verb, resource), expected in allowed.items():
        answer = k8s_cluster.run_kubectl(
            "auth", "can-i", verb, resource, "--as", sa, "-n", k8s_namespace, check=False
        ).stdout.strip()
        assert answer == expected, f"{sa} can-i {verb} {resource}: {answer}"


def test_example_leadmodel_passes_server_side_dry_run(
    k8s_cluster: KubeCluster, k8s_namespace: str, leadmodel_crd: None
) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    example["metadata"]["namespace"] = k8s_namespace
    result = k8s_cluster.run_kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input_text=json.dumps(example)
    )
    assert "leadmodel.leadops.io/acme serverside-applied (server dry run)" in result.stdout
    example["spec"]["gates"]["minAuc"] = "1.5"
    refused = k8s_cluster.run_kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-",
        input_text=json.dumps(example), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "spec.gates.minAuc" in refused.stderr


# Commands that need only the API server: no scorer, no operator process, no container logs.
API_ONLY = re.compile(
    r"^((PREVIOUS|JOB)=.*|kubectl (get|patch|describe) leadmodels?\b.*"
    r"|kubectl (create job|wait|get jobs|get events)\b.*)$"
)


def _kubectl_lines(block: str) -> list[str]:
    """The lines of a block that only need the API server."""
    return [line for line in block.splitlines() if API_ONLY.match(line.strip())]


def _run_doc_lines(k8s_cluster: KubeCluster, lines: list[str], namespace: str) -> str:
    env = {
        **os.environ,
        "KUBECONFIG": str(k8s_cluster.kubeconfig),
        "PATH": f"{k8s_cluster.kubectl.parent}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NS": namespace,
        "LM": "acme",
    }
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    # The guide's waits allow minutes; here a Job that should complete in seconds must.
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, env=env, timeout=120
    )
    assert result.returncode == 0, f"{script}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def acme(k8s_cluster: KubeCluster, k8s_namespace: str, leadmodel_crd: None) -> dict[str, Any]:
    """The example LeadModel, created for real, with the status an operator would have written
    after two promotions (so the rollback commands have a previous version to go to)."""
    example = yaml.safe_load(EXAMPLE.read_text())
    example["metadata"]["namespace"] = k8s_namespace
    k8s_cluster.run_kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(example))
    status = {"status": {"servingVersion": "1730570000", "previousVersion": "1730483820"}}
    k8s_cluster.run_kubectl(
        "patch", "leadmodel", "acme", "-n", k8s_namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    return dict(example)


def _spec(k8s_cluster: KubeCluster, namespace: str) -> dict[str, Any]:
    out = k8s_cluster.run_kubectl("get", "leadmodel", "acme", "-n", namespace, "-o", "json").stdout
    spec: dict[str, Any] = json.loads(out)["spec"]
    return spec


def test_operations_guide_emergency_rollback_commands(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]
) -> None:
    blocks = bash_blocks("Emergency rollback")
    assert len(blocks) == 3
    rollback, back_to_automatic = _kubectl_lines(blocks[0]), _kubectl_lines(blocks[2])
    assert len(rollback) == 4
    out = _run_doc_lines(k8s_cluster, rollback, k8s_namespace)
    assert "1730570000 1730483820" in out
    assert _spec(k8s_cluster, k8s_namespace)["modelVersion"] == "1730483820"
    _run_doc_lines(k8s_cluster, back_to_automatic, k8s_namespace)
    assert _spec(k8s_cluster, k8s_namespace)["modelVersion"] == ""


def test_operations_guide_disable_retraining_and_manual_promotion_commands(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]
) -> None:
    suspend, manual = (_kubectl_lines(b) for b in bash_blocks("Disable retraining"))
    assert len(suspend) == 3
    out = _run_doc_lines(k8s_cluster, suspend[:2], k8s_namespace)
    assert out.splitlines() == ["leadmodel.leadops.io/acme patched", "true"]
    assert _spec(k8s_cluster, k8s_namespace)["training"]["suspend"] is True
    _run_doc_lines(k8s_cluster, suspend[2:], k8s_namespace)
    assert _spec(k8s_cluster, k8s_namespace)["training"]["suspend"] is False
    _run_doc_lines(k8s_cluster, manual, k8s_namespace)
    assert _spec(k8s_cluster, k8s_namespace)["promotion"] == "Manual"


def test_operations_guide_lock_minimum_auc_commands(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]
) -> None:
    lock = _kubectl_lines(bash_blocks("Lock the minimum AUC")[0])
    assert len(lock) == 2
    k8s_cluster.run_kubectl(
        "patch", "leadmodel", "acme", "-n", k8s_namespace, "--type=merge",
        "-p", '{"spec":{"gates":{"minAuc":"0.60"}}}',
    )  # fmt: skip
    out = _run_doc_lines(k8s_cluster, lock, k8s_namespace)
    assert out.splitlines() == ["leadmodel.leadops.io/acme patched", "0.70"]
    assert _spec(k8s_cluster, k8s_namespace)["gates"]["minAuc"] == "0.70"


def test_operations_guide_troubleshooting_leadmodel_queries(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]
) -> None:
    stale = _kubectl_lines(bash_blocks("LeadModelStale")[0])
    assert len(stale) == 4
    out = _run_doc_lines(k8s_cluster, [*stale[:2], stale[3]], k8s_namespace)
    assert out.splitlines()[0] == "false Automatic"
    backfill = _kubectl_lines(bash_blocks("LeadModelBackfillFailed")[0])
    out = _run_doc_lines(k8s_cluster, backfill[:1], k8s_namespace)
    assert json.loads(out) == {"key": "url", "name": "acme-redis"}


def test_operations_guide_model_status_commands(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]
) -> None:
    lines = _kubectl_lines(bash_blocks("Model status")[0])
    assert len(lines) == 3
    out = _run_doc_lines(k8s_cluster, lines, k8s_namespace)
    assert re.search(rf"^{k8s_namespace}\s+acme\s+1730570000", out, re.MULTILINE), out
    # -o wide adds Ready's reason, the pin, a candidate awaiting Manual promotion and how many
    # scorer Pods reported their version.
    assert re.search(r"READY\s+EXPERIMENT\s+REASON\s+PINNED\s+AWAITING\s+REPORTED\s+AGE", out), out
    assert re.search(r"Previous Version:\s+1730483820", out), out


@pytest.fixture
def acme_cronjobs(k8s_cluster: KubeCluster, k8s_namespace: str, acme: dict[str, Any]) -> None:
    """The Jobs' ServiceAccount and the CronJobs exactly as the operator's builders make them
    (no operator process runs here: the doc commands only need these to exist)."""
    from leadops.operator import builders, spec  # noqa: PLC0415 (operator code, k8s tests only)

    uid = json.loads(
        k8s_cluster.run_kubectl(
            "get", "leadmodel", "acme", "-n", k8s_namespace, "-o", "json"
        ).stdout
    )["metadata"]["uid"]
    owner = builders.Owner(name="acme", namespace=k8s_namespace, uid=uid)
    lm = spec.LeadModelSpec.model_validate(acme["spec"])
    for child in (
        builders.service_account(owner),  # the Jobs' identity: their pods need it to start
        builders.role(owner),
        builders.role_binding(owner),
        builders.tokenless_service_account(
            owner, account="backfill_account", component="pii-backfill"
        ),
        builders.training_cronjob(owner, lm),
        builders.backfill_cronjob(owner, lm),
    ):
        k8s_cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(child))


def test_operations_guide_manual_retrain_and_dry_run_backfill_commands(
    k8s_cluster: KubeCluster, k8s_namespace: str, acme_cronjobs: None
) -> None:
    retrain = _kubectl_lines(bash_blocks("LeadModelHighDrift")[0])
    assert len(retrain) == 1
    _run_doc_lines(k8s_cluster, retrain, k8s_namespace)
    backfill = _kubectl_lines(bash_blocks("PII backfill by hand")[0])
    assert len(backfill) == 7, backfill
    out = _run_doc_lines(k8s_cluster, backfill, k8s_namespace)
    assert out.count("condition met") == 1, out
    assert _spec(k8s_cluster, k8s_namespace)["piiBackfill"]["dryRun"] is False
    batch: Any = client.BatchV1Api(k8s_cluster.api_client)
    jobs = {j.metadata.name: j for j in batch.list_namespaced_job(k8s_namespace).items}
    assert len([n for n in jobs if n.startswith("acme-train-manual-")]) == 1
    backfills = [j for n, j in jobs.items() if n.startswith("acme-pii-backfill-manual-")]
    assert len(backfills) == 2
    container = backfills[0].spec.template.spec.containers[0]
    assert container.command == ["leadops"]
    assert container.args[0] == "pii-backfill"
    stale = _kubectl_lines(bash_blocks("LeadModelStale")[0])
    assert len(stale) == 4
    out = _run_doc_lines(k8s_cluster, stale[2:3], k8s_namespace)
    assert out.count("acme-") == 3
    failed = _kubectl_lines(bash_blocks("LeadModelBackfillFailed")[0])
    out = _run_doc_lines(k8s_cluster, failed[1:], k8s_namespace)
    assert out.count("acme-pii-backfill-manual-") == 2


@pytest.fixture
def argocd_cm(k8s_cluster: KubeCluster) -> Iterator[None]:
    """An `argocd` namespace with an argocd-cm ConfigMap, as an Argo CD install has."""
    k8s_cluster.run_kubectl("create", "namespace", "argocd")
    k8s_cluster.run_kubectl(
        "create", "configmap", "argocd-cm", "-n", "argocd", "--from-literal=url=https://argo"
    )
    try:
        yield
    finally:
        k8s_cluster.run_kubectl("delete", "namespace", "argocd", "--wait=false")


def test_argocd_cm_patch_from_the_gitops_guide_installs_the_health_check(
    k8s_cluster: KubeCluster, argocd_cm: None
) -> None:
    guide = (ROOT / "docs" / "gitops.md").read_text()
    block = re.search(
        r"```bash\n(kubectl -n argocd patch configmap argocd-cm.*?)\n```", guide, re.S
    )
    assert block
    patch = block.group(1).split("\nkubectl apply", 1)[0]
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{patch}\n"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
        env={
            **os.environ,
            "KUBECONFIG": str(k8s_cluster.kubeconfig),
            "PATH": f"{k8s_cluster.kubectl.parent}:{os.environ['PATH']}",
        },
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(
        k8s_cluster.run_kubectl(
            "get", "configmap", "argocd-cm", "-n", "argocd", "-o", "json"
        ).stdout
    )["data"]
    lua = (ROOT / "examples" / "argocd" / "leadmodel-health.lua").read_text()
    assert data == {
        "url": "https://argo",
        "resource.customizations.health.leadops.io_LeadModel": lua,
    }


def test_operations_guide_leadops_cli_commands(
    k8s_cluster: KubeCluster,
    k8s_namespace: str,
    acme: dict[str, Any],
    acme_cronjobs: None,
    tmp_path: Path,
) -> None:
    """`leadops rollback/status/backfill` as the guide writes them, with two real model
    versions published to the registry by `leadops publish` (what the training Job runs)."""
    from tests.fixtures.artifacts import build_artifact  # noqa: PLC0415 (trains xgboost)

    env = {
        **os.environ,
        "KUBECONFIG": str(k8s_cluster.kubeconfig),
        "PATH": f"{k8s_cluster.kubectl.parent}:{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for version, seed in ((1730483820, 0), (1730570000, 1)):
        built = build_artifact(tmp_path / f"{version}.json", version=version, rows=200, seed=seed)
        subprocess.run(
            ["leadops", "publish", "--artifact", str(built.path), "--leadmodel", "acme",
             "--namespace", k8s_namespace],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
    block = next(b for b in bash_blocks("Emergency rollback") if "leadops rollback" in b)
    to_previous, to_version = _cli_lines(block)
    _run_doc_lines(k8s_cluster, [to_previous], k8s_namespace)
    assert _spec(k8s_cluster, k8s_namespace)["modelVersion"] == "1730483820"
    left = json.loads(
        k8s_cluster.run_kubectl(
            "get", "configmap", "acme-model-1730570000", "-n", k8s_namespace, "-o", "json"
        ).stdout
    )["metadata"]["annotations"]
    assert (left["leadops.io/rollback-reason"], left["leadops.io/rollback-message"]) == (
        "ManualRollback", "bad scores",
    )  # fmt: skip
    _run_doc_lines(k8s_cluster, [to_version], k8s_namespace)
    assert _spec(k8s_cluster, k8s_namespace)["modelVersion"] == "1730483820"
    for bad, words in (("1700000000", "not in the registry"), ("1730570000", "rolled back")):
        refused = subprocess.run(
            ["bash", "-c", to_version.replace("1730483820", bad)],
            capture_output=True, text=True, check=False, timeout=60,
            env={**env, "NS": k8s_namespace, "LM": "acme"},
        )  # fmt: skip
        assert refused.returncode == 2
        assert len(refused.stderr.strip().splitlines()) == 1
        assert words in refused.stderr
    (status,) = _cli_lines(bash_blocks("Model status")[0])
    out = _run_doc_lines(k8s_cluster, [status], k8s_namespace)
    assert re.search(rf"^{k8s_namespace}\s+acme\s+1730570000", out, re.MULTILINE), out
    dry_run, real = _cli_lines(
        next(b for b in bash_blocks("PII backfill by hand") if "leadops" in b)
    )
    _run_doc_lines(k8s_cluster, [dry_run], k8s_namespace)
    # As the guide says: review the dry run's result first (its Job completes), then run.
    k8s_cluster.run_kubectl(
        "wait", "--for=condition=complete", "jobs", "--all", "-n", k8s_namespace, "--timeout=60s"
    )
    _run_doc_lines(k8s_cluster, [real], k8s_namespace)
    batch: Any = client.BatchV1Api(k8s_cluster.api_client)
    args = [
        j.spec.template.spec.containers[0].args
        for j in batch.list_namespaced_job(k8s_namespace).items
    ]
    assert sorted("--dry-run" in a for a in args) == [False, True]


def _cli_lines(block: str) -> list[str]:
    return [
        line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("leadops ")
    ]


def test_readme_install_of_the_example_tenant(
    k8s_cluster: KubeCluster, leadmodel_crd: None
) -> None:
    """README: `kubectl apply -k examples/tenants/acme` then `kubectl get leadmodels -A`."""
    readme = (ROOT / "README.md").read_text()
    assert "kubectl apply -k examples/tenants/acme" in readme
    try:
        k8s_cluster.run_kubectl("apply", "-k", str(ROOT / "examples" / "tenants" / "acme"))
        listed = k8s_cluster.run_kubectl("get", "leadmodels", "-A").stdout
        assert re.search(r"^sales\s+acme\s", listed, re.MULTILINE), listed
    finally:
        k8s_cluster.run_kubectl("delete", "namespace", "sales", "--wait=false", check=False)
