"""A LeadModel's life on the real node, through the images built here (issue #16, 1-5):
the chart installs the operator image; a bootstrap model is published from a Pod; leads
and outcomes reach the scorer through its Service from a Pod; the training CronJob's
Job reads the export by the Service's DNS name and publishes; the operator rolls the new
version out to new scorer Pods; the backfill Job redacts PII in the Redis Pod; the
scorer's log holds no PII and no secret.

The tests run in file order and share one operator, tenant and Redis (module fixtures):
each step starts from the state the one before left."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pods import (
    JOBS_IMAGE,
    OPERATOR_IMAGE,
    SCORER_IMAGE,
    apply,
    get_json,
    logs,
    may_publish,
    namespace,
    pod,
    run_to_completion,
    score_from_a_pod,
    start_redis,
    wait_for,
    wait_pod_phase,
)
from tests.fixtures.control_plane import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "leadops"
NAME = "acme"
API_KEY = secrets.token_hex(16)
# A lead whose contact data must never show in a log line or survive the backfill.
PII_EMAIL = "jane.roe.e2e@example.com"
PII_PHONE = "+1 415 555 0199"


@dataclass
class Tenant:
    namespace: str
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
            "gates": {"minAuc": "0.60", "minTrainSamples": 100, "maxPositiveRate": "0.95"},
            # Both CronJobs only run when a test starts a Job from them.
            "training": {"schedule": "0 0 1 1 *", "suspend": True},
            "piiBackfill": {
                "schedule": "0 0 1 1 *",
                "suspend": True,
                "dryRun": False,
                "keyPattern": "mem:*",
            },
            "scorer": {
                "replicas": 1,
                "image": SCORER_IMAGE,
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
def tenant(real_cluster: LocalCluster) -> Iterator[Tenant]:
    suffix = secrets.token_hex(3)
    t = Tenant(
        namespace=f"sales-{suffix}", operator_namespace=f"leadops-{suffix}", release=f"e2e-{suffix}"
    )
    for ns in (t.namespace, t.operator_namespace):
        namespace(real_cluster, ns)
    real_cluster.run_helm(
        "install", t.release, str(CHART), "-n", t.operator_namespace,
        "--set", "image.pullPolicy=Never",
        "--set", f"operator.watchNamespaces={{{t.namespace}}}",
        "--set", "operator.resyncSeconds=5",
    )  # fmt: skip
    for name, key, value in (
        ("acme-redis", "url", f"redis://redis.{t.namespace}.svc:6379/0"),
        ("acme-scorer-api-key", "key", API_KEY),
    ):
        real_cluster.run_kubectl(
            "create", "secret", "generic", name, "-n", t.namespace, f"--from-literal={key}={value}"
        )
        # A LeadModel may name only Secrets that opt in to it (docs/security.md).
        real_cluster.run_kubectl(
            "annotate", "secret", name, "-n", t.namespace, f"leadops.io/usable-by={NAME}"
        )
    start_redis(real_cluster, t.namespace)
    try:
        yield t
    finally:
        real_cluster.run_helm("uninstall", t.release, "-n", t.operator_namespace)
        for ns in (t.namespace, t.operator_namespace):
            real_cluster.run_kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _operator_pods(cluster: LocalCluster, t: Tenant) -> list[dict[str, Any]]:
    """The chart's operator replicas (two: one leads, one waits)."""
    pods: list[dict[str, Any]] = get_json(cluster, "pods", "-n", t.operator_namespace)["items"]
    return pods


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _leader_pod(cluster: LocalCluster, t: Tenant) -> str:
    """The operator Pod holding the Lease (its identity is HOSTNAME_suffix)."""
    lease = get_json(cluster, "lease", f"{t.release}-leadops", "-n", t.operator_namespace)
    return str(lease["spec"]["holderIdentity"]).rpartition("_")[0]


