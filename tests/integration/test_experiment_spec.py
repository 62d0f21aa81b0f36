"""spec.experiment's CEL rules, enforced by the real apiserver (server-side dry run)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.chart import install_crd
from tests.fixtures.control_plane import KubeCluster

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def leadmodel_crd(k8s_cluster: KubeCluster) -> None:
    install_crd(k8s_cluster)


def _dry_run(cluster: KubeCluster, ns: str, experiment: dict[str, Any]) -> tuple[int, str]:
    manifest = {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": "exp", "namespace": ns},
        "spec": {"redis": {"urlSecretRef": {"name": "r", "key": "u"}}, "experiment": experiment},
    }
    result = cluster.run_kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=leadops-tests",
        "-f", "-", input_text=json.dumps(manifest), check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def _variants(*weights: int, names: str = "abcde") -> list[dict[str, Any]]:
    return [{"name": names[i], "weight": w} for i, w in enumerate(weights)]


@pytest.mark.parametrize(
    "case",
    [
        (_variants(50, 50), "0.05", None),
        (_variants(40, 30, 20, 10), "0.01", None),
        (_variants(60, 50), "0.05", "variant weights must sum to 100"),
        (_variants(50, 50, names="aa"), "0.05", "variant names must be unique"),
        (_variants(99), "0.05", "should have at least 2 items"),
        (_variants(20, 20, 20, 20, 20), "0.05", "must have at most 4 items"),
        (_variants(50, 50), "0.5", "alpha must be above 0 and at most 0.2"),
        (_variants(50, 50), "0", "alpha must be above 0 and at most 0.2"),
    ],
)
def test_the_apiserver_enforces_the_experiment_rules(
    k8s_cluster: KubeCluster,
    k8s_namespace: str,
    leadmodel_crd: None,
    case: tuple[list[dict[str, Any]], str, str | None],
) -> None:
    variants, alpha, refusal = case
    code, output = _dry_run(
        k8s_cluster, k8s_namespace, {"name": "e1", "variants": variants, "alpha": alpha}
    )
    if refusal is None:
        assert code == 0, output
        assert "serverside-applied (server dry run)" in output
    else:
        assert code != 0
        assert refusal in output, output
