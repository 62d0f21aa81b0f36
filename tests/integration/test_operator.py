"""The LeadModel operator against the real local control plane (kopf.testing.KopfRunner).

What runs for real: kube-apiserver (CRD schema, CEL, defaulting), kube-controller-manager
(Deployment rollouts, progress deadlines, garbage collection of owned children), kwok (Pods
become Ready, or never with the `leadops.io/fault: never-ready` annotation), the operator,
and real xgboost artifacts published the way the training Job publishes them.
Not covered here: the scorer's /ops/model-status polling (kwok Pods run no process; the
decision is covered by the plan tables) and the training Job's own container run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from leadops import cli
from leadops.contract import artifact as contract
from leadops.jobs import synth
from leadops.jobs.training import command as train
from leadops.operator import cli as op_cli
from leadops.operator import kube, read_world, registry
from leadops.operator.conditions import rfc3339
from leadops.operator.kube import crd_established
from leadops.operator.publish import publish
from tests.fixtures.chart import install_crd
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.model_artifact import make_artifact
from tests.fixtures.scorer import API_KEY as SCORER_API_KEY
from tests.fixtures.scorer import StartScorer

pytestmark = [pytest.mark.k8s, pytest.mark.slow]
logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NAME = "acme"
# Generous: wait_for returns as soon as the condition holds; a loaded machine is slow.
TIMEOUT = 120.0


def wait_for(
    check: Callable[[], Any], *, what: str, timeout: float = TIMEOUT, poll: float = 0.2
) -> Any:
    started = time.monotonic()
    deadline = started + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            logger.info("waited %.1fs for %s", time.monotonic() - started, what)
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def crd_installed(k8s_cluster: KubeCluster) -> KubeCluster:
    install_crd(k8s_cluster)
    return k8s_cluster


@pytest.fixture
def api(
    crd_installed: KubeCluster, k8s_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> kube.Kube:
    monkeypatch.setenv("KUBECONFIG", str(crd_installed.kubeconfig))
    monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", "2")
    # kwok's fault injection reads this Pod annotation; an admin allows it explicitly.
    monkeypatch.setenv("LEADOPS_ALLOWED_POD_ANNOTATIONS", "leadops.io/fault")
    monkeypatch.delenv("LEADOPS_SCORER_URL", raising=False)
    client = kube.Kube(crd_installed.api_client)
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            # The Redis Secret every LeadModel here names, opted in to all of them.
            "metadata": {
                "name": "redis",
                "namespace": k8s_namespace,
                "annotations": {"leadops.io/usable-by": "*"},
            },
            "stringData": {"url": "redis://redis:6379/0"},
        }
    )
    return client


def create_scorer_api_secret(client: kube.Kube, ns: str) -> dict[str, str]:
    """The Secret with the test scorer's /ops API key, opted in to the LeadModel; its
    reference for spec.scorer.apiKeySecretRef (the operator then reads /ops from that scorer)."""
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "scorer-api",
                "namespace": ns,
                "annotations": {"leadops.io/usable-by": NAME},
            },
            "stringData": {"key": SCORER_API_KEY},
        }
    )
    return {"name": "scorer-api", "key": "key"}


def operator(namespace: str) -> KopfRunner:
    return KopfRunner(
        ["run", "--standalone", "--namespace", namespace, "-m", "leadops.operator.handlers"],
        timeout=60,
    )


@pytest.fixture
def running(api: kube.Kube, k8s_namespace: str) -> Iterator[KopfRunner]:
    with operator(k8s_namespace) as runner:
        yield runner
    assert runner.exception is None or isinstance(runner.exception, SystemExit)


def leadmodel(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}, **spec},
    }


def get_lm(api: kube.Kube, ns: str) -> dict[str, Any]:
    found = api.get("LeadModel", ns, NAME)
    assert found is not None
    return found


def condition(api: kube.Kube, ns: str, type_: str) -> dict[str, Any]:
    for cond in (get_lm(api, ns).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def deployment_version(api: kube.Kube, ns: str) -> str | None:
    dep = api.get("Deployment", ns, f"{NAME}-scorer")
    ann = ((dep or {}).get("metadata") or {}).get("annotations") or {}
    return ann.get(registry.MODEL_VERSION)


def scorer_container(client: kube.Kube, ns: str) -> dict[str, Any]:
    """The scorer Deployment's serving container as the template has it ({} before it exists)."""
    dep = client.get("Deployment", ns, f"{NAME}-scorer") or {}
    containers = ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers")
    container: dict[str, Any] = (containers or [{}])[0]
    return container


def scorer_env(client: kube.Kube, ns: str) -> dict[str, str]:
    """The scorer container's environment, by name ({} before the Deployment exists)."""
    return {e["name"]: e.get("value", "") for e in scorer_container(client, ns).get("env", [])}


