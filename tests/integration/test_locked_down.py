"""A LeadModel in a locked-down namespace, on the real local control plane: Pod Security
"restricted" enforced, a ResourceQuota on requests and limits, and a LimitRange.

kube-apiserver's own admission plugins (PodSecurity, ResourceQuota, LimitRanger) judge every Pod
the operator's children make: the scorer's (with its init container), and the training and
backfill Jobs'. A quota that refuses the scorer is the namespace's fault (QuotaExceeded), never
the version's: nothing is rolled back, and raising the quota completes the rollout by itself.
The same children, as the golden files have them, pass `kubectl apply --dry-run=server`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from leadops.operator import cli as op_cli
from leadops.operator import kube
from tests.fixtures.control_plane import KubeCluster
from tests.integration.test_operator import (
    NAME,
    artifact,
    condition,
    crd_installed,  # noqa: F401 (fixture)
    deployment_version,
    get_lm,
    leadmodel,
    not_ready_for,
    operator,
    pin_never_ready_then_rolled_back,
    publish_version,
    serving,
    still_waits_unblamed,
    wait_for,
    wait_for_scorer_condition,
    wait_past_deadline,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

GOLDEN = Path(__file__).resolve().parents[1] / "unit" / "golden"
RESYNC_SECONDS = 5
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
# What a platform team sets: every Pod must declare requests and limits (CPU limits come from
# the LimitRange's default where a container has none, as the scorer does).
QUOTA = {
    "pods": "12",
    "requests.cpu": "4",
    "requests.memory": "6Gi",
    "limits.cpu": "12",
    "limits.memory": "16Gi",
}
LIMIT_RANGE = {
    "limits": [
        {
            "type": "Container",
            "default": {"cpu": "1", "memory": "512Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "max": {"memory": "4Gi"},
        }
    ]
}


def locked_down_namespace(core: Any) -> str:
    """A namespace as the docs' "Running in a locked-down namespace" section describes it."""
    name = f"locked-{secrets.token_hex(4)}"
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"leadops.io/test": "true", **RESTRICTED}}}
    )
    core.create_namespaced_resource_quota(
        name, {"metadata": {"name": "compute"}, "spec": {"hard": QUOTA}}
    )
    core.create_namespaced_limit_range(
        name, {"metadata": {"name": "defaults"}, "spec": LIMIT_RANGE}
    )
    wait_for(
        lambda: _exists(lambda: core.read_namespaced_service_account("default", name)),
        what="default ServiceAccount",
        timeout=30,
    )
    wait_for(
        lambda: core.read_namespaced_resource_quota("compute", name).status.hard,
        what="quota status",
        timeout=30,
    )
    return name


def _exists(read: Any) -> bool:
    try:
        read()
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture
def locked(
    crd_installed: KubeCluster,  # noqa: F811 (the imported fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[kube.Kube, str, Any]]:
    monkeypatch.setenv("KUBECONFIG", str(crd_installed.kubeconfig))
    monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", str(RESYNC_SECONDS))
    monkeypatch.setenv("LEADOPS_ALLOWED_POD_ANNOTATIONS", "leadops.io/fault")
    monkeypatch.delenv("LEADOPS_SCORER_URL", raising=False)
    core: Any = client.CoreV1Api(crd_installed.api_client)
    ns = locked_down_namespace(core)
    api = kube.Kube(crd_installed.api_client)
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "redis",
                "namespace": ns,
                "annotations": {"leadops.io/usable-by": "*"},
            },
            "stringData": {"url": "redis://redis:6379/0"},
        }
    )
    try:
        yield api, ns, core
    finally:
        core.delete_namespace(ns)


def _pods(api: kube.Kube, ns: str, selector: str) -> list[dict[str, Any]]:
    return list(api.list("Pod", ns, selector=selector))


def _refusals(api: kube.Kube, ns: str) -> list[str]:
    """Why the controllers could not create Pods (their FailedCreate Events)."""
    return [
        e.get("message", "") for e in api.list("Event", ns) if e.get("reason") == "FailedCreate"
    ]


