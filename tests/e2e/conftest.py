"""End-to-end tests on a real node: the project's images, built by hack/images/build.sh,
run by containerd and kubelet in the local cluster (tests/fixtures/control_plane/node.py).

One cluster and node serve every test of the session. `make test` and `make e2e` run
them (LEADOPS_E2E=1, after building the node's programs and the images); a plain
`pytest` skips them, with the reason."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import NODE_IMAGES, build_images
from tests.fixtures.control_plane.node import missing_node_programs

ENABLED = os.environ.get("LEADOPS_E2E") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if not ENABLED:
                item.add_marker(
                    pytest.mark.skip(reason="real-node e2e: run `make e2e` or `make test`")
                )


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (network namespace, cgroups, containerd)")
    missing = missing_node_programs()
    if missing:
        pytest.fail(f"missing for the real node: {', '.join(missing)} (hack/ensure-system.sh node)")
    images = build_images()
    cluster = LocalCluster(
        tmp_path_factory.mktemp("k8s-real"),
        nodes=0,
        real_node=True,
        images=[images / f"{name}.tar" for name in NODE_IMAGES],
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def e2e_namespace(real_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace (restricted Pod Security enforced) with its default ServiceAccount."""
    core: Any = client.CoreV1Api(real_cluster.api_client)
    name = f"e2e-{secrets.token_hex(4)}"
    labels = {
        "leadops.io/test": "true",
        "pod-security.kubernetes.io/enforce": "restricted",
    }
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        core.delete_namespace(name)


def which(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return found
