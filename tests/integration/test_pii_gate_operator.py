"""The PII gate on the real local control plane with a real redis-server (issue #19 item 3):
a backfill killed mid-run holds the next promotion (PiiCompliant=False), the Job's successful
retry releases it, and the override annotation lets a promotion pass and is recorded.

kwok runs no containers: the backfill Job's own command runs here against the real
redis-server (its Redis URL given directly instead of the mounted Secret), and the test plays
the kubelet: it ends the Pod (annotated `leadops.io/fault: held`, which no kwok stage moves)
with the exit code and termination message the run left, as a kubelet reports them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from kopf.testing import KopfRunner

from leadops.operator import builders, kube, pii_gate
from leadops.operator.conditions import rfc3339
from tests.integration import test_operator as op
from tests.integration.test_operator import (
    NAME,
    artifact,
    condition,
    deployment_version,
    events,
    get_lm,
    leadmodel,
    publish_version,
    serving,
    wait_for,
)
from tests.integration.test_pii_backfill import _seed

crd_installed = op.crd_installed
api = op.api
running = op.running
pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]

HELD = {"leadops.io/fault": "held"}  # no kwok stage matches: the Pod waits for this test
# The kubelet's FallbackToLogsOnError: the log's last 2048 bytes when the file is empty.
LOG_TAIL_BYTES = 2048


def start_backfill(api: kube.Kube, ns: str) -> dict[str, Any]:
    """`leadops backfill NAME`'s Job (from the CronJob), its Pod held for this test."""
    cronjob = wait_for(lambda: api.get("CronJob", ns, f"{NAME}-pii-backfill"), what="CronJob")
    job = builders.job_from_cronjob(cronjob, dry_run=False)
    job["spec"]["template"]["metadata"].setdefault("annotations", {}).update(HELD)
    created: dict[str, Any] = api.create(job)
    return created


def pending_pod(api: kube.Kube, ns: str, job: str, *, not_: set[str]) -> dict[str, Any]:
    def placed() -> dict[str, Any] | None:
        for pod in api.list("Pod", ns, selector=f"job-name={job}"):
            if pod["metadata"]["name"] not in not_ and (pod.get("spec") or {}).get("nodeName"):
                return pod
        return None

    found: dict[str, Any] = wait_for(placed, what=f"a scheduled Pod of Job {job}")
    return found


