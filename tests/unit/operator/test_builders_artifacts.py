"""spec.artifacts.s3 in the built Pods: versions in the bucket are unpacked by an init container
on the jobs image (the scorer image has no S3 client) with the credentials as a mounted file;
versions still in ConfigMaps keep the ConfigMap volume; the training Job gets the file too."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from leadops import objectstore
from leadops.operator import builders, network_policy, registry
from leadops.operator import spec as spec_module

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
VERSION = 1764158400
DIGEST = "sha256:" + "ab" * 32
URL = f"s3://models/leadops/sales/acme/{VERSION}.json.gz"
S3 = {
    "bucket": "models",
    "prefix": "leadops/",
    "endpoint": "http://seaweedfs.storage.svc:8333",
    "region": "eu-west-1",
    "credentialsSecretRef": {"name": "s3", "key": "credentials"},
}
IMAGE = "registry.example/leadops/scorer:0.2.0"


def _lm() -> spec_module.LeadModelSpec:
    return spec(artifacts={"s3": S3}, scorer={"image": IMAGE})


def _scorer_pod(lm: spec_module.LeadModelSpec, objects: dict[int, str]) -> dict[str, Any]:
    rollout = builders.Rollout(version=VERSION, digest=DIGEST)
    deployment = builders.scorer_deployment(OWNER, lm, rollout, objects=objects)
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_a_version_in_the_bucket_is_downloaded_on_the_jobs_image_with_a_credentials_file() -> None:
    pod = _scorer_pod(_lm(), {VERSION: URL})
    (init,) = pod["initContainers"]
    assert init["image"] == "registry.example/leadops/jobs:0.2.0"
    assert init["args"] == [
        "--digest", DIGEST,
        "--s3-endpoint", S3["endpoint"], "--s3-region", "eu-west-1",
        URL, f"{builders.MODEL_DIR}/model.json",
    ]  # fmt: skip
    assert init["env"] == [
        {
            "name": objectstore.ENV_CREDENTIALS_FILE,
            "value": f"{builders.S3_CREDENTIALS_DIR}/credentials",
        }
    ]
    assert {"name": "s3-credentials", "secret": {"secretName": "s3"}} in pod["volumes"]
    assert not any("configMap" in v for v in pod["volumes"])
    # Only the init container holds the credentials; the scorer never sees them.
    (scorer,) = pod["containers"]
    assert all(m["name"] != "s3-credentials" for m in scorer["volumeMounts"])
    assert objectstore.ENV_CREDENTIALS_FILE not in {e["name"] for e in scorer["env"]}
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert "memory" in init["resources"]["limits"]


def test_a_version_still_in_its_configmap_keeps_the_configmap_volume() -> None:
    pod = _scorer_pod(_lm(), {})
    (init,) = pod["initContainers"]
    assert init["image"] == IMAGE
    assert {
        "name": "registry",
        "configMap": {"name": registry.configmap_name("acme", VERSION)},
    } in pod["volumes"]
    assert all(v["name"] != "s3-credentials" for v in pod["volumes"])


def test_the_training_job_gets_the_credentials_as_a_file() -> None:
    cronjob = builders.training_cronjob(OWNER, _lm())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (train,) = pod["containers"]
    assert {
        "name": objectstore.ENV_CREDENTIALS_FILE,
        "value": f"{builders.S3_CREDENTIALS_DIR}/credentials",
    } in train["env"]
    assert all("valueFrom" not in e for e in train["env"])
    assert {"name": "s3-credentials", "secret": {"secretName": "s3"}} in pod["volumes"]


def test_one_store_only() -> None:
    lm = spec(artifacts={"s3": S3, "configMap": {}})
    assert "artifacts names one store: configMap or s3" in lm.semantic_errors()


@pytest.mark.parametrize("prefix", ["no-slash", "/abs/", "a//b/"])
def test_a_prefix_is_path_segments_ending_in_a_slash(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        spec(artifacts={"s3": {**S3, "prefix": prefix}})


def test_too_large_for_a_configmap_names_spec_artifacts_s3() -> None:
    with pytest.raises(registry.RegistryError) as refused:
        registry.encode(_incompressible_artifact(), leadmodel="acme", namespace="sales")
    assert refused.value.reason == "ArtifactTooLarge"
    assert "spec.artifacts.s3" in str(refused.value)


def _incompressible_artifact() -> bytes:
    """A JSON document with the fields the registry reads and 2 MB of random hex (1 MB of gzip)."""
    return json.dumps(
        {
            "version": VERSION,
            "metrics": {"auc": 0.8, "n_train": 10, "positive_rate": 0.2},
            "digest": DIGEST,
            "padding": os.urandom(1_000_000).hex(),
        }
    ).encode()


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [("http://seaweedfs.storage.svc:8333", 8333), ("https://minio.example", 443), (None, 443)],
)
def test_the_training_jobs_network_policy_lets_it_reach_the_bucket(
    endpoint: str | None, port: int
) -> None:
    lm = spec(artifacts={"s3": {**S3, "endpoint": endpoint}}, networkPolicy={"enabled": True})
    (train,) = [
        p for p in network_policy.policies(OWNER, lm) if p["metadata"]["name"] == "acme-train"
    ]
    assert {"ports": [{"protocol": "TCP", "port": port}]} in train["spec"]["egress"]
    without = spec(networkPolicy={"enabled": True})
    (plain,) = [
        p for p in network_policy.policies(OWNER, without) if p["metadata"]["name"] == "acme-train"
    ]
    assert len(plain["spec"]["egress"]) == len(train["spec"]["egress"]) - 1
