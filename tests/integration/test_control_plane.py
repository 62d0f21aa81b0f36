"""Smoke tests of the real local control plane: what the operator's tests rely on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.control_plane import KubeCluster, LocalCluster, wait_established
from tests.fixtures.control_plane.binaries import minor_of, pinned_versions
from tests.fixtures.control_plane.cluster import wait_until

pytestmark = pytest.mark.k8s

WAIT = 60.0  # seconds; everything below normally settles in one or two


# The typed client models make every field Optional; these tests read live objects as Any.
def _apps(cluster: KubeCluster) -> Any:
    return client.AppsV1Api(cluster.api_client)


def _batch(cluster: KubeCluster) -> Any:
    return client.BatchV1Api(cluster.api_client)


def _core(cluster: KubeCluster) -> Any:
    return client.CoreV1Api(cluster.api_client)


def _custom(cluster: KubeCluster) -> Any:
    return client.CustomObjectsApi(cluster.api_client)


def _condition(obj: Any, kind: str) -> Any:
    for cond in (obj.status.conditions if obj.status else None) or []:
        if cond.type == kind:
            return cond
    return None


def _deployment(
    name: str,
    *,
    replicas: int,
    annotations: dict[str, str] | None = None,
    progress_deadline: int = 600,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
            },
        },
    }


def _job(name: str, *, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.invalid/job:1"}],
                },
            },
        },
    }


def test_kubectl_reports_pinned_server_version(k8s_cluster: KubeCluster) -> None:
    out = k8s_cluster.run_kubectl("version", "-o", "json").stdout
    versions = json.loads(out)
    expected = (
        pinned_versions()["KUBERNETES_VERSION"]
        if isinstance(k8s_cluster, LocalCluster)
        else k8s_cluster.server_version
    )
    assert versions["serverVersion"]["gitVersion"] == expected
    client_minor = minor_of(versions["clientVersion"]["gitVersion"])
    server_minor = minor_of(expected)
    assert abs(client_minor[1] - server_minor[1]) <= 1, "kubectl outside the supported skew"


def test_helm_talks_to_the_cluster(k8s_cluster: KubeCluster) -> None:
    import subprocess  # noqa: PLC0415

    result = subprocess.run(
        [str(k8s_cluster.helm), "list", "--all-namespaces", "-o", "json"],
        env={
            "KUBECONFIG": str(k8s_cluster.kubeconfig),
            "HOME": str(k8s_cluster.kubeconfig.parent),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.leadops.io"},
    "spec": {
        "group": "smoke.leadops.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def widget_crd(k8s_cluster: KubeCluster) -> Iterator[None]:
    k8s_cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(WIDGET_CRD))
    wait_established(k8s_cluster, "crd/widgets.smoke.leadops.io")
    try:
        yield
    finally:
        k8s_cluster.run_kubectl("delete", "crd", "widgets.smoke.leadops.io", "--wait=false")


def test_custom_resource_status_subresource(
    k8s_cluster: KubeCluster, k8s_namespace: str, widget_crd: None
) -> None:
    widget = {
        "apiVersion": "smoke.leadops.io/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": k8s_namespace},
        "spec": {"size": 3},
        "status": {"phase": "IgnoredOnCreate"},
    }
    k8s_cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(widget))
    custom = _custom(k8s_cluster)
    group, version, plural = "smoke.leadops.io", "v1alpha1", "widgets"

    created = custom.get_namespaced_custom_object(group, version, k8s_namespace, plural, "w1")
    # With the status subresource, status sent to the main resource is dropped.
    assert "status" not in created or created["status"] == {}
    generation = created["metadata"]["generation"]

    custom.patch_namespaced_custom_object_status(
        group, version, k8s_namespace, plural, "w1", {"status": {"phase": "Ready"}}
    )
    patched = custom.get_namespaced_custom_object(group, version, k8s_namespace, plural, "w1")
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"] == {"size": 3}
    assert patched["metadata"]["generation"] == generation, "a status write bumped generation"

    # The schema is enforced by the real API server.
    bad = dict(widget, metadata={"name": "w2", "namespace": k8s_namespace}, spec={"size": 0})
    rejected = k8s_cluster.run_kubectl("apply", "-f", "-", input_text=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr


def test_deployment_becomes_available_with_two_ready_replicas(
    k8s_cluster: KubeCluster, k8s_namespace: str
) -> None:
    apps = _apps(k8s_cluster)
    apps.create_namespaced_deployment(k8s_namespace, _deployment("web", replicas=2))

    def available() -> bool:
        dep = apps.read_namespaced_deployment("web", k8s_namespace)
        cond = _condition(dep, "Available")
        return dep.status.ready_replicas == 2 and cond is not None and cond.status == "True"

    wait_until(available, what="Deployment web Available with 2 ready replicas", timeout=WAIT)
    pods = _core(k8s_cluster).list_namespaced_pod(k8s_namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.spec.node_name and p.status.phase == "Running" for p in pods)


def test_job_completes(k8s_cluster: KubeCluster, k8s_namespace: str) -> None:
    batch = _batch(k8s_cluster)
    batch.create_namespaced_job(k8s_namespace, _job("once"))

    def complete() -> bool:
        cond = _condition(batch.read_namespaced_job("once", k8s_namespace), "Complete")
        return cond is not None and cond.status == "True"

    wait_until(complete, what="Job once Complete", timeout=WAIT)
    assert batch.read_namespaced_job("once", k8s_namespace).status.succeeded == 1


def _needs_fault_injection(cluster: KubeCluster) -> None:
    if not cluster.fault_injection:
        pytest.skip("KUBECONFIG cluster has no kwok fault-injection stages")


def test_job_with_fail_fault_fails(k8s_cluster: KubeCluster, k8s_namespace: str) -> None:
    _needs_fault_injection(k8s_cluster)
    batch = _batch(k8s_cluster)
    batch.create_namespaced_job(
        k8s_namespace, _job("broken", annotations={"leadops.io/fault": "fail"})
    )

    def failed() -> bool:
        cond = _condition(batch.read_namespaced_job("broken", k8s_namespace), "Failed")
        return cond is not None and cond.status == "True"

    wait_until(failed, what="Job broken Failed", timeout=WAIT)
    job = batch.read_namespaced_job("broken", k8s_namespace)
    assert _condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert not job.status.succeeded


def test_unready_deployment_exceeds_progress_deadline(
    k8s_cluster: KubeCluster, k8s_namespace: str
) -> None:
    _needs_fault_injection(k8s_cluster)
    apps = _apps(k8s_cluster)
    body = _deployment(
        "stuck", replicas=2, annotations={"leadops.io/fault": "never-ready"}, progress_deadline=3
    )
    apps.create_namespaced_deployment(k8s_namespace, body)

    def deadline_exceeded() -> bool:
        cond = _condition(apps.read_namespaced_deployment("stuck", k8s_namespace), "Progressing")
        return cond is not None and cond.reason == "ProgressDeadlineExceeded"

    wait_until(deadline_exceeded, what="Deployment stuck ProgressDeadlineExceeded", timeout=WAIT)
    dep = apps.read_namespaced_deployment("stuck", k8s_namespace)
    assert _condition(dep, "Progressing").status == "False"
    assert not dep.status.ready_replicas
    pods = _core(k8s_cluster).list_namespaced_pod(k8s_namespace, label_selector="app=stuck").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert _condition(pod, "Ready").status == "False"


def test_crash_looping_deployment_pods_never_ready(
    k8s_cluster: KubeCluster, k8s_namespace: str
) -> None:
    _needs_fault_injection(k8s_cluster)
    apps = _apps(k8s_cluster)
    core = _core(k8s_cluster)
    apps.create_namespaced_deployment(
        k8s_namespace, _deployment("crashy", replicas=1, annotations={"leadops.io/fault": "fail"})
    )

    def crash_looping() -> bool:
        pods = core.list_namespaced_pod(k8s_namespace, label_selector="app=crashy").items
        return any(
            s.state.waiting is not None and s.state.waiting.reason == "CrashLoopBackOff"
            for p in pods
            for s in p.status.container_statuses or []
        )

    wait_until(crash_looping, what="crashy pod in CrashLoopBackOff", timeout=WAIT)
    assert not apps.read_namespaced_deployment("crashy", k8s_namespace).status.ready_replicas


def test_server_side_dry_run_validates_without_persisting(
    k8s_cluster: KubeCluster, k8s_namespace: str
) -> None:
    good = _deployment("dry", replicas=1)
    result = k8s_cluster.run_kubectl(
        "apply", "--dry-run=server", "-n", k8s_namespace, "-f", "-", input_text=json.dumps(good)
    )
    assert "(server dry run)" in result.stdout
    apps = _apps(k8s_cluster)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("dry", k8s_namespace)
    assert missing.value.status == 404

    # Only the server knows this is invalid (the client-side schema allows any integer).
    bad = _deployment("dry", replicas=-1)
    rejected = k8s_cluster.run_kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        k8s_namespace,
        "-f",
        "-",
        input_text=json.dumps(bad),
        check=False,
    )
    assert rejected.returncode != 0
    assert "spec.replicas" in rejected.stderr


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_stop_leaves_no_processes_or_ports(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "second", nodes=1)
    cluster.start()
    try:
        pids = [proc.pid for proc in cluster.processes]
        ports = [
            cluster.ports.etcd_client,
            cluster.ports.etcd_peer,
            cluster.ports.apiserver,
            cluster.ports.controller_manager,
            cluster.ports.scheduler,
        ]
        assert len(pids) == 5
        assert not any(_port_is_free(p) for p in ports), "control plane not listening"
    finally:
        cluster.stop()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} survived stop()"
    assert all(_port_is_free(p) for p in ports)
