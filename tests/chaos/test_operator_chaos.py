"""The operator under faults on its own local control plane (issue #12).

Each test breaks something for real: the operator is SIGKILLed, kube-apiserver or etcd is
killed and restarted, scorer Pods turn NotReady (kwok: their status is patched, as the node
lifecycle controller does for a lost node), a spec is edited 50 times in a second, the
operator restarts 10 times over 20 LeadModels. Each asserts what a user relies on:

- exactly-once promotion: one `Promoted` Event, one ReplicaSet and one history entry per version;
- the right `servingVersion`;
- no freeze: a passing version published around the fault is rolled out within 10 s of the
  API's return and then serves (the Pods' replacement is kube-controller-manager's work, which
  resyncs after an outage too: its time is reported, not bounded);
- no needless writes: resourceVersions unchanged after restarts;
- no ERROR log line for waiting.

The cluster is this module's own (faults must not reach other tests); its processes are the
harness's `ManagedProcess`es, stopped and started again by name. Set LEADOPS_CHAOS_REPORT to a
file path to get the measured recovery times appended to it (docs/benchmarks.md quotes them).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from leadops.contract import artifact as contract
from leadops.operator import kube, registry
from leadops.operator.publish import publish
from tests.fixtures.chart import install_crd
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.model_artifact import make_artifact
from tests.fixtures.ports import free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.chaos]
logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
LEADOPS = ROOT / ".venv" / "bin" / "leadops"
TIMEOUT = 120.0
RECOVERY_S = 10.0  # the issue's bound: published during a fault -> serving after recovery
REDIS = {"urlSecretRef": {"name": "redis", "key": "url"}}


# Harness --------------------------------------------------------------------------------


def wait_for(
    check: Callable[[], Any], *, what: str, timeout: float = TIMEOUT, poll: float = 0.1
) -> float:
    """Seconds until `check()` is truthy; API errors during a fault count as "not yet"."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        try:
            last = check()
        except (kube.KubeError, OSError, client.ApiException) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return time.monotonic() - started
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def report(figure: str, seconds: float) -> None:
    logger.info("chaos figure: %s: %.1f s", figure, seconds)
    path = os.environ.get("LEADOPS_CHAOS_REPORT")
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"figure": figure, "seconds": round(seconds, 2)}) + "\n")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("chaos"), nodes=1)
    local.start()
    try:
        install_crd(local)
        yield local
    finally:
        local.stop()


@pytest.fixture
def api(cluster: LocalCluster) -> kube.Kube:
    return kube.Kube(cluster.api_client)


@pytest.fixture
def ns(cluster: LocalCluster, api: kube.Kube) -> Iterator[str]:
    core: Any = client.CoreV1Api(cluster.api_client)
    name = f"chaos-{os.urandom(4).hex()}"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        ),
        what="default ServiceAccount",
    )
    # The Redis Secret every LeadModel here names, opted in to all of them (trust.py).
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "redis",
                "namespace": name,
                "annotations": {"leadops.io/usable-by": "*"},
            },
            "stringData": {"url": "redis://redis:6379/0"},
        }
    )
    yield name
    with contextlib.suppress(client.ApiException):
        core.delete_namespace(name)


class Operator:
    """`leadops operator` as its own process (SIGKILL = a crashed Pod), /metrics on a port."""

    def __init__(self, cluster: LocalCluster, namespace: str, log: Path, *extra: str) -> None:
        self.cluster, self.namespace, self.log = cluster, namespace, log
        self.extra = extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "LEADOPS_RESYNC_SECONDS": "60",  # the default: recovery must not wait for it
        }
        env.pop("LEADOPS_SCORER_URL", None)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(str(LEADOPS), "operator", "--namespace", self.namespace),
                    *("--metrics-port", str(self.port), "--health-address", ""),
                    *self.extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None

    def metric(self, name: str) -> float:
        """The sum of one metric's samples (0 until /metrics answers)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((f"{name}{{", f"{name} "))
        )

    def reconciles(self) -> float:
        """leadops_operator_reconciles_total over all results (0 until /metrics answers)."""
        return self.metric("leadops_operator_reconciles_total")

    def errors_for_waiting(self) -> list[str]:
        """ERROR lines that report normal waiting (kopf's retry of a handler that waited)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [
            line
            for line in lines
            if " ERROR " in line and ("failed temporarily" in line or "in progress" in line)
        ]


