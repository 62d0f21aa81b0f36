"""spec.artifacts.s3 on the real local control plane and a real S3 server (SeaweedFS):
`leadops publish` follows the LeadModel's store, the operator's facts download and check each
version's digest (a replaced object is DigestMismatch), GC deletes the bucket's objects and the
ConfigMaps, and a deleted LeadModel's objects go with it (no one else's)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from leadops import objectstore
from leadops.operator import apply, read_world, registry, spec
from leadops.operator.actions import GarbageCollect
from leadops.operator.kube import Kube
from leadops.operator.world import Observed
from tests.fixtures.artifacts import Built
from tests.fixtures.chart import install_crd
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.s3_server import S3Server
from tests.integration.test_operator import (
    api,  # noqa: F401 (fixture)
    crd_installed,  # noqa: F401 (fixture)
    running,  # noqa: F401 (fixture)
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]
NAME = "acme"


def _publish(
    cluster: KubeCluster, server: S3Server, ns: str, artifact: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEADOPS_"))}
    env[objectstore.ENV_CREDENTIALS_FILE] = str(server.credentials_file)
    argv = [sys.executable, "-m", "leadops.cli", "publish", NAME, "-n", ns]
    argv += ["--artifact", str(artifact), "--kubeconfig", str(cluster.kubeconfig)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _leadmodel(ns: str, artifacts: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "redis": {"urlSecretRef": {"name": "redis", "key": "url"}},
            "artifacts": artifacts,
        },
    }


def _credentials_secret(admin: Kube, ns: str, server: S3Server) -> None:
    admin.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": ns},
            "data": {"credentials": base64.b64encode(server.credentials).decode()},
        }
    )


def test_publish_validate_and_gc_through_the_bucket(
    k8s_cluster: KubeCluster,
    k8s_namespace: str,
    s3_server: S3Server,
    good_model: Built,
    other_model: Built,
) -> None:
    ns = k8s_namespace
    admin = Kube(k8s_cluster.api_client)
    install_crd(k8s_cluster)
    bucket = f"gc-{ns}"[:63]
    s3_server.bucket(bucket)
    _credentials_secret(admin, ns, s3_server)
    s3 = {
        "bucket": bucket,
        "prefix": "leadops/",
        "endpoint": s3_server.endpoint,
        "credentialsSecretRef": {"name": "s3", "key": "credentials"},
    }
    # One store only: the API server refuses both (the CRD's CEL rule).
    both = subprocess.run(
        [str(k8s_cluster.kubectl), "--kubeconfig", str(k8s_cluster.kubeconfig), "create",
         "--dry-run=server", "-f", "-"],
        input=json.dumps(_leadmodel(ns, {"s3": s3, "configMap": {}})),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert both.returncode != 0
    assert "configMap or s3" in both.stderr
    admin.create(_leadmodel(ns, {"s3": s3}))
    body = admin.get("LeadModel", ns, NAME)
    assert body is not None
    lm = spec.LeadModelSpec.model_validate(body["spec"])

    for built in (good_model, other_model):
        done = _publish(k8s_cluster, s3_server, ns, built.path)
        assert done.returncode == 0, done.stderr
    keys = [f"leadops/{ns}/{NAME}/{b.version}.json.gz" for b in (good_model, other_model)]
    assert s3_server.keys(bucket) == sorted(keys)
    cms = {
        int(cm["metadata"]["labels"][registry.MODEL_VERSION]): cm
        for cm in admin.list("ConfigMap", ns, selector=registry.selector(NAME))
    }
    assert set(cms) == {good_model.version, other_model.version}
    assert all("binaryData" not in cm for cm in cms.values())

    # The operator's facts: downloaded with the Secret's credentials, digest checked.
    bucket_of = read_world._bucket(admin, ns, lm)
    good = read_world._entry(cms[good_model.version], keys=None, key_id="", bucket=bucket_of)
    assert good is not None
    assert good.facts is not None
    assert good.facts.load_error is None
    assert good.object_url == f"s3://{bucket}/{keys[0]}"
    # Replace the other version's object with the good model's (validly sealed) bytes.
    store = s3_server.store(bucket)
    objectstore.put(s3_server.client(), store, keys[1], registry.pack(good_model.path.read_bytes()))
    other = read_world._entry(cms[other_model.version], keys=None, key_id="", bucket=bucket_of)
    assert other is not None
    assert other.facts is not None
    assert other.facts.load_error == "DigestMismatch"

    # GC: each version's object, then its ConfigMap.
    obs = Observed(name=NAME, namespace=ns, uid=body["metadata"]["uid"], generation=1)
    names = tuple(registry.configmap_name(NAME, v) for v in cms)
    apply._collect(admin, obs, GarbageCollect(names, s3=lm.artifacts.s3))
    assert s3_server.keys(bucket) == []
    assert admin.list("ConfigMap", ns, selector=registry.selector(NAME)) == []


def test_a_deleted_leadmodel_takes_its_objects_and_leaves_the_rest(  # noqa: PLR0917 (fixtures)
    api: Kube,  # noqa: F811 (fixture)
    k8s_cluster: KubeCluster,
    k8s_namespace: str,
    running: KopfRunner,  # noqa: F811 (fixture)
    s3_server: S3Server,
    good_model: Built,
    other_model: Built,
) -> None:
    ns = k8s_namespace
    bucket = f"del-{ns}"[:63]
    store = s3_server.bucket(bucket)
    _credentials_secret(api, ns, s3_server)
    s3 = {
        "bucket": bucket,
        "endpoint": s3_server.endpoint,
        "credentialsSecretRef": {"name": "s3", "key": "credentials"},
    }
    api.create(_leadmodel(ns, {"s3": s3}))
    done = _publish(k8s_cluster, s3_server, ns, good_model.path)
    assert done.returncode == 0, done.stderr
    ours = f"{ns}/{NAME}/{good_model.version}.json.gz"
    client = s3_server.client()
    stat = client.stat_object(bucket, ours)
    uid = (api.get("LeadModel", ns, NAME) or {})["metadata"]["uid"]
    assert stat.metadata.get(f"x-amz-meta-{objectstore.OWNER_METADATA}") == uid
    packed = registry.pack(other_model.path.read_bytes())
    # Written by an older release (no owner), by a LeadModel re-created under the same name
    # (another uid), and by a LeadModel whose name starts with ours.
    legacy = f"{ns}/{NAME}/1.json.gz"
    objectstore.put(client, store, legacy, packed)
    recreated = f"{ns}/{NAME}/2.json.gz"
    objectstore.put(client, store, recreated, packed, owner_uid="another-uid")
    sibling = f"{ns}/{NAME}x/3.json.gz"
    objectstore.put(client, store, sibling, packed)

    api.delete("LeadModel", ns, NAME)
    wait_for(
        lambda: ours not in s3_server.keys(bucket) and legacy not in s3_server.keys(bucket),
        what="the deleted LeadModel's objects removed",
        timeout=30,
    )
    assert s3_server.keys(bucket) == sorted([recreated, sibling])