def _wait_or_explain(
    cluster: LocalCluster, t: Tenant, what: str, check: Any, *, timeout: float
) -> Any:
    """wait_for; on a timeout, say where the tenant stands: the LeadModel's status, its
    scorer's Deployment, ReplicaSets and Pods, and the leading operator's last log lines."""
    try:
        return wait_for(what, check, timeout=timeout)
    except TimeoutError as exc:
        ns = t.namespace
        status = get_json(cluster, "leadmodel", NAME, "-n", ns).get("status", {})
        scorer = cluster.run_kubectl(
            "get", "deployment,replicaset,pod", "-n", ns, "-o", "wide", check=False
        ).stdout
        operator = _leader_pod(cluster, t)
        log = logs(cluster, operator, t.operator_namespace, "--tail=60")
        raise AssertionError(
            f"{exc}\nstatus: {status}\n{scorer}\noperator {operator} log:\n{log}"
        ) from None


def _serving_version(cluster: LocalCluster, ns: str) -> str | None:
    lm = get_json(cluster, "leadmodel", NAME, "-n", ns)
    value = lm.get("status", {}).get("servingVersion")
    return None if value in (None, "") else str(value)


# -- 1. the chart installs the operator image ---------------------------------------------


def test_helm_install_runs_the_operator_image_ready_with_only_its_chart_rbac(
    real_cluster: LocalCluster, tenant: Tenant
) -> None:
    started = time.monotonic()
    wait_for(
        "both operator Pods Ready (the leader and its standby)",
        lambda: [_ready(p) for p in _operator_pods(real_cluster, tenant)] == [True, True],
        timeout=180,
    )
    print(f"operator Pods Ready {time.monotonic() - started:.1f}s after helm install returned")
    leader = wait_for(
        "one of them holding the Lease", lambda: _leader_pod(real_cluster, tenant), timeout=60
    )
    pods = _operator_pods(real_cluster, tenant)
    assert leader in {p["metadata"]["name"] for p in pods}
    for operator in pods:
        assert operator["spec"]["containers"][0]["image"] == OPERATOR_IMAGE
        assert operator["spec"]["serviceAccountName"] == f"{tenant.release}-leadops"
        assert operator["spec"]["nodeName"] == "leadops-node"
        status = operator["status"]["containerStatuses"][0]
        assert status["ready"]
        assert status["restartCount"] == 0  # the standby passes its probes while it waits
        log = logs(real_cluster, operator["metadata"]["name"], tenant.operator_namespace)
        assert "forbidden" not in log.lower(), log
        said = (
            "is now the leader" if operator["metadata"]["name"] == leader else "waiting for Lease"
        )
        assert said in log, log


# -- 2. bootstrap model, leads through the Service, training Job, rollout ------------------


