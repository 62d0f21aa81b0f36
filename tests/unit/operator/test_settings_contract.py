"""The variables the builders set are the ones the scorer and the training job read.

The Deployment's env is run through the scorer's own `Settings` (and the training container's
through the contract's key loader), so a renamed variable fails here, not silently in a Pod.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from leadops.contract import artifact as contract
from leadops.operator import builders
from leadops.scorer.settings import Settings

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
DIGEST = "sha256:" + "ab" * 32
SIGNED = spec(
    scorer={"apiKeySecretRef": {"name": "scorer-api", "key": "key"}},
    signing={"keySecretRef": {"name": "model-signing", "key": "signing.pem"}},
    gates={"signature": "Required"},
)


def _plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_scorer_settings_read_every_variable_the_deployment_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rollout = builders.Rollout(version=1764158400, digest=DIGEST)
    pod = builders.scorer_deployment(OWNER, SIGNED, rollout)["spec"]["template"]["spec"]
    (scorer,) = pod["containers"]
    known = {f"LEADOPS_{name.upper()}" for name in Settings.model_fields} | {"REDIS_URL"}
    names = {e["name"] for e in scorer["env"]}
    assert names <= known, f"the scorer ignores {sorted(names - known)}"
    for key in [k for k in os.environ if k.startswith("LEADOPS_")]:
        monkeypatch.delenv(key)
    for name, value in _plain_env(scorer).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.model_digest == DIGEST
    assert str(settings.model_path) == f"{builders.MODEL_DIR}/model.json"
    assert settings.api_keys_file is not None
    # The init container pins the same digest.
    (init,) = pod["initContainers"]
    assert init["args"][init["args"].index("--digest") + 1] == DIGEST


def test_only_the_training_job_holds_the_signing_key() -> None:
    deployment = builders.scorer_deployment(
        OWNER, SIGNED, builders.Rollout(version=1, digest=DIGEST)
    )
    pod = deployment["spec"]["template"]["spec"]
    secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert "model-signing" not in secrets
    assert all("SIGNING" not in e["name"] for c in _containers(pod) for e in c.get("env") or [])
    backfill = builders.backfill_cronjob(OWNER, SIGNED)["spec"]["jobTemplate"]["spec"]["template"]
    assert "model-signing" not in str(backfill)
    train = builders.training_cronjob(OWNER, SIGNED)["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = train["spec"]["containers"]
    env = _plain_env(container)
    path = env[contract.ENV_SIGNING_KEY_FILE]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert path == f"{mounts['signing-key']}/signing.pem"
    volumes = {v["name"]: v for v in train["spec"]["volumes"]}
    assert volumes["signing-key"]["secret"]["secretName"] == "model-signing"


def test_the_training_env_is_what_the_signer_reads(tmp_path: Any) -> None:
    train = builders.training_cronjob(OWNER, SIGNED)["spec"]["jobTemplate"]["spec"]["template"]
    env = _plain_env(train["spec"]["containers"][0])
    secret = tmp_path / "signing.pem"
    secret.write_bytes(b"a-shared-hmac-secret-of-32-bytes")
    env[contract.ENV_SIGNING_KEY_FILE] = str(secret)  # where the Secret is mounted in the Pod
    key = contract.signing_key_from_env(env)
    assert key is not None
    assert key.algorithm == "hmac-sha256"
