"""Small helpers the e2e tests share: restricted Pod specs, test namespaces, kubectl reads
and waiting on real Pods."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fixtures.control_plane import LocalCluster

SCORER_IMAGE = "docker.io/leadops/scorer:0.1.0"
# What the training and backfill CronJobs run (the scorer image's sibling, same tag).
JOBS_IMAGE = "docker.io/leadops/jobs:0.1.0"
OPERATOR_IMAGE = "docker.io/leadops/operator:0.1.0"
REDIS_IMAGE = "docker.io/leadops/redis:bookworm"


def restricted(container: dict[str, Any]) -> dict[str, Any]:
    """A container as Pod Security "restricted" admits it, with requests and a memory limit."""
    return {
        "imagePullPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        **container,
    }


def pod(name: str, namespace: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [restricted({"name": name, **container})],
            **spec,
        },
    }


def apply(cluster: LocalCluster, *objects: dict[str, Any]) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(manifest))


def get_json(cluster: LocalCluster, *args: str) -> Any:
    """`kubectl get ARGS -o json`, decoded."""
    return json.loads(cluster.run_kubectl("get", *args, "-o", "json").stdout)


def namespace(cluster: LocalCluster, name: str) -> None:
    """A test namespace, once its default ServiceAccount exists (Pods need it)."""
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"leadops.io/test": "true"}},
        },
    )
    wait_for(
        f"default ServiceAccount in {name}",
        lambda: (
            cluster.run_kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0
        ),
        timeout=30,
    )


def pod_json(cluster: LocalCluster, name: str, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(cluster, "pod", name, "-n", namespace)
    return result


def wait_for(what: str, check: Any, *, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def wait_pod_phase(
    cluster: LocalCluster, name: str, namespace: str, phases: set[str], *, timeout: float = 120
) -> dict[str, Any]:
    """Wait until the Pod is in one of `phases` (Running means Ready too)."""

    def reached() -> dict[str, Any] | None:
        current = pod_json(cluster, name, namespace)
        phase = current["status"].get("phase")
        if phase == "Running" and "Running" in phases:
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in current["status"].get("conditions", [])
            )
            return current if ready else None
        if phase in phases - {"Running"}:
            return current
        if phase in {"Failed", "Succeeded"}:
            raise AssertionError(f"pod {name} ended {phase}: {logs(cluster, name, namespace)}")
        return None

    result: dict[str, Any] = wait_for(f"pod {name} {sorted(phases)}", reached, timeout=timeout)
    return result


def start_redis(cluster: LocalCluster, namespace: str) -> None:
    """A Redis Pod (Debian's redis-server image) behind the Service `redis`, Running."""
    redis = pod(
        "redis",
        namespace,
        {
            "image": REDIS_IMAGE,
            "args": ["--save", "", "--appendonly", "no", "--protected-mode", "no"],
            "ports": [{"containerPort": 6379}],
        },
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "redis", "namespace": namespace},
        "spec": {"selector": {"app": "redis"}, "ports": [{"port": 6379}]},
    }
    apply(cluster, redis, service)
    wait_pod_phase(cluster, "redis", namespace, {"Running"})


def logs(cluster: LocalCluster, name: str, namespace: str, *extra: str) -> str:
    return cluster.run_kubectl("logs", name, "-n", namespace, *extra, check=False).stdout


def run_to_completion(
    cluster: LocalCluster,
    name: str,
    namespace: str,
    command: list[str],
    *,
    image: str = JOBS_IMAGE,
    service_account: str | None = None,
    env: list[dict[str, Any]] | None = None,
    timeout: float = 180,
) -> str:
    """Run `command` in a one-off restricted Pod (writable /work and /tmp) and return its log."""
    container: dict[str, Any] = {
        "image": image,
        "command": command,
        "workingDir": "/work",
        "volumeMounts": [
            {"name": "work", "mountPath": "/work"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "768Mi"}},
    }
    if env:
        container["env"] = env
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    apply(cluster, pod(name, namespace, container, **spec))
    wait_pod_phase(cluster, name, namespace, {"Succeeded"}, timeout=timeout)
    return logs(cluster, name, namespace)


def may_publish(cluster: LocalCluster, ns: str, account: str) -> bool:
    """Whether `account` may create ConfigMaps in `ns` (what `leadops publish` does)."""
    said = cluster.run_kubectl(
        "auth", "can-i", "create", "configmaps", "-n", ns, f"--as={account}", check=False
    )
    return said.stdout.strip() == "yes"


def score_from_a_pod(
    cluster: LocalCluster, ns: str, leadmodel: str, name: str, *, leads: int, outcomes: bool
) -> dict[str, Any]:
    """Synthetic leads POSTed to the LeadModel's scorer Service by a Pod; their outcomes too.
    Returns the model versions that answered and the count of errors."""
    script = f"""
import io, json, httpx
from leadops.jobs import synth
url = "http://{leadmodel}-scorer.{ns}.svc:8080"
versions, errors = set(), 0
drawn = io.StringIO()
synth.write_jsonl(synth.generate({leads}, seed=5), drawn)
with httpx.Client(base_url=url, timeout=30) as http:
    for line in drawn.getvalue().splitlines():
        record = json.loads(line)
        converted = bool(int(record.pop("converted")))
        record.pop("tenant")  # open ingest (no ingest keys here) serves tenant default only
        reply = http.post("/v1/lead", json=record)
        if reply.status_code != 200:
            errors += 1
            continue
        body = reply.json()
        versions.add(body["model_version"])
        if {outcomes!r}:
            outcome = {{"lead_id": body["lead_id"], "converted": converted}}
            errors += http.post("/v1/outcome", json=outcome).status_code != 200
print(json.dumps({{"versions": sorted(versions), "errors": errors}}))
"""
    out = run_to_completion(cluster, name, ns, ["python", "-c", script], timeout=300)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