@pytest.fixture
def operator(cluster: LocalCluster, ns: str, tmp_path: Path) -> Iterator[Operator]:
    running = Operator(cluster, ns, tmp_path / "operator.log")
    try:
        yield running.start()
    finally:
        running.kill()
        logger.info("operator log tail:\n%s", running.log.read_text(errors="replace")[-4000:])
    assert running.errors_for_waiting() == []


def process(cluster: LocalCluster, name: str) -> Any:
    return next(p for p in cluster.processes if p.name == name)


@contextlib.contextmanager
def down(cluster: LocalCluster, name: str) -> Iterator[None]:
    """SIGKILL one control-plane process; start it again (same flags, same data) on exit."""
    proc = process(cluster, name)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.process.wait(timeout=30)
    proc.process = None
    try:
        yield
    finally:
        proc.start()


# What the operator reads and writes during a rollout. After an etcd outage kube-apiserver's
# storage of each resource reconnects on its own (Deployments measured up to 3.4 s after
# LeadModels): serving LeadModels again does not mean Deployments can be written yet.
OPERATOR_KINDS = ("LeadModel", "ConfigMap", "Deployment", "Event")


def answers(api: kube.Kube, kind: str, ns: str) -> bool:
    api.list(kind, ns)  # raises while the API server cannot answer
    return True


def api_back(api: kube.Kube, ns: str) -> dict[str, float]:
    """Wait until the API server answers every kind the operator needs; seconds per kind.

    Reads without a resourceVersion are quorum reads, so each one reaches etcd."""
    started = time.monotonic()
    back = {}
    for kind in OPERATOR_KINDS:
        wait_for(functools.partial(answers, api, kind, ns), what=f"{kind}s back", poll=0.1)
        back[kind] = time.monotonic() - started
    return back


# LeadModels, versions, facts ------------------------------------------------------------


def create_leadmodel(api: kube.Kube, ns: str, name: str, **spec: Any) -> None:
    api.create(
        {
            "apiVersion": "leadops.io/v1alpha1",
            "kind": "LeadModel",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"redis": REDIS, "scorer": {"replicas": 1}, **spec},
        }
    )


_ARTIFACTS: dict[int, bytes] = {}


def artifact(age_minutes: int) -> tuple[int, bytes]:
    """A sealed passing artifact `age_minutes` old (one per age, built once per module)."""
    version = int(time.time()) - age_minutes * 60
    art = make_artifact(n=200, version=version)
    data = contract.dumps(contract.seal(art))
    _ARTIFACTS[version] = data
    return version, data


def publish_version(api: kube.Kube, ns: str, name: str, data: bytes) -> None:
    found = api.get("LeadModel", ns, name)
    assert found is not None
    publish(api, data, leadmodel=name, namespace=ns, owner_uid=found["metadata"]["uid"])


def status(api: kube.Kube, ns: str, name: str) -> dict[str, Any]:
    found = api.get("LeadModel", ns, name)
    return dict((found or {}).get("status") or {})


def condition(api: kube.Kube, ns: str, name: str, type_: str) -> dict[str, Any]:
    for cond in status(api, ns, name).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def deployment_on(api: kube.Kube, ns: str, name: str, version: int) -> bool:
    dep = api.get("Deployment", ns, f"{name}-scorer") or {}
    return bool(
        (dep.get("metadata") or {}).get("annotations", {}).get(registry.MODEL_VERSION)
        == str(version)
    )


def serving(api: kube.Kube, ns: str, name: str, version: int) -> bool:
    return status(api, ns, name).get("servingVersion") == str(version)


def wait_serving(
    cluster: LocalCluster,
    api: kube.Kube,
    ns: str,
    name: str,
    version: int,
    *,
    timeout: float = TIMEOUT,
) -> None:
    """Wait until the LeadModel serves `version`; a timeout says where the rollout stopped."""
    try:
        wait_for(
            functools.partial(serving, api, ns, name, version),
            what=f"{name} serving",
            timeout=timeout,
        )
    except AssertionError as exc:
        where = rollout_state(cluster, api, ns, name, version)
        logs = "".join(
            f"\nlast lines of {component}'s log:\n{log_tail(cluster, component)}"
            for component in ("kube-controller-manager", "kube-scheduler", "kwok")
        )
        raise AssertionError(f"{exc}; where the rollout stopped: {where}{logs}") from None


