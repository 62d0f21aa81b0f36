"""The real node itself: it joined, runs the images built here under Pod Security
"restricted", and gives Pods cluster DNS, Services and the Kubernetes API."""

from __future__ import annotations

from tests.e2e.pods import (
    JOBS_IMAGE,
    REDIS_IMAGE,
    SCORER_IMAGE,
    apply,
    get_json,
    logs,
    pod,
    start_redis,
    wait_pod_phase,
)
from tests.fixtures.control_plane import LocalCluster


def test_the_node_is_a_real_kubelet_on_containerd(real_cluster: LocalCluster) -> None:
    node = get_json(real_cluster, "node", "leadops-node")
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"] == real_cluster.server_version
    images = {name for image in node["status"]["images"] for name in image["names"]}
    assert SCORER_IMAGE in images
    assert JOBS_IMAGE in images
    assert REDIS_IMAGE in images


def test_a_pod_reaches_another_through_its_service_by_dns_name(
    real_cluster: LocalCluster, e2e_namespace: str
) -> None:
    ns = e2e_namespace
    start_redis(real_cluster, ns)
    # The scorer image's Python and redis-py, through the Service's DNS name. Until kube-proxy
    # has programmed a new Service its ClusterIP is routed nowhere (ENETUNREACH), and on a
    # loaded machine that takes seconds: retry, bounded, as the scorer's own Redis client does.
    script = (
        "import redis; from redis.backoff import ConstantBackoff; from redis.retry import Retry;"
        "r = redis.Redis.from_url('redis://redis:6379/0', retry=Retry(ConstantBackoff(1), 60),"
        " retry_on_error=[redis.ConnectionError]);"
        "r.set('e2e', 'ok'); print(r.get('e2e').decode())"
    )
    client = pod(
        "client",
        ns,
        {"image": SCORER_IMAGE, "command": ["python", "-c", script]},
        restartPolicy="Never",
    )
    apply(real_cluster, client)
    done = wait_pod_phase(real_cluster, "client", ns, {"Succeeded"})
    assert logs(real_cluster, "client", ns).strip() == "ok", done["status"]
    # The value really is in the Redis Pod.
    got = real_cluster.run_kubectl("exec", "redis", "-n", ns, "--", "redis-cli", "GET", "e2e")
    assert got.stdout.strip() == "ok"


def test_a_pod_reaches_the_kubernetes_api_with_its_service_account(
    real_cluster: LocalCluster, e2e_namespace: str
) -> None:
    ns = e2e_namespace
    # The jobs image's Kubernetes client, as `leadops publish` uses it.
    script = (
        "from kubernetes import client, config; config.load_incluster_config();"
        "print(client.VersionApi().get_code().git_version)"
    )
    apply(
        real_cluster,
        pod(
            "api",
            ns,
            {"image": JOBS_IMAGE, "command": ["python", "-c", script]},
            restartPolicy="Never",
        ),
    )
    wait_pod_phase(real_cluster, "api", ns, {"Succeeded"})
    assert logs(real_cluster, "api", ns).strip() == real_cluster.server_version
