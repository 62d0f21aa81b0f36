"""An experiment on the real control plane: the operator renders it into the scorer and an
evaluation CronJob, reads the verdicts `leadops experiment publish` stores, resumes after a
SIGKILL with the same start, looks and alpha spent, and rolls out an automatic winner with
its flags served to every lead (a real scorer over HTTP runs what the Deployment says)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadops.operator import kube
from tests.fixtures.scorer import StartScorer
from tests.integration.test_operator import (
    NAME,
    api,  # noqa: F401 (fixture)
    artifact,
    crd_installed,  # noqa: F401 (fixture)
    deployment_version,
    events,
    get_lm,
    leadmodel,
    operator_process,
    publish_version,
    serving,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def _experiment(status: dict[str, Any]) -> dict[str, Any]:
    return dict(status.get("experiment") or {})


def _publish_verdict(
    tmp_path: Path, ns: str, verdict: str, *, variant: str | None, at: datetime
) -> None:
    """What the evaluation Job's second step does: `leadops experiment publish`."""
    report = {
        "verdict": verdict,
        "variant": variant,
        "reason": "SignificantlyBetter" if verdict == "promote" else "NotYetSignificant",
        "look": 3,
        "looks": 28,
        "alpha_spent": 1.2e-05,
        "evaluated_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "variants": [
            {"name": "control", "assigned": 1000, "leads": 800, "conversions": 240},
            {"name": "v2", "assigned": 990, "leads": 790, "conversions": 300},
        ],
    }
    path = tmp_path / f"verdict-{verdict}.json"
    path.write_text(json.dumps(report))
    done = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "experiment", "publish", "--input", str(path),
         "--experiment", "trial", "--leadmodel", NAME, "--namespace", ns],
        capture_output=True, text=True, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("published: configmap/")


def test_experiment_runs_resumes_after_a_kill_and_promotes_its_winner(
    api: kube.Kube,  # noqa: F811
    k8s_namespace: str,
    tmp_path: Path,
    start_scorer: StartScorer,
) -> None:
    ns = k8s_namespace
    v1, control = artifact(age_minutes=40)
    v2, challenger = artifact(age_minutes=20)
    trial = {
        "name": "trial",
        "variants": [
            {"name": "control", "weight": 50},
            {"name": "v2", "weight": 50, "modelVersion": str(v2), "flags": {"memory": "on"}},
        ],
    }
    log = tmp_path / "operator.log"
    with operator_process(ns, log):
        api.create(leadmodel(ns, scorer={"replicas": 1}, experiment=trial))
        invalid = wait_for(
            lambda: _experiment(get_lm(api, ns).get("status") or {}).get("phase") == "Invalid",
            what="experiment Invalid while its variant model is not in the registry",
        )
        assert invalid
        publish_version(api, ns, control)
        wait_for(functools.partial(serving, api, ns, v1), what=f"{v1} serving")
        publish_version(api, ns, challenger)
        running = wait_for(
            lambda: _experiment(get_lm(api, ns)["status"]).get("phase") == "Running",
            what="experiment Running once its variant model passed the gates",
        )
        assert running
        # The challenger is newer and passes the gates, yet the control keeps serving.
        assert deployment_version(api, ns) == str(v1)

        def rendered() -> dict[str, Any] | None:
            dep = api.get("Deployment", ns, f"{NAME}-scorer") or {}
            pod = dep.get("spec", {}).get("template", {}).get("spec", {})
            env = {e["name"]: e.get("value") for e in pod.get("containers", [{}])[0].get("env", [])}
            return pod if "LEADOPS_EXPERIMENT" in env else None

        pod = wait_for(rendered, what="scorer Deployment runs the experiment")
        assert [c["name"] for c in pod["initContainers"]] == [
            "unpack-model",
            f"unpack-variant-{v2}",
        ]
        cron = wait_for(
            lambda: api.get("CronJob", ns, f"{NAME}-experiment"), what="evaluation CronJob"
        )
        started = _experiment(get_lm(api, ns)["status"])["startedAt"]
        assert cron["spec"]["suspend"] is False
        script = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
        assert f"--started-at {started} --of 28" in script[2]

        _publish_verdict(tmp_path, ns, "continue", variant=None, at=datetime.now(UTC))
        wait_for(
            lambda: _experiment(get_lm(api, ns)["status"]).get("look") == 3,
            what="the continue verdict read into status.experiment",
        )
        said = wait_for(lambda: events(api, ns, "ExperimentRunning"), what="Running Event")
    # SIGKILLed mid-experiment; a new operator resumes from the world (verdicts and status).
    before = _experiment(get_lm(api, ns)["status"])
    with operator_process(ns, log):
        later = datetime.now(UTC) + timedelta(seconds=5)
        _publish_verdict(tmp_path, ns, "promote", variant="v2", at=later)
        promoted = wait_for(
            lambda: _experiment(get_lm(api, ns)["status"]).get("phase") == "Promoted",
            what="automatic promotion of the winner",
        )
        assert promoted
        wait_for(functools.partial(serving, api, ns, v2), what=f"winner {v2} serving")
        after = _experiment(get_lm(api, ns)["status"])
        assert (after["startedAt"], after["alphaSpent"]) == (before["startedAt"], "1.2e-05")
        assert (before["look"], before["alphaSpent"]) == (3, "1.2e-05")
        assert wait_for(lambda: events(api, ns, "ExperimentPromoted"), what="Promoted Event")
        # The Running verdict was said once, not again by the restarted operator.
        assert len(events(api, ns, "ExperimentRunning")) == len(said)
        wait_for(
            lambda: (api.get("CronJob", ns, f"{NAME}-experiment") or {})["spec"]["suspend"],
            what="no more looks after the decision",
        )
        assert (after["servedVariant"], after["servedFlags"]) == ("v2", {"memory": "on"})
        concluded = wait_for(
            lambda: (rendered() or {}).get("containers"), what="the concluded experiment rendered"
        )
        env = {e["name"]: e.get("value") for e in concluded[0]["env"]}
        assert json.loads(env["LEADOPS_EXPERIMENT"])["winner"] == "v2"
        assert "LEADOPS_VARIANT_MODELS" not in env  # v2 is the serving model itself now
    # The scorer those Pods run, over HTTP: every lead gets the winner's flags, none bucketed.
    model = tmp_path / "v2.json"
    model.write_bytes(challenger)
    scorer = start_scorer(model=model, experiment=env["LEADOPS_EXPERIMENT"])
    with scorer.client() as http:
        answers = [http.post("/v1/lead", json={"details": f"lead {i}"}).json() for i in range(30)]
    assert {(a["model_version"], a["experiment"]["variant"]) for a in answers} == {(v2, "v2")}
    assert {tuple(a["experiment"]["flags"].items()) for a in answers} == {(("memory", "on"),)}