def run_here(
    pod: dict[str, Any], redis_url: str, log: Path, *, paced: bool
) -> subprocess.Popen[bytes]:
    """The Pod's container command, here: its args with the termination log's path local."""
    (container,) = pod["spec"]["containers"]
    args = list(container["args"])
    args[args.index("--termination-log") + 1] = str(log)
    if paced:  # slow enough to be killed mid-run
        args += ["--max-ops-per-sec", "150", "--batch", "5", "--workers", "1"]
    return subprocess.Popen(
        [sys.executable, "-m", "leadops.cli", *args, "--redis-url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def end_pod(
    api: kube.Kube, ns: str, pod: dict[str, Any], proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Report the ended run on its Pod as the kubelet does: phase, exit code, message."""
    output, _ = proc.communicate(timeout=120)
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    message = log.read_text(encoding="utf-8") if log.exists() else ""
    if not message and code != 0:
        message = output[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
    (container,) = pod["spec"]["containers"]
    now = rfc3339(datetime.now(UTC))
    api.patch(
        "Pod",
        ns,
        pod["metadata"]["name"],
        {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "message": message,
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            }
        },
        sub="status",
    )


def kill_mid_run(pod: dict[str, Any], redis_url: str, log: Path, chats: int) -> Any:
    """Start the run, SIGKILL it once it has scrubbed something and before it is done."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    proc = run_here(pod, redis_url, log, paced=True)
    keys = [f"mem:tenant{c % 2}:chat{c}" for c in range(chats)]

    def scrubbed() -> int:
        return sum("[REDACTED]" in (client.lindex(k, 0) or "") for k in keys)

    wait_for(lambda: scrubbed() > 0, what="the run scrubbing", poll=0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 0 < scrubbed() < chats, "killed mid-run: some chats scrubbed, some not"
    return proc


def gate(api: kube.Kube, ns: str) -> dict[str, Any]:
    return dict((get_lm(api, ns).get("status") or {}).get("piiGate") or {})


def closed_with_a_held_promotion(
    api: kube.Kube, ns: str, redis_url: str, tmp_path: Path
) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
    """v1 serves; a backfill is killed mid-run; v2 is published and waits. Returns the
    versions, the Job and its killed Pod."""
    chats = 300
    _seed(redis.Redis.from_url(redis_url), chats=chats)
    api.create(
        leadmodel(
            ns,
            scorer={"replicas": 1},
            # Hourly (this LeadModel is younger than that: NotYetDue until a run ends);
            # suspended, so the only runs are this test's.
            piiBackfill={"schedule": "0 * * * *", "suspend": True},
        )
    )
    v1, data1 = artifact(age_minutes=40)
    publish_version(api, ns, data1)
    wait_for(lambda: serving(api, ns, v1), what="v1 serving (first promotion)")
    assert condition(api, ns, "PiiCompliant")["reason"] == "NotYetDue"

    job = start_backfill(api, ns)
    pod = pending_pod(api, ns, job["metadata"]["name"], not_=set())
    log = tmp_path / "killed.log"
    end_pod(api, ns, pod, kill_mid_run(pod, redis_url, log, chats), log)
    wait_for(
        lambda: condition(api, ns, "PiiCompliant").get("reason") == "BackfillFailed",
        what="PiiCompliant=False/BackfillFailed",
    )
    assert condition(api, ns, "PiiCompliant")["status"] == "False"
    assert gate(api, ns)["lastRun"]["exitCode"] == 137

    v2, data2 = artifact(age_minutes=20)
    publish_version(api, ns, data2)
    wait_for(lambda: gate(api, ns).get("heldVersion") == str(v2), what="v2 held")
    assert deployment_version(api, ns) == str(v1)
    assert (get_lm(api, ns).get("status") or {})["servingVersion"] == str(v1)
    (said,) = [e for e in events(api, ns, "BackfillFailed") if "waits" in e["message"]]
    assert said["type"] == "Warning"
    assert f"Promotion of version {v2} waits for the PII gate" in said["message"]
    return v1, v2, job, pod


def test_a_killed_backfill_holds_the_promotion_and_a_successful_retry_releases_it(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    redis_url: str,
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    _, v2, job, killed = closed_with_a_held_promotion(api, ns, redis_url, tmp_path)

    # The Job's retry (backoffLimit 1) runs to the end.
    retry = pending_pod(api, ns, job["metadata"]["name"], not_={killed["metadata"]["name"]})
    log = tmp_path / "retry.log"
    end_pod(api, ns, retry, run_here(retry, redis_url, log, paced=False), log)
    wait_for(
        lambda: condition(api, ns, "PiiCompliant").get("status") == "True",
        what="PiiCompliant=True",
    )
    wait_for(lambda: serving(api, ns, v2), what="v2 released and serving")
    last = gate(api, ns)["lastRun"]
    assert (last["pod"], last["result"]) == (retry["metadata"]["name"], "Succeeded")
    assert last["redactedItems"] > 0
    assert gate(api, ns).get("heldVersion", "") == ""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert "[REDACTED]" in (client.lindex("mem:tenant0:chat0", 0) or "")


def test_the_override_annotation_lets_the_promotion_pass_and_is_recorded(
    api: kube.Kube,
    k8s_namespace: str,
    running: KopfRunner,
    redis_url: str,
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    _, v2, _, _ = closed_with_a_held_promotion(api, ns, redis_url, tmp_path)
    why = "OPS-42: history scrubbed by hand"
    api.patch(
        "LeadModel",
        ns,
        NAME,
        {"metadata": {"annotations": {pii_gate.OVERRIDE_ANNOTATION: why}}},
    )
    wait_for(lambda: serving(api, ns, v2), what="v2 serving by the override")
    recorded = gate(api, ns)
    assert recorded["override"] == why
    assert recorded["lastOverride"]["version"] == str(v2)
    assert recorded["lastOverride"]["reason"] == why
    assert recorded["lastOverride"]["gateReason"] == "BackfillFailed"
    pii = condition(api, ns, "PiiCompliant")
    assert (pii["status"], pii["reason"]) == ("False", "Overridden")
    (event,) = events(api, ns, "PiiGateOverridden")
    assert why in event["message"]
    assert event["type"] == "Warning"
