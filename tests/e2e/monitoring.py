"""The Prometheus Operator on the real node, installed as its own module ships it: its CRDs,
RBAC and Deployment (example/ of github.com/prometheus-operator/prometheus-operator, copied
by `hack/control-plane/build.sh monitoring`), its image and an image of Prometheus built from
its Go module (hack/images/build.sh; Debian's has no Kubernetes service discovery).
Prometheus's HTTP API is read through the API server's Pod proxy, as `kubectl get --raw`
does."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.pods import apply, wait_for
from tests.fixtures.control_plane import LocalCluster, wait_established

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_NAME = "leadops"  # the Prometheus object; its Pod is prometheus-leadops-0


def _pin(name: str) -> str:
    for line in (ROOT / "hack" / "control-plane" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.partition("=")[2].strip()
    raise AssertionError(f"{name} is not pinned in versions.env")


OPERATOR_VERSION = _pin("MONITORING_PROMETHEUS_OPERATOR_VERSION")
OPERATOR_IMAGE = f"localhost/leadops/prometheus-operator:{OPERATOR_VERSION}"


def _documents(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
        doc["metadata"]["namespace"] = namespace
    for subject in doc.get("subjects", []):
        subject["namespace"] = namespace
    return doc


def install_operator(cluster: LocalCluster, home: Path, namespace: str) -> None:
    """The CRDs (server-side: the Prometheus CRD is over kubectl's annotation limit), then
    the module's operator RBAC and Deployment, on our image, in `namespace`."""
    cluster.run_kubectl("apply", "--server-side", "-f", str(home / "crds"))
    wait_established(cluster, "-f", str(home / "crds"))
    objects = []
    for doc in _documents(home / "rbac" / "prometheus-operator"):
        if doc["kind"] == "ServiceMonitor":  # the operator's own metrics: not needed here
            continue
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            container["image"] = OPERATOR_IMAGE
            container["imagePullPolicy"] = "Never"
            container["args"] = [
                f"--prometheus-config-reloader={OPERATOR_IMAGE}"
                if arg.startswith("--prometheus-config-reloader=")
                else arg
                for arg in container["args"]
            ]
        objects.append(_in_namespace(doc, namespace))
    apply(cluster, *objects)

    def available() -> bool:
        got = cluster.run_kubectl(
            "get", "deployment", "prometheus-operator", "-n", namespace, "-o", "json", check=False
        )
        status = json.loads(got.stdout).get("status", {}) if got.returncode == 0 else {}
        return bool(status.get("availableReplicas"))

    try:
        wait_for("the Prometheus Operator Available", available, timeout=180, interval=1)
    except TimeoutError as exc:  # say why: its Pods, as kubelet sees them
        pods = cluster.run_kubectl("describe", "pods", "-n", namespace, check=False).stdout
        node = cluster.run_kubectl("describe", "nodes", check=False).stdout
        taints = [line for line in node.splitlines() if "Taint" in line or "Pressure" in line]
        raise AssertionError(f"{exc}\n{pods[-3000:]}\nnode: {taints}") from None


def create_prometheus(
    cluster: LocalCluster, home: Path, namespace: str, *, image: str, version: str
) -> Prometheus:
    """A Prometheus object the operator turns into a StatefulSet running `image`; it selects
    every ServiceMonitor and PrometheusRule in the cluster and evaluates rules every 5 s."""
    rbac = [
        _in_namespace(doc, namespace)
        for doc in _documents(home / "rbac" / "prometheus")
        if doc["kind"] != "Prometheus"  # the module's example CR selects other labels
    ]
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS_NAME, "namespace": namespace},
        "spec": {
            "image": image,
            "version": version,
            "imagePullPolicy": "Never",
            "replicas": 1,
            "serviceAccountName": "prometheus",
            "serviceMonitorSelector": {},
            "serviceMonitorNamespaceSelector": {},
            "ruleSelector": {},
            "ruleNamespaceSelector": {},
            "scrapeInterval": "5s",
            # Every second: the critical-AUC Pod lives seconds (test 4).
            "evaluationInterval": "1s",
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        },
    }
    apply(cluster, *rbac, prometheus)
    pod = f"prometheus-{PROMETHEUS_NAME}-0"

    def ready() -> bool:
        got = cluster.run_kubectl("get", "pod", pod, "-n", namespace, "-o", "json", check=False)
        if got.returncode != 0:
            return False
        conditions = json.loads(got.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(f"Prometheus Pod {pod} Ready", ready, timeout=240, interval=1)
    return Prometheus(cluster, namespace, pod)


class Prometheus:
    """Prometheus's HTTP API (/api/v1) through the API server's proxy to its Pod."""

    def __init__(self, cluster: LocalCluster, namespace: str, pod: str) -> None:
        self.cluster, self.namespace, self.pod = cluster, namespace, pod

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}:9090/proxy/api/v1/{path}"
        reply = json.loads(self.cluster.run_kubectl("get", "--raw", url + query).stdout)
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alert_rules(self) -> list[tuple[str, dict[str, Any]]]:
        """(rule file, rule) for every alerting rule loaded."""
        return [
            (group["file"], rule)
            for group in self.get("rules", type="alert")["groups"]
            for rule in group["rules"]
        ]

    def diagnosis(self) -> str:
        """What to read when Prometheus does not see what a test waits for: its targets,
        its log and its config reloader's, the operator's log."""
        parts = []
        try:
            for target in self.get("targets")["activeTargets"]:
                labels = target["labels"]
                parts.append(
                    f"target {labels.get('namespace')}/{labels.get('pod')} {target['scrapeUrl']}"
                    f" {target['health']} {target.get('lastError', '')}"
                )
        except Exception as exc:  # a diagnosis never hides the failure it explains
            parts.append(f"targets unreadable: {exc}")
        for container in ("prometheus", "config-reloader"):
            got = self.cluster.run_kubectl(
                "logs", self.pod, "-n", self.namespace, "-c", container, "--tail=25", check=False
            )
            parts.append(f"--- {container} log:\n{got.stdout}{got.stderr}")
        got = self.cluster.run_kubectl(
            "logs", "deployment/prometheus-operator", "-n", self.namespace, "--tail=25", check=False
        )
        parts.append(f"--- prometheus-operator log:\n{got.stdout}{got.stderr}")
        return "\n".join(parts)

    def wait_for(self, what: str, check: Any, *, timeout: float) -> Any:
        """`pods.wait_for` polling every second; on a timeout, the diagnosis."""
        try:
            return wait_for(what, check, timeout=timeout, interval=1)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None

    def alerts(self, name: str, namespace: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.get("alerts")["alerts"]
            if a["labels"].get("alertname") == name and a["labels"].get("namespace") == namespace
        ]
