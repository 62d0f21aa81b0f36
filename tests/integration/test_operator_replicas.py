# ruff: noqa: F811 (pytest fixtures imported from test_operator, then used as arguments)
"""Many scorer Pods on the real local control plane: the real HorizontalPodAutoscaler
controller (kube-controller-manager) scales the scorer and reconciles never revert it; the
PodDisruptionBudget and the topology spread are admitted and the real scheduler spreads Pods
over the kwok nodes; health and drift are read from every ready Pod the Service's
EndpointSlices list (real scorers, uvicorn, behind hand-made EndpointSlices: kwok Pods run
nothing) and combined."""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kopf.testing import KopfRunner

from leadops.operator import kube
from tests.fixtures.scorer import ScorerServer, StartScorer
from tests.integration.test_operator import (  # noqa: F401 (fixtures)
    NAME,
    api,
    artifact,
    crd_installed,
    create_scorer_api_secret,
    get_lm,
    leadmodel,
    operator,
    publish_version,
    running,
    serving,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

SCORER = f"{NAME}-scorer"


def replicas(api: kube.Kube, ns: str) -> int | None:
    found = (api.get("Deployment", ns, SCORER) or {}).get("spec") or {}
    return found.get("replicas")


def test_autoscaler_sets_replicas_and_reconciles_and_rollouts_leave_them(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner
) -> None:
    ns = k8s_namespace
    api.create(leadmodel(ns, scorer={"autoscaling": {"minReplicas": 3, "maxReplicas": 5}}))
    hpa = wait_for(
        functools.partial(api.get, "HorizontalPodAutoscaler", ns, SCORER), what="autoscaler"
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": SCORER,
    }
    # Made without replicas (1 by default); the real HPA controller raises it to minReplicas.
    wait_for(lambda: replicas(api, ns) == 3, what="HPA scaled the scorer to 3")
    # A rollout (a template change, merge-patched) and many resyncs (every 2 s) later: still 3.
    version, data = artifact(age_minutes=30)
    publish_version(api, ns, data)
    wait_for(functools.partial(serving, api, ns, version), what=f"{version} serving")
    generation = get_lm(api, ns)["metadata"]["generation"]
    deadline = time.monotonic() + 8  # four resyncs: a reconcile that wrote replicas would show
    while time.monotonic() < deadline:
        assert replicas(api, ns) == 3
        time.sleep(0.5)
    assert get_lm(api, ns)["metadata"]["generation"] == generation

    # The budget and the spread are admitted; the real scheduler spreads 3 Pods over 2 nodes.
    pdb = api.get("PodDisruptionBudget", ns, SCORER)
    assert pdb is not None
    assert pdb["spec"]["maxUnavailable"] == 1
    template = api.get("Deployment", ns, SCORER)["spec"]["template"]  # type: ignore[index]
    (spread,) = template["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=scorer"

    def spread_nodes() -> set[str] | None:
        pods = [
            p
            for p in api.list("Pod", ns, selector=selector)
            if not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["labels"].get("leadops.io/model-version") == str(version)
        ]
        nodes = {p["spec"].get("nodeName") for p in pods}
        return nodes if len(pods) == 3 and None not in nodes else None

    assert len(wait_for(spread_nodes, what="3 scorer Pods scheduled")) == 2

    # Autoscaling unset: the autoscaler goes and spec.scorer.replicas counts again.
    api.patch("LeadModel", ns, NAME, {"spec": {"scorer": {"autoscaling": None, "replicas": 2}}})
    wait_for(
        lambda: api.get("HorizontalPodAutoscaler", ns, SCORER) is None, what="autoscaler removed"
    )
    wait_for(lambda: replicas(api, ns) == 2, what="replicas from the spec again")


def _host_address() -> str:
    """A non-loopback IPv4 address of this machine (EndpointSlices refuse loopback ones): the
    source address of the default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("no non-loopback IPv4 route: EndpointSlices cannot name a local scorer")
        address: str = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("no non-loopback IPv4 address: EndpointSlices cannot name a local scorer")
    return address


def _slice(ns: str, name: str, address: str, port: int, *, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": SCORER,
                "endpointslice.kubernetes.io/managed-by": "tests.leadops.io",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}],
    }


def _score(server: ScorerServer, leads: int) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(leads):
            body = {"details": f"demo {i}", "source": "web", "attributes": {"visits": float(i)}}
            assert http.post("/v1/lead", json=body).status_code == 200


def test_health_and_drift_combine_over_every_ready_pod(
    api: kube.Kube,
    k8s_namespace: str,
    start_scorer: StartScorer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three real scorers serve the published version: two ok, one warning_low_auc (its
    thresholds are stricter); two have drift scores. A fourth endpoint is not ready and is
    not asked. status: the worst health, the highest drift, 3 of 3 Pods reported."""
    ns = k8s_namespace
    version, data = artifact(age_minutes=30)
    model = tmp_path / "model.json"
    model.write_bytes(data)
    quick_drift = {"drift_min_samples": "5", "drift_window": "50"}
    host = _host_address()
    scorers = [
        start_scorer(model=model, host=host, **quick_drift),
        start_scorer(model=model, host=host, **quick_drift),
        start_scorer(model=model, host=host, auc_warning="0.95", auc_critical="0.5", **quick_drift),
    ]
    _score(scorers[0], 8)
    _score(scorers[1], 30)
    drifts = []
    for server in scorers:
        with server.client() as http:
            drifts.append(http.get("/ops/model-status").json()["drift_score"])
    assert drifts[2] is None
    assert None not in drifts[:2]
    scorer_api = create_scorer_api_secret(api, ns)
    for i, server in enumerate(scorers):
        api.create(_slice(ns, f"{SCORER}-test-{i}", host, server.port))
    # Not ready: never asked (nothing listens on port 9 either).
    api.create(_slice(ns, f"{SCORER}-test-unready", host, 9, ready=False))
    monkeypatch.setenv("LEADOPS_SCORER_PODS", "true")
    with operator(ns):
        # No kwok Pods: the Service's own EndpointSlice stays empty, only ours are asked.
        api.create(leadmodel(ns, scorer={"replicas": 0, "apiKeySecretRef": scorer_api}))
        wait_for(lambda: api.get("Deployment", ns, SCORER), what="scorer Deployment")
        publish_version(api, ns, data)
        wait_for(functools.partial(serving, api, ns, version), what=f"{version} serving")
        status = wait_for(
            lambda: (s := get_lm(api, ns).get("status") or {}).get("scorerPodsReported") == 3 and s,
            what="three Pods reported",
        )
    assert status["scorerPodsAsked"] == 3
    assert status["health"] == "warning_low_auc"
    assert float(status["driftScore"]) == max(float(d) for d in drifts[:2])


def test_the_api_server_refuses_min_replicas_above_max(api: kube.Kube, k8s_namespace: str) -> None:
    bad = leadmodel(k8s_namespace, scorer={"autoscaling": {"minReplicas": 5, "maxReplicas": 2}})
    with pytest.raises(kube.KubeError, match="minReplicas must not exceed maxReplicas"):
        api.create(bad)