def log_tail(cluster: LocalCluster, component: str, lines: int = 12) -> str:
    """A component's last log lines, without the request-header CA complaints every component
    repeats while it runs here (the control plane has no front proxy)."""
    tail = process(cluster, component).log_tail(200).splitlines()
    kept = [line for line in tail if "extension-apiserver-authentication" not in line]
    return "\n".join(kept[-lines:])


def rollout_state(cluster: LocalCluster, api: kube.Kube, ns: str, name: str, version: int) -> str:
    """One line per component's part of the rollout, as the objects show it now: which of
    the operator, kube-controller-manager, kube-scheduler and kwok has not done its part."""
    apps: Any = client.AppsV1Api(cluster.api_client)
    core: Any = client.CoreV1Api(cluster.api_client)
    dep = apps.read_namespaced_deployment(f"{name}-scorer", ns)
    lines = [
        f"Deployment generation {dep.metadata.generation}, observed "
        f"{dep.status.observed_generation}, updated {dep.status.updated_replicas}, ready "
        f"{dep.status.ready_replicas}, conditions "
        + ", ".join(f"{c.type}={c.status}/{c.reason}" for c in dep.status.conditions or [])
    ]
    sets = apps.list_namespaced_replica_set(
        ns, label_selector=f"app.kubernetes.io/instance={name}"
    ).items
    for rs in sets:
        labels = rs.spec.template.metadata.labels or {}
        lines.append(
            f"ReplicaSet {rs.metadata.name} (version {labels.get(registry.MODEL_VERSION)}): "
            f"replicas {rs.status.replicas}, ready {rs.status.ready_replicas}"
        )
    pods = core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={name}")
    for pod in pods.items:
        states = ",".join(f"{c.type}={c.status}" for c in pod.status.conditions or [])
        lines.append(
            f"Pod {pod.metadata.name}: node {pod.spec.node_name}, phase {pod.status.phase}, "
            f"{states}"
        )
    for node in core.list_node().items:
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        taints = [t.key for t in node.spec.taints or []]
        lines.append(
            f"Node {node.metadata.name}: Ready={ready.status if ready else None}, taints {taints}"
        )
    conditions = status(api, ns, name).get("conditions") or []
    lines.append(
        "LeadModel: "
        + ", ".join(f"{c['type']}={c['status']}/{c.get('reason')}" for c in conditions)
    )
    return "; ".join(lines)


def promotions(api: kube.Kube, ns: str, name: str, version: int) -> int:
    return sum(
        1
        for e in api.list("Event", ns)
        if e.get("reason") == "Promoted"
        and e["involvedObject"].get("name") == name
        and f"Rolling out version {version} " in e.get("message", "")
    )


def replicasets(cluster: LocalCluster, ns: str, name: str, version: int) -> int:
    apps: Any = client.AppsV1Api(cluster.api_client)
    found = apps.list_namespaced_replica_set(
        ns, label_selector=f"app.kubernetes.io/instance={name}"
    )
    return sum(
        1
        for rs in found.items
        if (rs.spec.template.metadata.labels or {}).get(registry.MODEL_VERSION) == str(version)
    )


def _at(stamp: Any) -> float | None:
    """A Kubernetes timestamp (the client's datetime, 1 s resolution) as epoch seconds."""
    return None if stamp is None else float(stamp.timestamp())