def events(api: kube.Kube, ns: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.list("Event", ns)
        if e.get("reason") == reason and e["involvedObject"].get("kind") == "LeadModel"
    ]


def artifact(*, age_minutes: int, auc: float = 0.8) -> tuple[int, bytes]:
    version = int(time.time()) - age_minutes * 60
    art = make_artifact(n=200, version=version)
    if auc != art.metrics.auc:
        art = art.model_copy(update={"metrics": art.metrics.model_copy(update={"auc": auc})})
    return version, contract.dumps(contract.seal(art))


def trained_artifact(tmp_path: Path) -> tuple[int, bytes]:
    """The real training job, in-process: synthetic leads -> outcomes CSV -> `leadops train`."""
    csv = tmp_path / "outcomes.csv"
    with csv.open("w", encoding="utf-8", newline="") as out:
        synth.write_csv(synth.generate(800, seed=5), out, redact=synth.default_redactor())
    model = tmp_path / "model.json"
    code = train.main(
        ["--input", str(csv), "--output", str(model), "--trees", "60", "--threads", "1"]
    )
    assert code == 0
    data = model.read_bytes()
    return contract.load_artifact(data).version, data


def publish_version(api: kube.Kube, ns: str, data: bytes) -> None:
    uid = get_lm(api, ns)["metadata"]["uid"]
    publish(api, data, leadmodel=NAME, namespace=ns, owner_uid=uid)


def serve_two_versions(api: kube.Kube, ns: str) -> tuple[int, int]:
    """Publish an older then a newer valid version and wait for each to serve in turn."""
    versions = []
    for age in (40, 20):
        version, data = artifact(age_minutes=age)
        publish_version(api, ns, data)
        wait_for(functools.partial(serving, api, ns, version), what=f"{version} serving")
        versions.append(version)
    return versions[0], versions[1]


def serving(api: kube.Kube, ns: str, version: int) -> bool:
    status = get_lm(api, ns).get("status") or {}
    rolled = condition(api, ns, "RolledOut")
    return status.get("servingVersion") == str(version) and rolled.get("status") == "True"


def not_ready_for(api: kube.Kube, ns: str, reason: str, *, timeout: float = TIMEOUT) -> Any:
    """Wait for Ready=False with `reason`, said by one Warning Event; the Ready condition."""
    ready = wait_for(
        lambda: (c := condition(api, ns, "Ready")).get("reason") == reason and c,
        what=f"Ready=False/{reason}",
        timeout=timeout,
    )
    assert ready["status"] == "False"
    (warning,) = events(api, ns, reason)
    assert warning["type"] == "Warning"
    return ready


def wait_for_scorer_condition(api: kube.Kube, ns: str, field: str, value: str) -> None:
    """Until the scorer Deployment has a status condition whose `field` is `value`."""
    wait_for(
        lambda: any(
            c.get(field) == value
            for c in (api.get("Deployment", ns, f"{NAME}-scorer") or {})
            .get("status", {})
            .get("conditions", [])
        ),
        what=f"the scorer Deployment's condition {field}={value}",
    )


def wait_past_deadline(api: kube.Kube, ns: str) -> None:
    """Until the Deployment controller marks the scorer's rollout ProgressDeadlineExceeded."""
    wait_for_scorer_condition(api, ns, "reason", "ProgressDeadlineExceeded")


def pin_never_ready_then_rolled_back(api: kube.Kube, ns: str, version: int) -> None:
    """Pin `version` with Pods that never get Ready, and wait for the automatic rollback."""
    api.patch(
        "LeadModel",
        ns,
        NAME,
        {
            "spec": {
                "modelVersion": str(version),
                "scorer": {"podAnnotations": {"leadops.io/fault": "never-ready"}},
            }
        },
    )
    wait_for(
        lambda: condition(api, ns, "RolledOut").get("reason") == "RolledBack",
        what="automatic rollback",
        timeout=180,
    )


def still_waits_unblamed(api: kube.Kube, ns: str, *, serving_version: int, target: int) -> None:
    """The rollout to `target` waits past its deadline: not rolled back, not marked failed."""
    assert deployment_version(api, ns) == str(target)
    assert condition(api, ns, "RolledOut").get("reason") == "RolloutInProgress"
    assert get_lm(api, ns)["status"]["servingVersion"] == str(serving_version)
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, target))
    assert cm is not None
    assert registry.ANN_ROLLED_BACK_AT not in (cm["metadata"].get("annotations") or {})
    assert not events(api, ns, "ProgressDeadlineExceeded")


