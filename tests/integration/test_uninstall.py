"""Uninstall in the "wrong" order: the operator goes first, its LeadModels stay, then the
namespace is deleted. Nothing may hold it: the operator puts no finalizer on a LeadModel
(its resync is its own wake-up, not a kopf timer), and removes the one an older operator left.
Real control plane, the operator started as the chart's Deployment starts it, `helm uninstall`."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.chart import install_crd, start_chart_operator
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.ports import free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
RESYNC_SECONDS = 3


def _await(what: str, check: Callable[[], Any], *, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s; operator log:\n{log.read_text()}")
        time.sleep(0.2)


def _leadmodel(ns: str, name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": name, "namespace": ns, **meta},
        "spec": {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}},
    }


@pytest.fixture
def namespace(k8s_cluster: KubeCluster) -> Iterator[str]:
    """A namespace of the test's own: the test deletes it (and checks it goes)."""
    name = f"uninstall-{secrets.token_hex(3)}"
    k8s_cluster.run_kubectl("create", "namespace", name)
    deadline = time.monotonic() + 30  # Pods are refused until the default ServiceAccount exists
    while k8s_cluster.run_kubectl("get", "sa/default", "-n", name, check=False).returncode:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name}"
        time.sleep(0.2)
    yield name
    k8s_cluster.run_kubectl(
        "delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False
    )


def test_operator_uninstalled_first_then_the_namespace_is_gone_within_a_minute(
    k8s_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    ns, cluster = namespace, k8s_cluster
    install_crd(cluster)
    cluster.run_kubectl(
        "create", "secret", "generic", "redis", "-n", ns, "--from-literal=url=redis://r:6379/0"
    )

    def apply(obj: dict[str, Any]) -> None:
        cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(obj))

    def get(name: str) -> dict[str, Any]:
        out = cluster.run_kubectl("get", "leadmodel", name, "-n", ns, "-o", "json").stdout
        found: dict[str, Any] = json.loads(out)
        return found

    def ready_reason(name: str) -> str:
        conds = (get(name).get("status") or {}).get("conditions") or []
        return next((str(c["reason"]) for c in conds if c["type"] == "Ready"), "")

    # As an operator before this one left it: kopf's finalizer on the LeadModel.
    apply(_leadmodel(ns, "older", finalizers=[KOPF_FINALIZER]))
    values = [
        "--set", f"operator.watchNamespaces={{{ns}}}",
        "--set", f"operator.metricsPort={free_port()}",
        "--set", f"operator.healthPort={free_port()}",
        "--set", f"operator.resyncSeconds={RESYNC_SECONDS}",
    ]  # fmt: skip
    operator = start_chart_operator(
        cluster, release=f"un-{secrets.token_hex(3)}", namespace=ns, values=values, workdir=tmp_path
    )
    log = operator.log
    try:
        # The Redis Secret does not opt in yet: refused, and kopf does not retry a refusal.
        apply(_leadmodel(ns, "acme"))
        _await(
            "acme InvalidSpec", lambda: ready_reason("acme") == "InvalidSpec", timeout=90, log=log
        )
        # Secrets are not watched: only the operator's own resync sees the opt-in.
        cluster.run_kubectl("annotate", "secret", "redis", "-n", ns, "leadops.io/usable-by=*")
        _await(
            "acme accepted at the resync",
            lambda: ready_reason("acme") not in {"", "InvalidSpec"},
            timeout=60,
            log=log,
        )
        _await(
            "the older LeadModel's kopf finalizer removed",
            lambda: not get("older")["metadata"].get("finalizers"),
            timeout=60,
            log=log,
        )
        assert ready_reason("older") != "", "the older LeadModel is reconciled as well"
        assert not get("acme")["metadata"].get("finalizers"), "no finalizer on a new LeadModel"
        cluster.run_kubectl("get", "deployment", "acme-scorer", "-n", ns)  # children stay behind
    finally:
        operator.stop()
    # The wrong order: the operator is gone, its LeadModels and their children stay.
    cluster.run_helm("uninstall", operator.release, "-n", ns)
    cluster.run_kubectl("delete", "namespace", ns, "--wait=false")

    def gone() -> bool:
        out = cluster.run_kubectl("get", "namespace", ns, "-o", "name", check=False)
        return out.returncode != 0 and "NotFound" in out.stderr

    _await("the namespace gone (the issue: Terminating forever)", gone, timeout=60, log=log)
