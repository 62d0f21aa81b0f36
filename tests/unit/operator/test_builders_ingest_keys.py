"""spec.scorer.ingestKeysSecretRef reaches the scorer as a FILE from the Secret (so keys rotate
without a restart), separate from the /ops key, never as a value in the Pod spec."""

from __future__ import annotations

from typing import Any

from leadops.operator import builders, trust

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000002")
KEYS = {"name": "acme-ingest", "key": "keys"}


def _container(lm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = builders.scorer_deployment(OWNER, lm, builders.Rollout())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_ingest_keys_are_a_mounted_file_apart_from_the_ops_key() -> None:
    lm = spec(
        scorer={
            "ingestKeysSecretRef": KEYS,
            "apiKeySecretRef": {"name": "acme-ops", "key": "key"},
        }
    )
    pod, container = _container(lm)
    env = {e["name"]: e for e in container["env"]}
    assert env["LEADOPS_INGEST_KEYS_FILE"] == {
        "name": "LEADOPS_INGEST_KEYS_FILE",
        "value": f"{builders.INGEST_KEYS_DIR}/keys",
    }
    assert "LEADOPS_INGEST_KEYS" not in env
    assert {"name": "ingest-keys", "secret": {"secretName": "acme-ingest"}} in pod["volumes"]
    mount = {"name": "ingest-keys", "mountPath": builders.INGEST_KEYS_DIR, "readOnly": True}
    assert mount in container["volumeMounts"]
    assert builders.INGEST_KEYS_DIR != builders.API_KEY_DIR
    assert env["LEADOPS_API_KEYS_FILE"]["value"].startswith(builders.API_KEY_DIR)
    # The Secret is one the operator checks it may use (usable-by annotation).
    assert trust.secret_refs(lm)["spec.scorer.ingestKeysSecretRef"] == "acme-ingest"


def test_without_the_ref_ingest_stays_open() -> None:
    pod, container = _container(spec())
    assert all(e["name"] != "LEADOPS_INGEST_KEYS_FILE" for e in container["env"])
    assert all(v["name"] != "ingest-keys" for v in pod["volumes"])