def test_training_job_reads_the_export_by_service_dns_and_the_new_version_serves(
    real_cluster: LocalCluster, tenant: Tenant
) -> None:
    ns = tenant.namespace
    apply(real_cluster, _leadmodel(ns))
    # The jobs' identity is its ServiceAccount, Role and RoleBinding, made in the operator's
    # passes: wait until the account may publish (create ConfigMaps), not only until it exists.
    jobs_account = f"system:serviceaccount:{ns}:{NAME}-jobs"
    _wait_or_explain(
        real_cluster,
        tenant,
        "the jobs ServiceAccount the operator makes, allowed to publish",
        lambda: may_publish(real_cluster, ns, jobs_account),
        timeout=60,
    )
    uid = get_json(real_cluster, "leadmodel", NAME, "-n", ns)["metadata"]["uid"]
    # Version 1: trained on synthetic outcomes and published from a Pod, as a user would.
    bootstrap = (
        "leadops synth --n 3000 --seed 11 --output /work/outcomes.csv"
        " && leadops train --input /work/outcomes.csv --output /work/model.json"
        f" && leadops publish --artifact /work/model.json --leadmodel {NAME}"
        f" --namespace {ns} --owner-uid {uid}"
    )
    run_to_completion(
        real_cluster, "bootstrap", ns, ["/bin/sh", "-c", bootstrap], service_account=f"{NAME}-jobs"
    )
    published = time.monotonic()
    first = _wait_or_explain(
        real_cluster,
        tenant,
        "a first version serving",
        lambda: _serving_version(real_cluster, ns),
        timeout=240,
    )
    print(f"first version: artifact published to serving in {time.monotonic() - published:.1f}s")

    scored = score_from_a_pod(real_cluster, ns, NAME, "leads", leads=400, outcomes=True)
    assert scored == {"versions": [int(first)], "errors": 0}

    # The training Job runs the jobs image (derived from the scorer's), not the serving one.
    cron = get_json(real_cluster, "cronjob", f"{NAME}-train", "-n", ns)
    (train,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert train["image"] == JOBS_IMAGE
    real_cluster.run_kubectl("create", "job", "train-now", f"--from=cronjob/{NAME}-train", "-n", ns)
    wait_for(
        "the training Job complete",
        lambda: (
            get_json(real_cluster, "job", "train-now", "-n", ns).get("status", {}).get("succeeded")
            == 1
        ),
        timeout=300,
        interval=1,
    )
    trained = time.monotonic()
    second = _wait_or_explain(
        real_cluster,
        tenant,
        "the trained version serving",
        lambda: (v := _serving_version(real_cluster, ns)) != first and v,
        timeout=240,
    )
    print(f"trained version: training Job done to serving in {time.monotonic() - trained:.1f}s")

    deployment = get_json(real_cluster, "deployment", f"{NAME}-scorer", "-n", ns)
    assert deployment["spec"]["template"]["spec"]["initContainers"][0]["name"] == "unpack-model"
    after = score_from_a_pod(real_cluster, ns, NAME, "leads-v2", leads=20, outcomes=False)
    assert after == {"versions": [int(second)], "errors": 0}


# -- 3. a rollout that cannot start: ProgressDeadlineExceeded, rollback, no errors ---------

MISSING_IMAGE = "docker.io/leadops/scorer:0.0.0-missing"
DEADLINE_SECONDS = 20


def _deployment(cluster: LocalCluster, ns: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(cluster, "deployment", f"{NAME}-scorer", "-n", ns)
    return result


def _warning_events(cluster: LocalCluster, ns: str, reason: str) -> list[dict[str, Any]]:
    events = get_json(cluster, "events", "-n", ns, f"--field-selector=reason={reason},type=Warning")
    return [e for e in events["items"] if e["involvedObject"]["kind"] == "LeadModel"]


def test_a_rollout_whose_pods_cannot_start_is_rolled_back_while_old_pods_serve(
    real_cluster: LocalCluster, tenant: Tenant
) -> None:
    ns = tenant.namespace
    # From a settled scorer: the last test's version may still be rolling out to its last
    # replica (a slow one on a loaded machine). The 20 s deadline set below applies to that
    # rollout too, and would blame the version, not the image.
    wait_for(
        "the serving version rolled out on every replica",
        lambda: _rolled_out_on(_deployment(real_cluster, ns), SCORER_IMAGE),
        timeout=180,
        interval=1,
    )
    serving = _deployment(real_cluster, ns)["metadata"]["annotations"]["leadops.io/model-version"]
    # Requests through the Service for the whole rollout, from a Pod: bounded in count and time.
    script = f"""
import json, time, httpx
lead = {{"source": "web", "details": "e2e rollout traffic"}}
versions, errors, sent = {{}}, 0, 0
deadline = time.monotonic() + 90
with httpx.Client(base_url="http://{NAME}-scorer.{ns}.svc:8080", timeout=10) as http:
    while time.monotonic() < deadline and sent < 900:
        sent += 1
        try:
            reply = http.post("/v1/lead", json=lead)
            if reply.status_code == 200:
                v = str(reply.json()["model_version"])
                versions[v] = versions.get(v, 0) + 1
            else:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        time.sleep(0.1)
print(json.dumps({{"sent": sent, "errors": errors, "versions": versions}}))
"""
    traffic = pod(
        "traffic",
        ns,
        {"image": JOBS_IMAGE, "command": ["python", "-c", script]},  # httpx is a jobs tool
        restartPolicy="Never",
    )
    apply(real_cluster, traffic)
    wait_pod_phase(real_cluster, "traffic", ns, {"Running"}, timeout=60)
    started = time.monotonic()
    # The image cannot be had: kubelet's pull fails (no registry is reachable from the node).
    real_cluster.run_kubectl(
        "patch", "leadmodel", NAME, "-n", ns, "--type=merge", "-p",
        json.dumps({"spec": {"scorer": {"image": MISSING_IMAGE,
                                        "progressDeadlineSeconds": DEADLINE_SECONDS}}}),
    )  # fmt: skip
    wait_for(
        "new scorer Pods failing to pull the missing image",
        lambda: any(
            (s.get("state", {}).get("waiting") or {}).get("reason")
            in {"ErrImagePull", "ImagePullBackOff"}
            for p in get_json(
                real_cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=scorer"
            )["items"]
            for s in p.get("status", {}).get("initContainerStatuses", [])
            + p.get("status", {}).get("containerStatuses", [])
        ),
        timeout=60,
    )
    events = wait_for(
        "the operator's ProgressDeadlineExceeded rollback",
        lambda: _warning_events(real_cluster, ns, "ProgressDeadlineExceeded"),
        timeout=DEADLINE_SECONDS + 60,
        interval=0.5,
    )
    rolled_back = time.monotonic()
    assert "Rolled back" in events[0]["message"], events[0]["message"]
    deployment = _deployment(real_cluster, ns)
    annotations = deployment["metadata"]["annotations"]
    assert annotations["leadops.io/rollout-kind"] == "RollBack"
    assert annotations.get("leadops.io/previous-version") == serving
    # The rollback restored the image the version served on, not only the version; the
    # missing image is refused while the spec names it, and the version is not blamed.
    pod_spec = deployment["spec"]["template"]["spec"]
    assert {c["image"] for c in pod_spec["containers"] + pod_spec["initContainers"]} == {
        SCORER_IMAGE
    }
    assert annotations["leadops.io/rolled-back-image"] == MISSING_IMAGE
    assert f"from image {MISSING_IMAGE} to {SCORER_IMAGE}" in events[0]["message"]
    registry_cm = get_json(real_cluster, "configmap", f"{NAME}-model-{serving}", "-n", ns)
    assert "leadops.io/rolled-back-at" not in registry_cm["metadata"].get("annotations", {})
    print(
        f"rollout to a missing image: rolled back {rolled_back - started:.1f}s after the change"
        f" (progressDeadlineSeconds {DEADLINE_SECONDS})"
    )
    wait_pod_phase(real_cluster, "traffic", ns, {"Succeeded"}, timeout=120)
    summary = json.loads(logs(real_cluster, "traffic", ns).strip().splitlines()[-1])
    assert summary["errors"] == 0, summary
    # Every answer came from the old Pods, still serving the version from before.
    assert summary["versions"] == {serving: summary["sent"]}, summary

    # Put the image back; the scorer is Available again for the tests that follow.
    real_cluster.run_kubectl(
        "patch", "leadmodel", NAME, "-n", ns, "--type=merge", "-p",
        json.dumps({"spec": {"scorer": {"image": SCORER_IMAGE, "progressDeadlineSeconds": 120}}}),
    )  # fmt: skip
    wait_for(
        "the scorer Deployment back on the good image, all replicas updated and available",
        lambda: _rolled_out_on(_deployment(real_cluster, ns), SCORER_IMAGE),
        timeout=180,
        interval=1,
    )


def _rolled_out_on(deployment: dict[str, Any], image: str) -> bool:
    # Not `kubectl rollout status`: right after the patch it still reads the old
    # ProgressDeadlineExceeded condition and gives up at once.
    spec, status = deployment["spec"], deployment.get("status", {})
    images = {c["image"] for c in spec["template"]["spec"]["containers"]}
    replicas = spec["replicas"]
    return (
        images == {image}
        and status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
    )


# -- 4. the backfill Job redacts PII planted in the Redis Pod -----------------------------


def _redis_cli(cluster: LocalCluster, ns: str, *args: str) -> str:
    return cluster.run_kubectl("exec", "redis", "-n", ns, "--", "redis-cli", *args).stdout


def test_backfill_job_redacts_pii_in_the_redis_pod_and_a_dry_run_changes_nothing(
    real_cluster: LocalCluster, tenant: Tenant
) -> None:
    ns = tenant.namespace
    key = "mem:e2e-planted"
    message = f"call me at {PII_PHONE} or write to {PII_EMAIL}"
    _redis_cli(real_cluster, ns, "RPUSH", key, message)

    # Dry run first: the same CronJob with dryRun, nothing may change.
    real_cluster.run_kubectl(
        "patch", "leadmodel", NAME, "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"piiBackfill": {"dryRun": True}}}),
    )  # fmt: skip
    wait_for(
        "the backfill CronJob in dry-run mode",
        lambda: (
            "--dry-run"
            in get_json(real_cluster, "cronjob", f"{NAME}-pii-backfill", "-n", ns)["spec"][
                "jobTemplate"
            ]["spec"]["template"]["spec"]["containers"][0]["args"]
        ),
        timeout=60,
    )
    _run_job_from(real_cluster, ns, "backfill-dry", f"{NAME}-pii-backfill")
    assert _redis_cli(real_cluster, ns, "LRANGE", key, "0", "-1").strip() == message

    real_cluster.run_kubectl(
        "patch", "leadmodel", NAME, "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"piiBackfill": {"dryRun": False}}}),
    )  # fmt: skip
    wait_for(
        "the backfill CronJob back to writing",
        lambda: (
            "--dry-run"
            not in get_json(real_cluster, "cronjob", f"{NAME}-pii-backfill", "-n", ns)["spec"][
                "jobTemplate"
            ]["spec"]["template"]["spec"]["containers"][0]["args"]
        ),
        timeout=60,
    )
    _run_job_from(real_cluster, ns, "backfill", f"{NAME}-pii-backfill")
    scrubbed = _redis_cli(real_cluster, ns, "LRANGE", key, "0", "-1")
    assert PII_EMAIL not in scrubbed, scrubbed
    assert "555 0199" not in scrubbed, scrubbed
    assert "call me at" in scrubbed


def _run_job_from(cluster: LocalCluster, ns: str, job: str, cronjob: str) -> None:
    cluster.run_kubectl("create", "job", job, f"--from=cronjob/{cronjob}", "-n", ns)
    wait_for(
        f"Job {job} complete",
        lambda: get_json(cluster, "job", job, "-n", ns).get("status", {}).get("succeeded") == 1,
        timeout=180,
        interval=1,
    )


# -- 5. the scorer's log --------------------------------------------------------------------


def test_scorer_logs_hold_no_pii_and_no_secret(real_cluster: LocalCluster, tenant: Tenant) -> None:
    ns = tenant.namespace
    # A lead carrying contact data, sent through the Service like the rest.
    script = f"""
import httpx
lead = {{"name": "Jane Roe", "email": "{PII_EMAIL}", "phone": "{PII_PHONE}"}}
with httpx.Client(base_url="http://{NAME}-scorer.{ns}.svc:8080", timeout=30) as http:
    print(http.post("/v1/lead", json=lead).status_code)
    print(http.get("/ops/export/outcomes.csv", headers={{"x-api-key": "wrong"}}).status_code)
    print(http.get("/ops/export/outcomes.csv", headers={{"x-api-key": "{API_KEY}"}}).status_code)
"""
    codes = run_to_completion(real_cluster, "pii-lead", ns, ["python", "-c", script]).split()
    assert codes[1:] == ["401", "200"], codes
    pods = get_json(real_cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=scorer")[
        "items"
    ]
    assert pods
    for scorer in pods:
        text = logs(real_cluster, scorer["metadata"]["name"], ns, "--all-containers")
        assert text.strip(), f"{scorer['metadata']['name']} logged nothing"
        for secret in (PII_EMAIL, "555 0199", "jane.roe", API_KEY):
            assert secret not in text, f"{secret!r} in the log of {scorer['metadata']['name']}"