def rollout_phases(
    cluster: LocalCluster, ns: str, name: str, version: int, *, since: float
) -> dict[str, float]:
    """When each control-plane component did its part of the version's rollout (epoch s).

    Read from the objects themselves, so they say whose time it was: the ReplicaSet is created
    by kube-controller-manager's deployment controller, its Pods by the replicaset controller,
    bound by kube-scheduler, made Ready by kwok (the node's agent); a kwok node that turned
    Ready after `since` says when its heartbeats came back.
    """
    apps: Any = client.AppsV1Api(cluster.api_client)
    core: Any = client.CoreV1Api(cluster.api_client)
    sets = apps.list_namespaced_replica_set(
        ns, label_selector=f"app.kubernetes.io/instance={name}"
    ).items
    rs = next(
        r
        for r in sets
        if (r.spec.template.metadata.labels or {}).get(registry.MODEL_VERSION) == str(version)
    )
    pods = [
        pod
        for pod in core.list_namespaced_pod(
            ns, label_selector=f"app.kubernetes.io/instance={name}"
        ).items
        if any(ref.uid == rs.metadata.uid for ref in pod.metadata.owner_references or [])
    ]
    phases: dict[str, float] = {}
    created = _at(rs.metadata.creation_timestamp)
    if created is not None:
        phases["ReplicaSet created (kube-controller-manager, deployment controller)"] = created
    stamps: dict[str, list[float]] = {"created": [], "PodScheduled": [], "Ready": []}
    for pod in pods:
        pod_created = _at(pod.metadata.creation_timestamp)
        if pod_created is not None:
            stamps["created"].append(pod_created)
        for cond in pod.status.conditions or []:
            at = _at(cond.last_transition_time)
            if cond.type in stamps and cond.status == "True" and at is not None:
                stamps[cond.type].append(at)
    labels = {
        "created": "Pod created (kube-controller-manager, replicaset controller)",
        "PodScheduled": "Pod scheduled (kube-scheduler)",
        "Ready": "Pod Ready (kwok, the node's agent)",
    }
    for key, times in stamps.items():
        if times:
            phases[labels[key]] = max(times)
    for node in core.list_node().items:
        for cond in node.status.conditions or []:
            at = _at(cond.last_transition_time)
            if cond.type == "Ready" and cond.status == "True" and at is not None and at > since:
                phases[f"node {node.metadata.name} Ready again (kwok heartbeats)"] = at
    return phases


def assert_promoted_once(
    cluster: LocalCluster, api: kube.Kube, ns: str, name: str, version: int
) -> None:
    assert promotions(api, ns, name, version) == 1
    assert replicasets(cluster, ns, name, version) == 1
    history = [
        h for h in status(api, ns, name).get("history") or [] if h["version"] == str(version)
    ]
    assert len(history) == 1


def first_version_serving(api: kube.Kube, ns: str, name: str = "lm", **spec: Any) -> int:
    create_leadmodel(api, ns, name, **spec)
    v1, data = artifact(age_minutes=50)
    publish_version(api, ns, name, data)
    wait_for(lambda: serving(api, ns, name, v1), what=f"{name} serving v1")
    return v1


# Scenarios ------------------------------------------------------------------------------