def test_children_appear_with_owner_references(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner
) -> None:
    ns = k8s_namespace
    api.create(leadmodel(ns))
    uid = get_lm(api, ns)["metadata"]["uid"]
    for kind, name in [
        ("Deployment", f"{NAME}-scorer"),
        ("Service", f"{NAME}-scorer"),
        ("CronJob", f"{NAME}-train"),
        ("CronJob", f"{NAME}-pii-backfill"),
        ("ServiceAccount", f"{NAME}-jobs"),
        ("Role", f"{NAME}-jobs"),
        ("RoleBinding", f"{NAME}-jobs"),
    ]:
        child = wait_for(functools.partial(api.get, kind, ns, name), what=f"{kind} {name}")
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("LeadModel", uid, True)
    ready = wait_for(lambda: condition(api, ns, "Ready"), what="Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "NoModel")
    # Defaults applied by the apiserver from the generated schema.
    assert get_lm(api, ns)["spec"]["gates"]["minAuc"] == "0.70"

    # Drift is corrected, user-added labels survive.
    api.patch(
        "CronJob",
        ns,
        f"{NAME}-train",
        {"metadata": {"labels": {"team": "sales"}}, "spec": {"schedule": "0 0 * * *"}},
    )
    wait_for(
        lambda: (api.get("CronJob", ns, f"{NAME}-train") or {})["spec"]["schedule"] == "17 3 * * *",
        what="CronJob schedule restored",
    )
    assert api.get("CronJob", ns, f"{NAME}-train")["metadata"]["labels"]["team"] == "sales"  # type: ignore[index]

    # Steady state is quiet: resyncs (every 2 s here) write nothing when nothing changed.
    kinds = ["Deployment", "Service", "CronJob", "ServiceAccount", "Role", "RoleBinding"]

    def versions() -> dict[str, str]:
        out = {
            f"{k}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for k in kinds
            for o in api.list(k, ns, selector=f"{registry.LABEL_LEADMODEL}={NAME}")
        }
        out["status"] = json.dumps(get_lm(api, ns).get("status"), sort_keys=True)
        return out

    def settled() -> dict[str, str] | None:
        # The pass that restored the schedule, or a controller status update, may still land.
        first = versions()
        time.sleep(2.5)
        return first if versions() == first else None

    before = wait_for(settled, what="children and status settled")
    time.sleep(5)
    assert versions() == before

    # Delete: kube-controller-manager's garbage collector removes the owned children.
    api.delete("LeadModel", ns, NAME)
    wait_for(
        lambda: (
            api.get("Deployment", ns, f"{NAME}-scorer") is None
            and api.get("CronJob", ns, f"{NAME}-train") is None
        ),
        what="children garbage-collected",
        timeout=180,  # the garbage collector notices a new CRD on its 30 s discovery resync
    )


def test_valid_artifact_is_promoted_and_low_auc_rejected(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, tmp_path: Path
) -> None:
    ns = k8s_namespace
    api.create(leadmodel(ns, scorer={"replicas": 1}))
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    good, data = trained_artifact(tmp_path)
    publish_version(api, ns, data)
    wait_for(lambda: serving(api, ns, good), what=f"version {good} rolled out")
    assert deployment_version(api, ns) == str(good)
    validated = condition(api, ns, "Validated")
    assert (validated["status"], validated["reason"]) == ("True", "GatesPassed")
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, good))
    assert cm is not None
    assert cm["metadata"]["annotations"][registry.ANN_PROMOTED_AT]

    bad, data = artifact(age_minutes=-1, auc=0.61)  # newer than the trained one
    publish_version(api, ns, data)
    wait_for(
        lambda: condition(api, ns, "Validated").get("reason") == "AucBelowThreshold",
        what="low-AUC candidate rejected",
    )
    status = get_lm(api, ns)["status"]
    assert status["candidate"]["version"] == str(bad)
    assert status["candidate"]["verdict"] == "Rejected"
    assert status["servingVersion"] == str(good)
    assert deployment_version(api, ns) == str(good)
    (event,) = wait_for(lambda: events(api, ns, "AucBelowThreshold"), what="Warning Event")
    assert event["type"] == "Warning"
    assert "0.61" in event["message"]


