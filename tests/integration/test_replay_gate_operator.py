"""The replay gate on the real local control plane, with a real redis-server and a real scorer
whose outcome export the replay reads (issue #19 item 2): a candidate worse by 0.03 AUC fails
its replay and is not promoted; an equal one passes and is promoted; too few leads with a known
outcome is Inconclusive, held under onInconclusive Hold and promoted under Promote.

kwok runs no containers: the operator's replay Job is placed by spec.training.nodeSelector on a
label no node has, so no fake kubelet completes it; this test plays the kubelet instead. It
runs the Pod's init containers (`leadops unpack-model` of both registry ConfigMaps) and its
`leadops replay` here, against the real scorer (its URL for the in-cluster Service's), and
ends the Pod with the exit code and termination message the run left. The models are trained
by the repo's training code on leads of known signal (tests/unit/jobs/test_replay.py).
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kopf.testing import KopfRunner

from leadops.contract import artifact as contract
from leadops.jobs.training import command as train
from leadops.operator import builders, kube
from tests.fixtures.scorer import API_KEY, ScorerServer, StartScorer
from tests.integration import test_operator as op
from tests.integration.test_operator import (
    NAME,
    condition,
    deployment_version,
    events,
    get_lm,
    leadmodel,
    publish_version,
    serving,
    wait_for,
)
from tests.integration.test_pii_gate_operator import end_pod
from tests.unit.jobs.test_replay import NOISE, SHIFT, write_leads

crd_installed = op.crd_installed
api = op.api
running = op.running
pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]
logger = logging.getLogger(__name__)

# No node has it: the replay Pod stays unscheduled until this test ends it.
NOWHERE = {"leadops.io/replay-here": "true"}
# Leads of the replay (seeded): on these the "worse" model's AUC is 0.030 below the baseline's.
REPLAY_LEADS, REPLAY_SEED = 1500, 6
FEW_LEADS, FEW_SEED = 150, 3


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """baseline, equal (another seed) and worse (the noisier signal): the training CLI's
    artifacts, sealed again with versions in publishing order (older first)."""
    where = tmp_path_factory.mktemp("replay-models")
    history = where / "history.csv"
    write_leads(history, 3000, seed=1)
    out: dict[str, bytes] = {}
    now = int(time.time())
    for age, (name, args) in zip(
        (300, 200, 100),
        {
            "baseline": ["--exclude", "weak", "--seed", "0"],
            "worse": ["--exclude", "strong", "--seed", "0"],
            "equal": ["--exclude", "weak", "--seed", "1"],
        }.items(),
        strict=True,
    ):
        path = where / f"{name}.json"
        argv = ["--input", str(history), "--output", str(path), *args]
        assert train.main([*argv, "--trees", "40", "--threads", "1", "--depth", "3"]) == 0
        art = contract.load_artifact(path.read_bytes())
        version = now - age
        art = art.model_copy(
            update={"version": version, "created_at": datetime.fromtimestamp(version, UTC)}
        )
        out[name] = contract.dumps(contract.seal(art))
    return out


def version_of(data: bytes) -> int:
    return contract.load_artifact(data).version


def seed_leads(server: ScorerServer, n: int, *, seed: int) -> None:
    """Leads through the real scorer and their outcomes: the rows `write_leads` draws."""
    rng = np.random.default_rng(seed)
    converted = rng.random(n) < 0.35
    strong = rng.normal(size=n) + SHIFT * converted
    weak = strong + rng.normal(scale=NOISE, size=n)
    with server.client() as http:
        for i in range(n):
            attributes = {"strong": round(float(strong[i]), 5), "weak": round(float(weak[i]), 5)}
            scored = http.post("/v1/lead", json={"source": "web", "attributes": attributes})
            assert scored.status_code == 200, scored.text
            lead_id = scored.json()["lead_id"]
            body = {"lead_id": lead_id, "converted": bool(converted[i])}
            assert http.post("/v1/outcome", json=body).status_code == 200


@pytest.fixture
def scorer(
    start_scorer: StartScorer, redis_url: str, models: dict[str, bytes], tmp_path: Path
) -> tuple[ScorerServer, Path]:
    """A real scorer serving the baseline (what the scorer stores is what the replay reads)."""
    baseline = tmp_path / "baseline.json"
    baseline.write_bytes(models["baseline"])
    return start_scorer(model=baseline, redis_url=redis_url), tmp_path


def replay_pod(api: kube.Kube, ns: str, candidate: int, baseline: int) -> dict[str, Any]:
    """The replay Job the operator created for the pair, and its (unscheduled) Pod."""
    name = builders.replay_job_name(NAME, candidate, baseline)
    job = wait_for(lambda: api.get("Job", ns, name), what=f"replay Job {name}")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "LeadModel"
    pods = wait_for(lambda: api.list("Pod", ns, selector=f"job-name={name}"), what="its Pod")
    (pod,) = pods
    return dict(pod)


def run_replay_here(
    api: kube.Kube, ns: str, pod: dict[str, Any], server: ScorerServer, work: Path
) -> None:
    """The Pod's init containers and replay, here, as its kubelet would; then its status."""
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    model_dir = work / "model"
    model_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    for init in spec["initContainers"]:
        (mount,) = [m for m in init["volumeMounts"] if m["name"] != "model"]
        configmap = api.get("ConfigMap", ns, volumes[mount["name"]]["configMap"]["name"]) or {}
        local = work / mount["name"]
        local.mkdir()
        for key, value in (configmap.get("binaryData") or {}).items():
            (local / key).write_bytes(base64.b64decode(value))
        for key, value in (configmap.get("data") or {}).items():
            (local / key).write_text(value)
        args = [
            a.replace(mount["mountPath"], str(local)).replace(builders.MODEL_DIR, str(model_dir))
            for a in init["args"]
        ]
        unpack = [sys.executable, "-m", "leadops.cli", *init["command"][1:], *args]
        done = subprocess.run(unpack, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    (container,) = spec["containers"]
    log = work / "termination-log"
    in_cluster = builders.scorer_url(builders.Owner(NAME, ns, ""))
    args = [
        a.replace(builders.MODEL_DIR, str(model_dir))
        .replace(in_cluster, server.url)
        .replace(builders.TERMINATION_LOG, str(log))
        for a in container["args"]
    ]
    # The mounted API key file, as its value.
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadops.cli", *args],
        env=env | {"LEADOPS_API_KEY": API_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    end_pod(api, ns, pod, proc, log)


def replay_status(api: kube.Kube, ns: str) -> dict[str, Any]:
    return dict((get_lm(api, ns).get("status") or {}).get("replay") or {})


def guarded(ns: str, **replay: Any) -> dict[str, Any]:
    return leadmodel(
        ns,
        scorer={"replicas": 1},
        training={"nodeSelector": NOWHERE, "suspend": True},
        guards={"replay": replay},
    )


def test_a_worse_candidate_is_not_promoted_and_an_equal_one_is(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    scorer: tuple[ScorerServer, Path],
    models: dict[str, bytes],
) -> None:
    ns = k8s_namespace
    server, work = scorer
    seed_leads(server, REPLAY_LEADS, seed=REPLAY_SEED)
    api.create(guarded(ns))
    v1, worse, equal = (version_of(models[m]) for m in ("baseline", "worse", "equal"))
    publish_version(api, ns, models["baseline"])
    wait_for(lambda: serving(api, ns, v1), what="v1 serving (a first model: no replay)")
    assert condition(api, ns, "Replayed")["reason"] == "ReplaySkipped"

    publish_version(api, ns, models["worse"])
    pod = replay_pod(api, ns, worse, v1)
    wait_for(
        lambda: condition(api, ns, "Replayed").get("reason") == "ReplayRunning",
        what="Replayed=Unknown/ReplayRunning",
    )
    assert deployment_version(api, ns) == str(v1)
    run_replay_here(api, ns, pod, server, work / "worse")
    wait_for(
        lambda: condition(api, ns, "Replayed").get("reason") == "ReplayWorse",
        what="Replayed=False/ReplayWorse",
    )
    said = replay_status(api, ns)
    logger.info("replay of the worse candidate: %s", said)
    assert (said["candidate"], said["baseline"]) == (str(worse), str(v1))
    assert (said["verdict"], said["reason"], said["held"]) == ("Fail", "ReplayWorse", True)
    assert said["leads"] == REPLAY_LEADS
    difference = float(said["difference"])
    assert difference <= -0.025  # about 0.03 worse on these leads
    assert float(said["ci"][1]) < 0
    (warning,) = events(api, ns, "ReplayWorse")
    assert warning["type"] == "Warning"
    for figure in (said["candidateAuc"], said["baselineAuc"], *said["ci"]):
        assert figure in warning["message"]
    ready = condition(api, ns, "Ready")
    assert ready["status"] == "True"
    assert f"version {worse} is not promoted" in ready["message"]
    time.sleep(5)  # a few resyncs (2 s): the refusal stands, no second Job
    assert deployment_version(api, ns) == str(v1)
    assert len(api.list("Pod", ns, selector=f"{builders.REPLAY_CANDIDATE}={worse}")) == 1

    publish_version(api, ns, models["equal"])
    pod = replay_pod(api, ns, equal, v1)
    run_replay_here(api, ns, pod, server, work / "equal")
    wait_for(lambda: serving(api, ns, equal), what="the equal candidate promoted")
    passed = condition(api, ns, "Replayed")
    assert (passed["status"], passed["reason"]) == ("True", "ReplayPassed")
    said = replay_status(api, ns)
    logger.info("replay of the equal candidate: %s", said)
    assert (said["candidate"], said["verdict"], said["held"]) == (str(equal), "Pass", False)
    assert float(said["ci"][0]) > -0.02


def test_too_few_leads_is_inconclusive_held_or_promoted_as_the_spec_says(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    scorer: tuple[ScorerServer, Path],
    models: dict[str, bytes],
) -> None:
    ns = k8s_namespace
    server, work = scorer
    seed_leads(server, FEW_LEADS, seed=FEW_SEED)
    api.create(guarded(ns, onInconclusive="Hold"))
    v1, v2 = version_of(models["baseline"]), version_of(models["equal"])
    publish_version(api, ns, models["baseline"])
    wait_for(lambda: serving(api, ns, v1), what="v1 serving")
    publish_version(api, ns, models["equal"])
    run_replay_here(api, ns, replay_pod(api, ns, v2, v1), server, work / "few")
    wait_for(
        lambda: condition(api, ns, "Replayed").get("reason") == "ReplayInconclusive",
        what="Replayed ReplayInconclusive",
    )
    held = condition(api, ns, "Replayed")
    assert held["status"] == "False"
    assert "TooFewLeads" in held["message"]
    assert "onInconclusive is Hold" in held["message"]
    said = replay_status(api, ns)
    assert (said["verdict"], said["reason"], said["leads"]) == ("Inconclusive", "TooFewLeads", 150)
    assert said["held"] is True
    assert deployment_version(api, ns) == str(v1)

    # Promote: the same verdict now lets the candidate pass, without another replay.
    api.patch(
        "LeadModel", ns, NAME, {"spec": {"guards": {"replay": {"onInconclusive": "Promote"}}}}
    )
    wait_for(lambda: serving(api, ns, v2), what="v2 promoted by onInconclusive Promote")
    promoted = condition(api, ns, "Replayed")
    assert (promoted["status"], promoted["reason"]) == ("True", "ReplayInconclusive")
    assert len(api.list("Pod", ns, selector=f"{builders.REPLAY_CANDIDATE}={v2}")) == 1