def test_operator_sigkilled_mid_rollout_promotes_each_version_once(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    first_version_serving(api, ns)
    versions = []
    for age in (40, 30, 20):
        version, data = artifact(age_minutes=age)
        publish_version(api, ns, "lm", data)
        wait_for(
            functools.partial(deployment_on, api, ns, "lm", version),
            what=f"rollout to {version} started",
            poll=0.02,
        )
        operator.kill()
        operator.start()
        seconds = wait_for(
            functools.partial(serving, api, ns, "lm", version), what=f"{version} serving"
        )
        report("operator SIGKILLed mid-rollout -> new version serving after restart", seconds)
        versions.append(version)
    for version in versions:
        assert_promoted_once(cluster, api, ns, "lm", version)
    assert status(api, ns, "lm")["servingVersion"] == str(versions[-1])


@pytest.mark.parametrize("outage_s", [5, 75])
def test_apiserver_down_then_a_version_published_around_it_serves(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator, outage_s: int
) -> None:
    first_version_serving(api, ns)
    # A second LeadModel created just before the fault: its first rollout must not wait for
    # the timer either (the no-model Deployment may come late after the outage).
    create_leadmodel(api, ns, "fresh")
    version, data = artifact(age_minutes=20)
    publish_version(api, ns, "lm", data)
    with down(cluster, "kube-apiserver"):
        time.sleep(outage_s)
    api_back(api, ns)
    back, back_wall = time.monotonic(), time.time()
    publish_version(api, ns, "fresh", data)
    # The operator's part: both scorers pointed at the version within the bound. The rest
    # (Pods replaced) is kube-controller-manager's, which resyncs after the outage too.
    for name in ("lm", "fresh"):
        wait_for(functools.partial(deployment_on, api, ns, name, version), what=f"{name} rolling")
    rolling_s = time.monotonic() - back
    # Serving waits on kube-controller-manager and kube-scheduler, whose watches back off up
    # to 30 s with jitter after the outage (docs/benchmarks.md); on a loaded machine that has
    # exceeded the usual bound, so this step gets twice as long. The operator's bound is above.
    for name in ("lm", "fresh"):
        wait_serving(cluster, api, ns, name, version, timeout=2 * TIMEOUT)
    serving_s = time.monotonic() - back
    report(f"kube-apiserver down {outage_s} s -> both scorers rolling to the version", rolling_s)
    report(f"kube-apiserver down {outage_s} s -> both serving it", serving_s)
    # Where the time from "rolling" to "serving" went, by component (object timestamps have
    # 1 s resolution, so each figure is within a second).
    for name in ("lm", "fresh"):
        for phase, at in rollout_phases(cluster, ns, name, version, since=back_wall).items():
            report(f"kube-apiserver down {outage_s} s -> {name}: {phase}", at - back_wall)
    assert rolling_s <= RECOVERY_S
    assert_promoted_once(cluster, api, ns, "lm", version)
    assert_promoted_once(cluster, api, ns, "fresh", version)


def test_etcd_down_30s_then_a_version_published_around_it_serves(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    first_version_serving(api, ns)
    version, data = artifact(age_minutes=20)
    publish_version(api, ns, "lm", data)
    with down(cluster, "etcd"):
        time.sleep(30)
    for kind, seconds in api_back(api, ns).items():
        report(f"etcd down 30 s -> {kind}s served again", seconds)
    back = time.monotonic()
    wait_for(functools.partial(deployment_on, api, ns, "lm", version), what="rolling")
    rolling_s = time.monotonic() - back
    wait_serving(cluster, api, ns, "lm", version)
    serving_s = time.monotonic() - back
    report("etcd down 30 s -> scorer rolling to the version", rolling_s)
    report("etcd down 30 s -> serving it", serving_s)
    assert rolling_s <= RECOVERY_S
    assert_promoted_once(cluster, api, ns, "lm", version)


def test_controller_manager_down_past_the_deadline_then_the_version_serves(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    """kube-controller-manager down for longer than the rollout's progress deadline: no Pod of
    the version exists, so it had no chance. What a CI run met after a 75 s API server outage,
    when kube-controller-manager's Pod informer lagged past the deadline and the version was
    rolled back. The operator waits (Ready=False/PodsNotStarted), rolls nothing back, and the
    version serves once the controllers create its Pods."""
    deadline_s = 10
    v1 = first_version_serving(
        api, ns, scorer={"replicas": 1, "progressDeadlineSeconds": deadline_s}
    )
    version, data = artifact(age_minutes=20)
    with down(cluster, "kube-controller-manager"):
        publish_version(api, ns, "lm", data)
        wait_for(functools.partial(deployment_on, api, ns, "lm", version), what="rolling")
        wait_for(
            lambda: condition(api, ns, "lm", "Ready").get("reason") == "PodsNotStarted",
            what="Ready=False/PodsNotStarted",
            timeout=deadline_s + 30,
        )
        ready = condition(api, ns, "lm", "Ready")
        assert "kube-controller-manager has not acted" in ready["message"]
        time.sleep(deadline_s)  # passes of the operator's 3 s look-again, all past the deadline
        assert deployment_on(api, ns, "lm", version)
        assert condition(api, ns, "lm", "RolledOut")["reason"] == "RolloutInProgress"
        assert status(api, ns, "lm")["servingVersion"] == str(v1)
    back = time.monotonic()
    wait_serving(cluster, api, ns, "lm", version)
    report(
        f"kube-controller-manager down past a {deadline_s} s deadline -> serving after restart",
        time.monotonic() - back,
    )
    assert_promoted_once(cluster, api, ns, "lm", version)
    reasons = [e.get("reason") for e in api.list("Event", ns) if e.get("type") == "Warning"]
    assert "ProgressDeadlineExceeded" not in reasons
    assert reasons.count("PodsNotStarted") == 1


def test_completed_rollout_whose_pods_turn_notready_is_unavailable_not_frozen(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    v1 = first_version_serving(api, ns)
    core: Any = client.CoreV1Api(cluster.api_client)
    (pod,) = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/component=scorer").items
    # What the node lifecycle controller does to the Pods of a node that stopped reporting.
    core.patch_namespaced_pod_status(
        pod.metadata.name,
        ns,
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "NodeNotReady"},
                    {"type": "ContainersReady", "status": "False", "reason": "NodeNotReady"},
                ]
            }
        },
    )
    wait_for(
        lambda: condition(api, ns, "lm", "Ready").get("reason") == "ScorerUnavailable",
        what="Ready=False/ScorerUnavailable",
    )
    assert status(api, ns, "lm")["servingVersion"] == str(v1)
    assert condition(api, ns, "lm", "RolledOut")["reason"] == "RolloutComplete"
    unavailable = [e for e in api.list("Event", ns) if e.get("reason") == "ScorerUnavailable"]
    assert [e["type"] for e in unavailable] == ["Warning"]
    # Not frozen: a passing version still rolls out (new Pods on a working node).
    version, data = artifact(age_minutes=20)
    publish_version(api, ns, "lm", data)
    seconds = wait_for(lambda: serving(api, ns, "lm", version), what="next version serving")
    report("completed rollout NotReady -> next published version serving", seconds)
    assert seconds <= RECOVERY_S
    assert_promoted_once(cluster, api, ns, "lm", version)
    assert condition(api, ns, "lm", "Ready")["reason"] == "Serving"


