"""A new LeadModel's start on the real local control plane (issue #15 item 1): cold start
while nothing serves, and the bootstrap Job trained on historical outcomes, run once, its
version through the normal gates to a rolled-out scorer.

kwok runs no containers: the test runs the bootstrap Job's own command here
(tests/fixtures/job_here.py), with the ConfigMap it mounts, as a kubelet would.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from leadops.jobs import synth
from leadops.operator import kube
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.job_here import run_job_here
from tests.integration import test_operator as op
from tests.integration.test_operator import (
    NAME,
    condition,
    deployment_version,
    events,
    get_lm,
    leadmodel,
    scorer_env,
    wait_for,
)

# The operator suite's fixtures: the CRD installed, an API client, the operator running.
crd_installed = op.crd_installed
api = op.api
running = op.running
pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def history_csv(n: int, *, seed: int = 11) -> str:
    out = io.StringIO()
    synth.write_csv(synth.generate(n, seed=seed), out, redact=synth.default_redactor())
    return out.getvalue()


def test_bootstrap_from_a_configmap_trains_once_and_the_first_version_serves(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    crd_installed: KubeCluster,
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "history", "namespace": ns},
            "data": {"outcomes.csv": history_csv(800)},
        }
    )
    api.create(
        leadmodel(
            ns,
            scorer={"replicas": 1, "coldStart": "AcceptUnscored"},
            gates={"minAuc": "0.60"},
            training={"bootstrap": {"configMapKeyRef": {"name": "history", "key": "outcomes.csv"}}},
        )
    )
    job = wait_for(lambda: api.get("Job", ns, f"{NAME}-bootstrap"), what="bootstrap Job")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "LeadModel"
    wait_for(lambda: condition(api, ns, "Trained").get("reason") == "Bootstrapping", what="Trained")
    wait_for(lambda: condition(api, ns, "Ready").get("reason") == "ColdStart", what="ColdStart")
    assert scorer_env(api, ns)["LEADOPS_COLD_START"] == "true"
    assert events(api, ns, "Bootstrapping")

    ran = run_job_here(api, job, workdir=tmp_path, kubeconfig=crd_installed.kubeconfig)
    assert ran.returncode == 0, ran.stderr

    def served() -> str | None:
        status = get_lm(api, ns).get("status") or {}
        return status.get("servingVersion") or None

    version = wait_for(served, what="the bootstrapped version serving")
    wait_for(lambda: deployment_version(api, ns) == version, what="Deployment rolled")
    wait_for(lambda: condition(api, ns, "Ready").get("reason") == "Serving", what="Ready")
    assert condition(api, ns, "Validated")["reason"] == "GatesPassed"
    assert "LEADOPS_COLD_START" not in scorer_env(api, ns)
    # Once: the Job is neither re-created nor replaced.
    again = api.get("Job", ns, f"{NAME}-bootstrap") or {}
    assert again["metadata"]["uid"] == job["metadata"]["uid"]


def test_a_bootstrap_below_the_gates_is_rejected_like_any_candidate(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    crd_installed: KubeCluster,
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "history",
                "namespace": ns,
                "annotations": {"leadops.io/usable-by": NAME},
            },
            "stringData": {"outcomes.csv": history_csv(300)},
        }
    )
    api.create(
        leadmodel(
            ns,
            gates={"minTrainSamples": 100000},
            training={"bootstrap": {"secretKeyRef": {"name": "history", "key": "outcomes.csv"}}},
        )
    )
    job = wait_for(lambda: api.get("Job", ns, f"{NAME}-bootstrap"), what="bootstrap Job")
    ran = run_job_here(api, job, workdir=tmp_path, kubeconfig=crd_installed.kubeconfig)
    assert ran.returncode == 0, ran.stderr
    wait_for(
        lambda: condition(api, ns, "Validated").get("reason") == "TooFewTrainSamples",
        what="the gate's verdict",
    )
    assert condition(api, ns, "Ready")["reason"] == "NoModel"
    assert (get_lm(api, ns).get("status") or {}).get("servingVersion", "") == ""


def test_bootstrap_with_two_sources_is_refused_by_the_api(
    api: kube.Kube, k8s_namespace: str
) -> None:
    both = {"url": "https://data.example/o.csv", "configMapKeyRef": {"name": "h", "key": "k"}}
    with pytest.raises(kube.KubeError, match="exactly one of url"):
        api.create(leadmodel(k8s_namespace, training={"bootstrap": both}))