def test_unready_rollout_rolls_back_and_spec_edit_rolls_to_older_version(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    if not k8s_cluster.fault_injection:
        pytest.fail("the cluster has no leadops.io/fault stages; rollback cannot be exercised")
    ns = k8s_namespace
    api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    v1, data1 = artifact(age_minutes=40)
    publish_version(api, ns, data1)
    wait_for(lambda: serving(api, ns, v1), what=f"v1 {v1} serving")
    v2, data2 = artifact(age_minutes=20)
    publish_version(api, ns, data2)
    wait_for(lambda: serving(api, ns, v2), what=f"v2 {v2} serving")

    # Spec edit (kubectl edit / Git revert) to the older version: rolled back to it.
    api.patch("LeadModel", ns, NAME, {"spec": {"modelVersion": str(v1)}})
    wait_for(lambda: serving(api, ns, v1), what="pinned older version serving")
    assert get_lm(api, ns)["status"]["previousVersion"] == str(v2)

    # Pin v2 again with Pods that never become Ready: rolled back to v1 automatically.
    pin_never_ready_then_rolled_back(api, ns, v2)
    assert deployment_version(api, ns) == str(v1)
    assert condition(api, ns, "Degraded")["status"] == "True"
    status = get_lm(api, ns)["status"]
    assert status["servingVersion"] == str(v1)
    rolled = [h for h in status["history"] if h["version"] == str(v2)]
    assert rolled
    assert rolled[0]["reason"] == "ProgressDeadlineExceeded"
    (warning, *_) = events(api, ns, "ProgressDeadlineExceeded")
    assert warning["type"] == "Warning"
    assert "Rolled back Deployment" in warning["message"]
    # The pinned version is refused from now on, and nothing flaps.
    wait_for(
        lambda: condition(api, ns, "Ready").get("reason") == "PinnedVersionRolledBack",
        what="pinned rolled-back version refused",
    )
    time.sleep(3)  # two resync periods: the decision must hold
    assert deployment_version(api, ns) == str(v1)


def test_unknown_version_and_invalid_specs_change_nothing(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    ns = k8s_namespace
    # Rejected by the CRD schema: never stored.
    bad = leadmodel(ns, gates={"minAuc": "1.5"})
    with pytest.raises(kube.KubeError) as info:
        api.create(bad)
    assert info.value.status == 422
    with pytest.raises(kube.KubeError) as cel:
        api.create(leadmodel(ns, gates={"signature": "Required"}))
    assert cel.value.status == 422

    api.create(leadmodel(ns, scorer={"replicas": 1}))
    v1, data = artifact(age_minutes=30)
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    publish_version(api, ns, data)
    wait_for(lambda: serving(api, ns, v1), what="v1 serving")

    # Unknown pinned version: Ready=False/UnknownModelVersion, serving untouched.
    api.patch("LeadModel", ns, NAME, {"spec": {"modelVersion": "1234567890"}})
    wait_for(
        lambda: condition(api, ns, "Ready").get("reason") == "UnknownModelVersion",
        what="UnknownModelVersion",
    )
    assert deployment_version(api, ns) == str(v1)
    assert events(api, ns, "UnknownModelVersion")

    # Passes the schema, fails the operator's cron check: InvalidSpec, children untouched.
    api.patch(
        "LeadModel",
        ns,
        NAME,
        {"spec": {"modelVersion": "", "training": {"schedule": "61 * * * *"}}},
    )
    ready = wait_for(
        lambda: (c := condition(api, ns, "Ready")).get("reason") == "InvalidSpec" and c,
        what="InvalidSpec",
    )
    assert "minute 61" in ready["message"]
    assert ready["observedGeneration"] == get_lm(api, ns)["metadata"]["generation"]
    assert api.get("CronJob", ns, f"{NAME}-train")["spec"]["schedule"] == "17 3 * * *"  # type: ignore[index]
    assert deployment_version(api, ns) == str(v1)
    assert events(api, ns, "InvalidSpec")[0]["type"] == "Warning"


@contextlib.contextmanager
def operator_process(namespace: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`leadops operator` in its own process, SIGKILLed on exit like a crashed Pod.

    KopfRunner stops gracefully: queued events are still handled for a while, so an operator
    "stopped" that way may finish the very rollout the test wants it to miss.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                *(str(ROOT / ".venv" / "bin" / "leadops"), "operator", "--namespace", namespace),
                *("--metrics-port", "0", "--health-address", ""),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        logger.info("killed operator's log:\n%s", log.read_text(errors="replace")[-6000:])


def test_operator_killed_mid_rollout_converges_after_restart(
    api: kube.Kube, k8s_namespace: str, k8s_cluster: KubeCluster, tmp_path: Path
) -> None:
    ns = k8s_namespace
    # The deadline must outlast the moment between seeing the rollout start and the SIGKILL.
    deadline = 8
    with operator_process(ns, tmp_path / "operator.log"):
        api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": deadline}))
        wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
        v1, v2 = serve_two_versions(api, ns)
        # Back to v1 with Pods that will never be Ready; kill the operator once it has begun.
        api.patch(
            "LeadModel",
            ns,
            NAME,
            {
                "spec": {
                    "modelVersion": str(v1),
                    "scorer": {"podAnnotations": {"leadops.io/fault": "never-ready"}},
                }
            },
        )
        wait_for(
            lambda: deployment_version(api, ns) == str(v1), what="rollout to v1 started", poll=0.05
        )
    # The operator is gone mid-rollout; the progress deadline passes while nobody watches.
    wait_past_deadline(api, ns)
    assert deployment_version(api, ns) == str(v1)
    with operator(ns):
        wait_for(
            lambda: condition(api, ns, "RolledOut").get("reason") == "RolledBack",
            what="rollback after restart",
        )
        assert deployment_version(api, ns) == str(v2)
        cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, v1))
        assert cm is not None
        assert cm["metadata"]["annotations"][registry.ANN_ROLLBACK_REASON] == (
            "ProgressDeadlineExceeded"
        )


def test_publish_cli_refuses_a_damaged_artifact(tmp_path: Path) -> None:
    _, data = artifact(age_minutes=1)
    path = tmp_path / "model.json"
    doc = json.loads(data)
    doc["metrics"]["auc"] = 0.9
    path.write_text(json.dumps(doc))
    out = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "leadops"),
            "publish",
            "--artifact",
            str(path),
            "--leadmodel",
            "x",
            "--namespace",
            "y",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": "/nonexistent"},
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "DigestMismatch" in out.stderr