def test_fifty_spec_edits_in_a_second_converge_without_extra_rollouts(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    v1 = first_version_serving(api, ns)
    before = api.get("Deployment", ns, "lm-scorer")
    assert before is not None
    started = time.monotonic()

    def edit(i: int) -> None:
        schedule = {"schedule": f"{i % 60} 3 * * *"}
        api.patch("LeadModel", ns, "lm", {"spec": {"training": schedule}})

    with ThreadPoolExecutor(max_workers=10) as pool:  # 50 edits within about a second
        list(pool.map(edit, range(50)))
    edits_s = time.monotonic() - started
    last = api.get("LeadModel", ns, "lm")
    assert last is not None
    generation = last["metadata"]["generation"]
    wanted = last["spec"]["training"]["schedule"]  # whichever edit landed last
    seconds = wait_for(
        lambda: (
            status(api, ns, "lm").get("observedGeneration") == generation
            and (api.get("CronJob", ns, "lm-train") or {}).get("spec", {}).get("schedule") == wanted
        ),
        what="last edit applied",
    )
    report(f"50 spec edits in {edits_s:.1f} s -> converged after the last edit", seconds)
    after = api.get("Deployment", ns, "lm-scorer")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert promotions(api, ns, "lm", v1) == 1
    assert status(api, ns, "lm")["servingVersion"] == str(v1)


def test_ten_restarts_with_twenty_leadmodels_write_nothing(
    cluster: LocalCluster, api: kube.Kube, ns: str, operator: Operator
) -> None:
    names = [f"lm{i:02d}" for i in range(20)]
    version, data = artifact(age_minutes=30)
    for name in names:
        create_leadmodel(api, ns, name)
    for name in names:
        wait_for(
            functools.partial(api.get, "Deployment", ns, f"{name}-scorer"),
            what=f"{name} Deployment",
        )
        publish_version(api, ns, name, data)
    for name in names:
        wait_for(functools.partial(serving, api, ns, name, version), what=f"{name} serving")

    def versions() -> dict[str, str]:
        out = {}
        for kind in ("LeadModel", "Deployment", "ConfigMap", "CronJob", "Service"):
            for obj in api.list(kind, ns):
                meta = obj["metadata"]
                out[f"{kind}/{meta['name']}"] = meta["resourceVersion"]
        return out

    time.sleep(2)  # the last status writes of the rollouts land
    settled = versions()
    for restart in range(10):
        operator.kill()
        operator.start()
        # Every LeadModel looked at again (resume) before the next kill.
        wait_for(lambda: operator.reconciles() >= len(names), what=f"restart {restart} resumed")
    operator.kill()
    changed = {k: v for k, v in versions().items() if settled.get(k) != v}
    assert changed == {}
    for name in names:
        assert_promoted_once(cluster, api, ns, name, version)
        assert status(api, ns, name)["servingVersion"] == str(version)


def test_leader_sigkilled_mid_rollout_standby_takes_over_and_promotes_once(
    cluster: LocalCluster, api: kube.Kube, ns: str, tmp_path: Path
) -> None:
    """Two replicas with --leader-elect: only the leader acts; SIGKILL it mid-rollout (no
    release) and the standby takes the Lease within the lease duration and finishes."""
    lease_s = 6.0
    election = (
        *("--leader-elect", "--leader-elect-lease", f"{ns}/leadops-operator"),
        *("--lease-duration", str(lease_s), "--renew-deadline", "4", "--retry-period", "1"),
    )
    health = [free_port(), free_port()]
    replicas = [
        Operator(
            cluster,
            ns,
            tmp_path / f"operator-{i}.log",
            *election,
            *("--health-address", f"127.0.0.1:{health[i]}"),
        )
        for i in (0, 1)
    ]

    def probe(replica: Operator) -> int:
        """The liveness/readiness probe's answer (the chart probes /healthz)."""
        port = health[replicas.index(replica)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return int(answer.status)

    def holder() -> str:
        lease = api.get("Lease", ns, "leadops-operator") or {}
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def leading() -> list[Operator]:
        return [r for r in replicas if r.metric("leadops_operator_leader") == 1]

    try:
        for replica in replicas:
            replica.start()
        wait_for(lambda: len(leading()) == 1, what="one leader")
        first_version_serving(api, ns)
        (leader,) = leading()
        (standby,) = [r for r in replicas if r is not leader]
        first_holder = holder()
        assert first_holder
        # The standby watches nothing and acts on nothing while it waits.
        assert standby.reconciles() == 0
        assert standby.metric("leadops_operator_leader") == 0
        # Both pass their probes: a waiting standby is healthy, not restarted by its kubelet.
        assert probe(standby) == 200
        assert probe(leader) == 200

        version, data = artifact(age_minutes=10)
        publish_version(api, ns, "lm", data)
        wait_for(
            functools.partial(deployment_on, api, ns, "lm", version),
            what=f"rollout to {version} started",
            poll=0.02,
        )
        leader.kill()
        took_over = wait_for(lambda: holder() not in ("", first_holder), what="new holder")
        report("operator leader SIGKILLed -> standby holds the Lease", took_over)
        assert took_over <= lease_s + 3  # the lease duration, plus a retry period and an API trip
        wait_for(lambda: standby.metric("leadops_operator_leader") == 1, what="standby leads")
        seconds = wait_for(
            functools.partial(serving, api, ns, "lm", version), what=f"{version} serving"
        )
        report("operator leader SIGKILLed mid-rollout -> new version serving", took_over + seconds)
        assert_promoted_once(cluster, api, ns, "lm", version)
        assert standby.metric("leadops_operator_leadership_changes_total") == 1
        wait_for(lambda: probe(standby) == 200, what="kopf's probe on the new leader")
        log = standby.log.read_text(errors="replace")
        assert "is now the leader" in log
        assert standby.errors_for_waiting() == []
    finally:
        for replica in replicas:
            replica.kill()


def test_two_operators_split_a_fleet_by_selector(
    cluster: LocalCluster, api: kube.Kube, ns: str, tmp_path: Path
) -> None:
    """`--selector`: each operator acts on its shard's LeadModels only, never the other's."""
    shards = {
        shard: Operator(cluster, ns, tmp_path / f"{shard}.log", "--selector", f"shard={shard}")
        for shard in ("a", "b")
    }
    try:
        for name, shard in (("in-a", "a"), ("in-b", "b")):
            create_leadmodel(api, ns, name)
            api.patch("LeadModel", ns, name, {"metadata": {"labels": {"shard": shard}}})
        create_leadmodel(api, ns, "unsharded")
        shards["a"].start()
        wait_for(functools.partial(api.get, "Deployment", ns, "in-a-scorer"), what="a's scorer")
        # b's operator is not running yet: nobody else acts on b's or the unsharded LeadModel.
        assert api.get("Deployment", ns, "in-b-scorer") is None
        shards["b"].start()
        wait_for(functools.partial(api.get, "Deployment", ns, "in-b-scorer"), what="b's scorer")
        wait_for(lambda: shards["b"].reconciles() >= 1, what="b reconciled")
        time.sleep(2)  # a pass over the unsharded one would have made its children by now
        assert api.get("Deployment", ns, "unsharded-scorer") is None
        assert status(api, ns, "unsharded") == {}
    finally:
        for running in shards.values():
            running.kill()
