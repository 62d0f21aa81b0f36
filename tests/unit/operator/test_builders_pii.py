"""spec.pii reaches the scorer and the backfill: the same phone regions, the same key salt
(a Secret mounted read-only as a file, never an env value)."""

from __future__ import annotations

from typing import Any

import pytest

from leadops.operator import builders

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
PII = spec(
    pii={"regions": ["US", "GB", "IN"], "keySaltSecretRef": {"name": "acme-salt", "key": "salt"}}
)
SALT_FILE = f"{builders.KEY_SALT_DIR}/salt"


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _both(lm: Any) -> list[dict[str, Any]]:
    return [
        builders.scorer_deployment(OWNER, lm, builders.Rollout()),
        builders.backfill_cronjob(OWNER, lm),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["scorer", "backfill"])
def test_regions_and_the_key_salt_reach_scorer_and_backfill(index: int) -> None:
    pod = _pod(_both(PII)[index])
    (container,) = pod["containers"]
    env = _env(container)
    assert env["LEADOPS_PII_REGIONS"] == "US,GB,IN"
    assert env["LEADOPS_KEY_SALT_FILE"] == SALT_FILE
    assert {"name": "key-salt", "secret": {"secretName": "acme-salt"}} in pod["volumes"]
    mount = {"name": "key-salt", "mountPath": builders.KEY_SALT_DIR, "readOnly": True}
    assert mount in container["volumeMounts"]
    # The salt is a file from the Secret, never a value in the Pod spec.
    assert not any(
        isinstance(v, dict) and "secretKeyRef" in v and v["secretKeyRef"]["name"] == "acme-salt"
        for v in env.values()
    )


def test_without_spec_pii_nothing_is_added() -> None:
    for obj in _both(spec()):
        pod = _pod(obj)
        (container,) = pod["containers"]
        env = _env(container)
        assert "LEADOPS_PII_REGIONS" not in env
        assert "LEADOPS_KEY_SALT_FILE" not in env
        assert all(v["name"] != "key-salt" for v in pod["volumes"])


def test_regions_alone_need_no_volume() -> None:
    for obj in _both(spec(pii={"regions": ["GB"]})):
        pod = _pod(obj)
        assert _env(pod["containers"][0])["LEADOPS_PII_REGIONS"] == "GB"
        assert all(v["name"] != "key-salt" for v in pod["volumes"])


@pytest.mark.parametrize("regions", [["gb"], ["GBR"], ["G1"], [""]])
def test_a_region_that_is_not_a_two_letter_code_is_an_invalid_spec(regions: list[str]) -> None:
    with pytest.raises(ValueError, match="regions"):
        spec(pii={"regions": regions})
