"""spec.redis.mode reaches the scorer (LEADOPS_REDIS_MODE) and the PII backfill (--redis-mode);
standalone, the default, adds nothing; follow-ups refuse a cluster (not supported yet)."""

from __future__ import annotations

from typing import Any

from leadops.operator import builders

from .test_followups_builders import FULL
from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
REDIS = {"urlSecretRef": {"name": "redis", "key": "url"}}


def _containers(lm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    scorer = builders.scorer_deployment(OWNER, lm, builders.Rollout())
    backfill = builders.backfill_cronjob(OWNER, lm)
    (s,) = scorer["spec"]["template"]["spec"]["containers"]
    (b,) = backfill["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return s, b


def test_cluster_mode_reaches_the_scorer_and_the_backfill() -> None:
    scorer, backfill = _containers(spec(redis=REDIS | {"mode": "cluster"}))
    assert {"name": "LEADOPS_REDIS_MODE", "value": "cluster"} in scorer["env"]
    assert backfill["args"][-2:] == ["--redis-mode", "cluster"]


def test_standalone_is_the_default_and_adds_nothing() -> None:
    for lm in (spec(), spec(redis=REDIS | {"mode": "standalone"})):
        scorer, backfill = _containers(lm)
        assert all(e["name"] != "LEADOPS_REDIS_MODE" for e in scorer["env"])
        assert "--redis-mode" not in backfill["args"]


def test_follow_ups_on_a_cluster_are_an_invalid_spec() -> None:
    assert FULL.semantic_errors() == []
    clustered = FULL.model_copy(update={"redis": spec(redis=REDIS | {"mode": "cluster"}).redis})
    assert clustered.semantic_errors() == [
        "followUps does not run on redis.mode cluster yet: use standalone"
    ]
