"""A scorer image that cannot become Ready is rolled back to the image that served, on the
real local control plane (kwok keeps Pods of `docker.io/leadops/scorer:fault-never-ready`
unready, the Deployment controller sets ProgressDeadlineExceeded, the operator reacts)."""

from __future__ import annotations

from typing import Any

import pytest

from leadops.operator import builders, kube, registry
from tests.fixtures.control_plane import KubeCluster

from .test_operator import (
    NAME,
    api,  # noqa: F401 (fixture)
    artifact,
    condition,
    crd_installed,  # noqa: F401 (fixture)
    events,
    get_lm,
    leadmodel,
    publish_version,
    running,  # noqa: F401 (fixture)
    serving,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

GOOD = "docker.io/leadops/scorer:0.1.0"
BAD = "docker.io/leadops/scorer:fault-never-ready"


def _scorer(client: kube.Kube, ns: str) -> dict[str, Any]:
    found = client.get("Deployment", ns, f"{NAME}-scorer")
    assert found is not None
    return found


def _images(deployment: dict[str, Any]) -> set[str]:
    pod = deployment["spec"]["template"]["spec"]
    return {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}


@pytest.mark.usefixtures("running")
def test_a_bad_image_is_rolled_back_to_the_image_that_served_and_the_version_kept(
    api: kube.Kube,  # noqa: F811 (fixture)
    k8s_namespace: str,
    k8s_cluster: KubeCluster,
) -> None:
    if not k8s_cluster.fault_injection:
        pytest.fail("the cluster has no kwok fault stages; rollback cannot be exercised")
    ns = k8s_namespace
    api.create(leadmodel(ns, scorer={"image": GOOD, "replicas": 1, "progressDeadlineSeconds": 5}))
    version, data = artifact(age_minutes=30)
    wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
    publish_version(api, ns, data)
    wait_for(lambda: serving(api, ns, version), what=f"{version} serving")

    # Only the image changes: a rollout of its own, which never becomes Available.
    api.patch("LeadModel", ns, NAME, {"spec": {"scorer": {"image": BAD}}})
    wait_for(lambda: events(api, ns, "ImageRollout"), what="the image rollout")
    wait_for(
        lambda: condition(api, ns, "RolledOut").get("reason") == "RolledBack",
        what="automatic rollback of the image",
        timeout=180,
    )
    deployment = _scorer(api, ns)
    ann = deployment["metadata"]["annotations"]
    assert _images(deployment) == {GOOD}, "the rollback restores the image, not only the version"
    assert ann[registry.MODEL_VERSION] == str(version)
    assert ann[builders.ANN_ROLLOUT_KIND] == builders.ROLLOUT_BACK
    assert ann[builders.ANN_ROLLED_BACK_IMAGE] == BAD
    (warning, *_) = events(api, ns, "ProgressDeadlineExceeded")
    assert f"from image {BAD} to {GOOD}" in warning["message"]
    degraded = condition(api, ns, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
    # The model version was not at fault: not marked rolled back, still served.
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, version))
    assert cm is not None
    assert registry.ANN_ROLLED_BACK_AT not in (cm["metadata"].get("annotations") or {})
    assert get_lm(api, ns)["status"]["servingVersion"] == str(version)
    # The old ReplicaSet's Pods are Available again under the restored template.
    wait_for(
        lambda: (
            (_scorer(api, ns).get("status") or {}).get("availableReplicas") == 1
            and (_scorer(api, ns).get("status") or {}).get("updatedReplicas") == 1
        ),
        what="the restored template Available",
    )

    # Naming the good image again clears the rollback; nothing rolls out.
    api.patch("LeadModel", ns, NAME, {"spec": {"scorer": {"image": GOOD}}})
    wait_for(
        lambda: condition(api, ns, "Degraded").get("status") == "False",
        what="Degraded cleared",
    )
    ann = _scorer(api, ns)["metadata"]["annotations"]
    assert builders.ANN_ROLLED_BACK_IMAGE not in ann
    assert _images(_scorer(api, ns)) == {GOOD}