def _publish_cli(
    kubeconfig: Path, path: Path, ns: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "leadops"), "publish", "--artifact", str(path),
            "--leadmodel", NAME, "--namespace", ns, *extra,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        check=False,
        timeout=120,
    )  # fmt: skip


def test_publish_cli_needs_the_leadmodel_and_makes_it_the_owner(
    api: kube.Kube, k8s_namespace: str, k8s_cluster: KubeCluster, tmp_path: Path
) -> None:
    ns = k8s_namespace
    version, data = artifact(age_minutes=1)
    path = tmp_path / "model.json"
    path.write_bytes(data)
    cm_name = registry.configmap_name(NAME, version)

    missing = _publish_cli(k8s_cluster.kubeconfig, path, ns)
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.count("\n") == 1, missing.stderr
    assert f"LeadModel {NAME!r} not found in namespace {ns!r}" in missing.stderr
    assert api.get("ConfigMap", ns, cm_name) is None  # no stray version

    api.create(leadmodel(ns))  # no operator here: publishing needs only the LeadModel
    uid = get_lm(api, ns)["metadata"]["uid"]
    stale = _publish_cli(k8s_cluster.kubeconfig, path, ns, "--owner-uid", "not-its-uid")
    assert stale.returncode == 2, stale.stderr
    assert stale.stderr.count("\n") == 1, stale.stderr
    assert "re-created since" in stale.stderr
    assert api.get("ConfigMap", ns, cm_name) is None

    done = _publish_cli(k8s_cluster.kubeconfig, path, ns, "--owner-uid", uid)
    assert done.returncode == 0, done.stderr
    cm = api.get("ConfigMap", ns, cm_name)
    assert cm is not None
    (ref,) = cm["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "LeadModel",
        NAME,
        uid,
        True,
    )

    # Owned: it goes with its LeadModel, so a re-created one never serves it again.
    api.delete("LeadModel", ns, NAME)
    wait_for(lambda: api.get("ConfigMap", ns, cm_name) is None, what="version garbage-collected")