def test_the_whole_lifecycle_is_admitted(
    locked: tuple[kube.Kube, str, Any], k8s_cluster: KubeCluster
) -> None:
    """Create, publish, roll out, roll back, backfill and training Jobs: every Pod admitted."""
    if not k8s_cluster.fault_injection:
        pytest.fail("the cluster has no leadops.io/fault stages; rollback cannot be exercised")
    api, ns, _ = locked
    base = ["--namespace", ns, "--kubeconfig", str(k8s_cluster.kubeconfig)]
    with operator(ns):
        api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
        wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
        v1, data1 = artifact(age_minutes=40)
        publish_version(api, ns, data1)
        wait_for(lambda: serving(api, ns, v1), what="v1 serving")
        v2, data2 = artifact(age_minutes=20)
        publish_version(api, ns, data2)
        wait_for(lambda: serving(api, ns, v2), what="v2 serving")
        scorer_pods = _pods(api, ns, "app.kubernetes.io/component=scorer")
        assert scorer_pods, "the scorer's Pods were admitted"
        spec = scorer_pods[0]["spec"]
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert [c["name"] for c in spec["initContainers"]] == ["unpack-model"]
        # The LimitRange gave the scorer (no CPU limit of its own) the namespace's default.
        assert spec["containers"][0]["resources"]["limits"]["cpu"] == "1"

        # Rolled back: a pinned version whose Pods never become Ready.
        pin_never_ready_then_rolled_back(api, ns, v1)
        assert deployment_version(api, ns) == str(v2)

        # The Jobs: created from their CronJobs, and their Pods admitted.
        assert op_cli.main_backfill([NAME, "--dry-run", *base]) == 0
        assert op_cli.main_train([NAME, *base]) == 0
        for component in ("pii-backfill", "train"):
            (pod, *_) = wait_for(
                lambda c=component: _pods(api, ns, f"app.kubernetes.io/component={c}"),  # type: ignore[misc]
                what=f"{component} Job's Pod",
            )
            assert pod["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not _refusals(api, ns)
    ready = condition(api, ns, "Ready")
    assert ready["reason"] not in {"PodsForbidden", "QuotaExceeded"}


def test_a_quota_that_refuses_the_scorer_is_reported_and_never_rolled_back(
    locked: tuple[kube.Kube, str, Any],
) -> None:
    """QuotaExceeded within one resync; no rollback, also past ProgressDeadlineExceeded; a raised
    quota completes the rollout with no action on the LeadModel."""
    api, ns, core = locked
    with operator(ns):
        api.create(leadmodel(ns, scorer={"replicas": 1, "progressDeadlineSeconds": 5}))
        wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
        v1, data1 = artifact(age_minutes=40)
        publish_version(api, ns, data1)
        wait_for(lambda: serving(api, ns, v1), what="v1 serving")
        # Room for v1's Pod (256Mi requested) and nothing more: v2's surge Pod is refused.
        core.patch_namespaced_resource_quota(
            "compute", ns, {"spec": {"hard": {"requests.memory": "300Mi"}}}
        )
        wait_for(
            lambda: (
                (core.read_namespaced_resource_quota("compute", ns).status.hard or {}).get(
                    "requests.memory"
                )
                == "300Mi"
            ),
            what="quota lowered",
        )
        v2, data2 = artifact(age_minutes=20)
        publish_version(api, ns, data2)
        wait_for_scorer_condition(api, ns, "type", "ReplicaFailure")
        # Within one resync, plus the status write on a loaded machine.
        ready = not_ready_for(api, ns, "QuotaExceeded", timeout=RESYNC_SECONDS + 5)
        assert "exceeded quota" in ready["message"]
        wait_past_deadline(api, ns)
        time.sleep(RESYNC_SECONDS + 1)  # one more pass after the deadline: still no rollback
        still_waits_unblamed(api, ns, serving_version=v1, target=v2)
        assert condition(api, ns, "Ready").get("reason") == "QuotaExceeded"
        generation = get_lm(api, ns)["metadata"]["generation"]

        core.patch_namespaced_resource_quota(
            "compute", ns, {"spec": {"hard": {"requests.memory": QUOTA["requests.memory"]}}}
        )
        wait_for(lambda: serving(api, ns, v2), what="v2 serving once the quota allows it")
        assert condition(api, ns, "Ready")["reason"] == "Serving"
        assert get_lm(api, ns)["metadata"]["generation"] == generation, "no one edited the spec"


def _golden_objects(namespace: str) -> list[dict[str, Any]]:
    """The golden children in `namespace`, with the Pod each workload's template makes."""
    objects: list[dict[str, Any]] = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for obj in doc.get("items", [doc]):
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # the Prometheus Operator's CRDs are not installed here
            obj["metadata"]["namespace"] = namespace
            objects.append(obj)
            template = _pod_template(obj)
            if template is not None:
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": path.stem,
                        "namespace": namespace,
                        "labels": template["metadata"].get("labels", {}),
                    },
                    "spec": template["spec"],
                }
                objects.append(pod)
    return objects


def _pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] == "Deployment":
        return dict(obj["spec"]["template"])
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"])
    return None


def _create_accounts(core: Any, namespace: str, objects: list[dict[str, Any]]) -> None:
    """The Pods' ServiceAccounts for real (admission looks them up; a dry run keeps nothing),
    without owners (the garbage collector would remove them: the golden owner does not exist)."""
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
            core.create_namespaced_service_account(namespace, {**obj, "metadata": meta})


def test_the_golden_children_pass_server_side_dry_run_in_a_restricted_namespace(
    crd_installed: KubeCluster,  # noqa: F811 (the imported fixture)
) -> None:
    core: Any = client.CoreV1Api(crd_installed.api_client)
    ns = locked_down_namespace(core)
    try:
        objects = _golden_objects(ns)
        kinds = {o["kind"] for o in objects}
        assert {"Deployment", "CronJob", "Pod", "ServiceAccount", "Role"} <= kinds
        _create_accounts(core, ns, objects)
        text = yaml.safe_dump_all(objects)
        done = crd_installed.run_kubectl(
            "apply", "--dry-run=server", "-f", "-", input_text=text, check=False
        )
        assert done.returncode == 0, done.stderr
        # PodSecurity only warns for workloads ("would violate PodSecurity"); none here.
        assert "PodSecurity" not in done.stderr, done.stderr
        assert done.stdout.count("(server dry run)") == len(objects)
    finally:
        core.delete_namespace(ns)


def test_a_pod_missing_the_hardening_is_refused_there(
    crd_installed: KubeCluster,  # noqa: F811 (the imported fixture)
) -> None:
    """The namespace really enforces: the scorer's Pod without its seccomp profile is refused."""
    core: Any = client.CoreV1Api(crd_installed.api_client)
    ns = locked_down_namespace(core)
    try:
        objects = _golden_objects(ns)
        _create_accounts(core, ns, objects)
        (pod,) = [
            o
            for o in objects
            if o["kind"] == "Pod" and o["metadata"]["name"] == "scorer-deployment-serving"
        ]
        del pod["spec"]["securityContext"]["seccompProfile"]
        done = crd_installed.run_kubectl(
            "apply", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(pod), check=False
        )
        assert done.returncode != 0
        assert "violates PodSecurity" in done.stderr
    finally:
        core.delete_namespace(ns)