def test_cli_status_rollback_backfill_and_train(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    k8s_cluster: KubeCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = k8s_namespace
    base = ["--namespace", ns, "--kubeconfig", str(k8s_cluster.kubeconfig)]
    api.create(leadmodel(ns, scorer={"replicas": 1}))
    wait_for(lambda: api.get("CronJob", ns, f"{NAME}-pii-backfill"), what="backfill CronJob")
    v1, v2 = serve_two_versions(api, ns)

    assert op_cli.main_status([NAME, *base]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["NAMESPACE", "NAME", "SERVING", "AUC"]
    assert row.split()[:6] == [ns, NAME, str(v2), "0.8", "ok", "-"]

    assert cli.main(["rollback", NAME, "--to", "42", *base]) == 2
    # kopf logs to the same stderr in this process: look at our lines only.
    (err,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("leadops")]
    assert "version 42 is not in the registry" in err
    assert cli.main(["status", "nope", *base]) == 2
    assert "'nope' not found" in capsys.readouterr().err

    assert op_cli.main_rollback([NAME, "--reason", "bad scores", *base]) == 0  # to previous
    said = capsys.readouterr().out
    assert f"set to {v1}" in said
    assert f"version {v2} marked rolled back by " in said
    wait_for(lambda: serving(api, ns, v1), what="CLI rollback served")
    _rollback_stays_until_allowed(api, ns, base, v1=v1, v2=v2, capsys=capsys)

    assert op_cli.main_backfill([NAME, "--dry-run", *base]) == 0
    job_name = capsys.readouterr().out.split()[0].removeprefix("job.batch/")
    job = api.get("Job", ns, job_name)
    assert job is not None
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-1] == "--dry-run"
    assert job["metadata"]["ownerReferences"][0]["name"] == f"{NAME}-pii-backfill"
    # A second run straight after gets its own Job (the server names it), not a name clash.
    assert op_cli.main_backfill([NAME, "--dry-run", *base]) == 0
    again = capsys.readouterr().out.split()[0].removeprefix("job.batch/")
    assert again != job_name
    assert api.get("Job", ns, again) is not None
    assert op_cli.main_train([NAME, *base]) == 0
    train_job = capsys.readouterr().out.split()[0].removeprefix("job.batch/")
    assert train_job.startswith(f"{NAME}-train-manual-")
    assert api.get("Job", ns, train_job) is not None


def _rollback_stays_until_allowed(
    api: kube.Kube,
    ns: str,
    base: list[str],
    *,
    v1: int,
    v2: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After `leadops rollback` from v2: v2 stays out after an unpin, a second rollback never
    flips back to it, status.history says who and why, and `leadops allow` lets it serve."""
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, v2)) or {}
    ann = cm["metadata"]["annotations"]
    who = ann[registry.ANN_ROLLED_BACK_BY]
    assert who not in {"", "unknown user"}, "the Kubernetes user, from a SelfSubjectReview"
    assert (ann[registry.ANN_ROLLBACK_REASON], ann[registry.ANN_ROLLBACK_MESSAGE]) == (
        "ManualRollback", "bad scores",
    )  # fmt: skip

    def history_of_v2() -> dict[str, Any] | None:
        history = (get_lm(api, ns).get("status") or {}).get("history") or []
        return next((h for h in history if h["version"] == str(v2) and h.get("rolledBackBy")), None)

    said = wait_for(history_of_v2, what="status.history names who rolled v2 back")
    assert (said["reason"], said["rolledBackBy"], said["message"]) == (
        "ManualRollback", who, "bad scores",
    )  # fmt: skip

    # Unpinned: v2, newer and passing, stays out; a pass at the new generation proves it.
    api.patch("LeadModel", ns, NAME, {"spec": {"modelVersion": ""}})
    generation = get_lm(api, ns)["metadata"]["generation"]
    wait_for(
        lambda: (get_lm(api, ns).get("status") or {}).get("observedGeneration") == generation,
        what="the unpin reconciled",
    )
    time.sleep(3)  # and a resync after it (LEADOPS_RESYNC_SECONDS=2): still nothing moves
    assert serving(api, ns, v1)
    assert deployment_version(api, ns) == str(v1)

    # A second rollback never goes back to the version the first one left.
    assert cli.main(["rollback", NAME, *base]) == 2
    (err,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("leadops")]
    assert "no older version in the registry that was not rolled back" in err
    assert cli.main(["rollback", NAME, "--to", str(v2), *base]) == 2
    (err,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("leadops")]
    assert f"leadops allow {NAME} {v2}" in err
    assert cli.main(["allow", NAME, "42", *base]) == 2
    (err,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("leadops")]
    assert "version 42 is not in LeadModel" in err

    # Allowed again: the newest passing version, so it serves again (nothing is pinned).
    assert cli.main(["allow", NAME, str(v2), *base]) == 0
    assert f"version {v2} allowed again" in capsys.readouterr().out
    wait_for(lambda: serving(api, ns, v2), what="the allowed version served again")
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, v2)) or {}
    assert not set(registry.ROLLBACK_MARK) & set(cm["metadata"]["annotations"])


def _monitoring_crd(plural: str, kind: str) -> dict[str, Any]:
    """A stand-in for the Prometheus Operator's CRD: same group, names and scope, open schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def test_monitoring_children_only_when_prometheus_operator_crds_exist(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    k8s_cluster: KubeCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = k8s_namespace
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    installed = api.has_api("monitoring.coreos.com/v1", "servicemonitors")
    if not installed:
        api.create(leadmodel(ns))
        # Without the CRDs a pass completes (status written) and creates no monitoring objects.
        wait_for(lambda: condition(api, ns, "Ready"), what="first reconcile")
        for plural, kind in [
            ("servicemonitors", "ServiceMonitor"),
            ("prometheusrules", "PrometheusRule"),
        ]:
            api.request("POST", crds, body=_monitoring_crd(plural, kind))
            crd_established(k8s_cluster.api_client, name=f"{plural}.monitoring.coreos.com")
        api.delete("LeadModel", ns, NAME)
        wait_for(lambda: api.get("LeadModel", ns, NAME) is None, what="LeadModel gone")
    read_world._PROM.clear()  # the operator re-checks discovery at most once a minute
    try:
        api.create(leadmodel(ns))
        uid = get_lm(api, ns)["metadata"]["uid"]
        monitor = wait_for(
            lambda: api.get("ServiceMonitor", ns, f"{NAME}-scorer"), what="ServiceMonitor"
        )
        rule = wait_for(
            lambda: api.get("PrometheusRule", ns, f"{NAME}-alerts"), what="PrometheusRule"
        )
        for child in (monitor, rule):
            assert child["metadata"]["ownerReferences"][0]["uid"] == uid
        alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
        assert {"LeadModelHighDrift", "LeadModelStale", "LeadModelLowAuc"} <= alerts
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        drift = next(r for g in rule["spec"]["groups"] for r in g["rules"] if "drift" in r["expr"])
        assert f'{{namespace="{ns}", service="{NAME}-scorer"}}' in drift["expr"]
        # Rules turned off (the chart ships them once instead): the operator removes its copy.
        monkeypatch.setenv("LEADOPS_ALERT_RULES", "false")
        wait_for(
            lambda: api.get("PrometheusRule", ns, f"{NAME}-alerts") is None,
            what="PrometheusRule removed",
        )
        assert api.get("ServiceMonitor", ns, f"{NAME}-scorer") is not None
    finally:
        if not installed:  # leave the session's cluster as we found it
            api.delete("LeadModel", ns, NAME)
            for plural in ("servicemonitors", "prometheusrules"):
                api.request("DELETE", f"{crds}/{plural}.monitoring.coreos.com")
            wait_for(
                lambda: not api.has_api("monitoring.coreos.com/v1", "servicemonitors"),
                what="monitoring CRDs removed",
            )
            read_world._PROM.clear()


def test_scorer_reporting_critical_after_rollout_rolls_back(
    api: kube.Kube,
    k8s_namespace: str,
    start_scorer: StartScorer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real scorer (uvicorn) serves v2 and calls it critical_low_auc under its thresholds;
    the operator reads /ops/model-status with the key from the LeadModel's Secret and rolls back.
    (kwok Pods run nothing, so the scorer runs here and LEADOPS_SCORER_URL points at it.)"""
    ns = k8s_namespace
    v1, data1 = artifact(age_minutes=40)
    v2, data2 = artifact(age_minutes=20)
    model = tmp_path / "v2.json"
    model.write_bytes(data2)
    scorer = start_scorer(model=model, auc_warning="0.95", auc_critical="0.9")
    with scorer.client() as http:
        report = http.get("/ops/model-status").json()
    assert (report["version"], report["health"]) == (v2, "critical_low_auc")
    scorer_api = create_scorer_api_secret(api, ns)
    monkeypatch.setenv("LEADOPS_SCORER_URL", scorer.url)
    with operator(ns):
        api.create(leadmodel(ns, scorer={"replicas": 1, "apiKeySecretRef": scorer_api}))
        wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
        publish_version(api, ns, data1)
        wait_for(lambda: serving(api, ns, v1), what="v1 serving")
        publish_version(api, ns, data2)
        wait_for(
            lambda: condition(api, ns, "RolledOut").get("reason") == "RolledBack",
            what="rollback on the scorer's report",
        )
        assert deployment_version(api, ns) == str(v1)
        degraded = condition(api, ns, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "ScorerUnhealthy")
        (event,) = events(api, ns, "ScorerUnhealthy")
        assert "critical_low_auc" in event["message"]


def test_pods_refused_by_a_quota_are_the_namespaces_fault_not_the_versions(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    """The quota admission refuses the new version's Pod (ReplicaSet FailedCreate): reported
    as Ready=False/QuotaExceeded with a Warning Event, never rolled back, even after the
    progress deadline; once the quota allows it, the rollout proceeds by itself."""
    ns = k8s_namespace
    core: Any = client.CoreV1Api(k8s_cluster.api_client)
    api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    v1, data1 = artifact(age_minutes=40)
    publish_version(api, ns, data1)
    wait_for(lambda: serving(api, ns, v1), what="v1 serving")
    # One Pod at most: v1's. The surge Pod of the next version is refused.
    core.create_namespaced_resource_quota(
        ns, {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}}
    )
    wait_for(
        lambda: (
            (core.read_namespaced_resource_quota("one-pod", ns).status.used or {}).get("pods")
            == "1"
        ),
        what="quota counted",
    )
    v2, data2 = artifact(age_minutes=20)
    publish_version(api, ns, data2)
    ready = not_ready_for(api, ns, "QuotaExceeded")
    assert "exceeded quota" in ready["message"]
    # Past the deadline: still the namespace's fault, nothing rolled back or marked failed.
    wait_past_deadline(api, ns)
    time.sleep(4)  # a few passes of the operator's 3 s look-again
    still_waits_unblamed(api, ns, serving_version=v1, target=v2)
    # The namespace allows it again: the rollout proceeds by itself.
    core.delete_namespaced_resource_quota("one-pod", ns)
    wait_for(lambda: serving(api, ns, v2), what="v2 serving once the quota is gone")
    assert condition(api, ns, "Ready")["reason"] == "Serving"


def test_a_rollout_whose_pods_no_node_starts_waits_for_them_not_rolled_back(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    """The new version's Pod is scheduled, but no kubelet takes it up (as after an API server
    outage, while kube-controller-manager or a node lags): past the deadline the version has
    had no chance, so it is reported as Ready=False/PodsNotStarted with a Warning Event and never
    rolled back. Once a kubelet starts the Pod and it gets ready, the version serves."""
    if not k8s_cluster.fault_injection:
        pytest.fail("the cluster has no leadops.io/fault stages; the Pod cannot be held")
    ns = k8s_namespace
    api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
    v1, v2 = serve_two_versions(api, ns)
    api.patch("LeadModel", ns, NAME, {"spec": {"modelVersion": str(v1)}})
    wait_for(lambda: serving(api, ns, v1), what="pinned older version serving")
    # v2 again, its Pod held: no kwok stage moves it (it stays Pending on its node).
    held = {"scorer": {"podAnnotations": {"leadops.io/fault": "held"}}}
    api.patch("LeadModel", ns, NAME, {"spec": {"modelVersion": str(v2), **held}})
    ready = not_ready_for(api, ns, "PodsNotStarted")
    assert "started by its node's kubelet" in ready["message"]
    time.sleep(4)  # a few passes of the operator's 3 s look-again, all past the deadline
    still_waits_unblamed(api, ns, serving_version=v1, target=v2)
    assert len(events(api, ns, "PodsNotStarted")) == 1, "said once, not every pass"

    (pod,) = [
        p
        for p in api.list("Pod", ns)
        if p["metadata"].get("labels", {}).get(registry.MODEL_VERSION) == str(v2)
    ]
    assert pod["spec"].get("nodeName"), "the scheduler placed it"
    _start_as_a_kubelet(api, pod)
    wait_for(lambda: serving(api, ns, v2), what="v2 serving once its Pod started")
    assert condition(api, ns, "Ready")["reason"] == "Serving"


def _start_as_a_kubelet(api: kube.Kube, pod: dict[str, Any]) -> None:
    """Report the Pod running and ready, as its kubelet would once it has started it."""
    now = rfc3339(datetime.now(UTC))
    spec = pod["spec"]

    def started(container: dict[str, Any], *, init: bool) -> dict[str, Any]:
        state = (
            {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
            if init
            else {"running": {"startedAt": now}}
        )
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": not init,
            "restartCount": 0,
            "started": not init,
            "state": state,
        }

    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now}
        for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    ]
    status = {
        "phase": "Running",
        "startTime": now,
        "conditions": conditions,
        "initContainerStatuses": [started(c, init=True) for c in spec.get("initContainers", [])],
        "containerStatuses": [started(c, init=False) for c in spec["containers"]],
    }
    api.patch(
        "Pod",
        pod["metadata"]["namespace"],
        pod["metadata"]["name"],
        {"status": status},
        sub="status",
    )


def _deny_pods(adm: Any, name: str, ns: str) -> None:
    """A ValidatingAdmissionPolicy (and its binding) that refuses every new Pod in `ns`."""
    adm.create_validating_admission_policy(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": "no new Pods here (test)"}],
            },
        }
    )
    adm.create_validating_admission_policy_binding(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        }
    )


def _pod_refused(core: Any, ns: str) -> bool:
    """Is a plain Pod refused by admission in `ns` (a dry run: nothing is created)?"""
    probe = {
        "metadata": {"name": "admission-probe"},
        "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
    }
    try:
        core.create_namespaced_pod(ns, probe, dry_run="All")
    except client.ApiException as exc:
        return exc.status in (403, 422)
    return False


def test_pods_forbidden_by_admission_are_the_namespaces_fault_not_the_versions(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    """Admission refuses the new version's Pods (a ValidatingAdmissionPolicy on the namespace,
    ReplicaSet FailedCreate): Ready=False/PodsForbidden with the API server's message and a
    Warning Event, nothing rolled back, even past the progress deadline; once the policy is
    gone, the rollout proceeds by itself."""
    ns = k8s_namespace
    core: Any = client.CoreV1Api(k8s_cluster.api_client)
    adm: Any = client.AdmissionregistrationV1Api(k8s_cluster.api_client)
    api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    v1, data1 = artifact(age_minutes=40)
    publish_version(api, ns, data1)
    wait_for(lambda: serving(api, ns, v1), what="v1 serving")
    policy = f"leadops-test-no-pods-{ns}"
    _deny_pods(adm, policy, ns)
    try:
        wait_for(lambda: _pod_refused(core, ns), what="the policy in force")
        v2, data2 = artifact(age_minutes=20)
        publish_version(api, ns, data2)
        ready = not_ready_for(api, ns, "PodsForbidden")
        assert "no new Pods here (test)" in ready["message"]
        wait_past_deadline(api, ns)
        time.sleep(4)  # a few passes of the operator's 3 s look-again
        still_waits_unblamed(api, ns, serving_version=v1, target=v2)
    finally:
        adm.delete_validating_admission_policy_binding(policy)
        adm.delete_validating_admission_policy(policy)
    wait_for(lambda: serving(api, ns, v2), what="v2 serving once the policy is gone")
    assert condition(api, ns, "Ready")["reason"] == "Serving"
