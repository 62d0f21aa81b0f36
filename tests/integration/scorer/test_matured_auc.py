"""The matured-AUC guard in a real scorer over HTTP with a real redis-server: the previous
version scores every lead in shadow (its score stored beside the serving one, no PII), and once
the leads matured (a window of seconds: LEADOPS_MATURED_AUC_WINDOW_SECONDS) /ops/matured-auc
says Drop for a worse serving model and NoDrop for one equal to its predecessor."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from leadops.contract import artifact
from leadops.scorer import store
from tests.fixtures.artifacts import Built, build_artifact, synthetic_lead
from tests.fixtures.scorer import ScorerServer, StartScorer
from tests.integration.scorer.test_retention import wait_for

pytestmark = pytest.mark.redis

WINDOW_SECONDS = 2
MIN_LEADS = 300
MIN_CONVERSIONS = 30


def guard_env(serving: Built, previous: Built, *, since: float) -> dict[str, str]:
    """What the operator sets on the scorer after promoting `serving` over `previous`."""
    digest = artifact.load_artifact(previous.path).digest
    return {
        "previous_model": json.dumps({"path": str(previous.path), "digest": digest}),
        "matured_auc": json.dumps(
            {
                "servingVersion": serving.version,
                "previousVersion": previous.version,
                "since": since,
                "minLeads": MIN_LEADS,
                "minConversions": MIN_CONVERSIONS,
                "maxDrop": "0.02",
                "alpha": "0.05",
                "maxDays": 30,
                "windowDays": 14,
            }
        ),
        "matured_auc_window_seconds": str(WINDOW_SECONDS),
        "matured_auc_refresh_seconds": "0",
    }


def post_leads(http: httpx.Client, n: int, *, seed: int) -> list[str]:
    """`n` synthetic leads scored and their outcomes recorded at once (a conversion within
    the window); their lead ids."""
    rng = random.Random(seed)
    ids = []
    for _ in range(n):
        found, converted = synthetic_lead(rng)
        body = found.model_dump(mode="json", exclude={"received_at"})
        scored = http.post("/v1/lead", json=body)
        assert scored.status_code == 200, scored.text
        lead_id = scored.json()["lead_id"]
        answer = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": bool(converted)})
        assert answer.status_code == 200, answer.text
        ids.append(lead_id)
    return ids


def verdict(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/ops/matured-auc")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    where = tmp_path_factory.mktemp("matured")
    now = int(time.time())
    return {
        # The predecessor: 20 trees of depth 4.
        "strong": build_artifact(where / "strong.json", version=now - 3000, auc=0.8),
        # The same model again under a later version: equal to its predecessor on every lead.
        "equal": build_artifact(where / "equal.json", version=now - 2000, auc=0.8),
        # One stump: far worse on the same leads.
        "weak": build_artifact(
            where / "weak.json", version=now - 1000, auc=0.8, trees=1, depth=1, seed=5
        ),
    }


def start(start_scorer: StartScorer, redis_url: str, serving: Built, previous: Built) -> Any:
    server: ScorerServer = start_scorer(
        model=serving.path,
        redis_url=redis_url,
        durability="acknowledged",
        **guard_env(serving, previous, since=time.time() - 1),
    )
    return server


def test_a_worse_serving_model_is_a_drop_once_the_leads_matured(
    start_scorer: StartScorer, redis_url: str, models: dict[str, Built], tmp_path: Path
) -> None:
    weak, strong = models["weak"], models["strong"]
    server = start(start_scorer, redis_url, weak, strong)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with server.client() as http:
        ids = post_leads(http, MIN_LEADS, seed=1)
        young = verdict(http)
        # Too young to count: collecting, still shadowing.
        assert young["state"] == "Collecting"
        assert young["shadowing"] is True
        assert young["serving_version"] == weak.version
        assert young["previous_version"] == strong.version
        # The previous version's score sits beside the serving one; the record holds no PII.
        record = r.hgetall(store.lead_key(ids[0]))
        assert record["model_version"] == str(weak.version)
        assert record["previous_version"] == str(strong.version)
        assert 0.0 <= float(record["previous_score"]) <= 1.0
        assert float(record["previous_score"]) != float(record["score"])
        assert "Jane" not in json.dumps(record)
        assert r.zscore(store.GUARD_KEY, ids[0]) is not None
        found = wait_for(
            lambda: (v := verdict(http))["state"] != "Collecting" and v,
            what="a final verdict once the leads matured",
            timeout=30,
        )
        metrics = http.get("/metrics").text
        later = post_leads(http, 1, seed=2)
    assert found["state"] == "Drop", found
    assert found["leads"] == MIN_LEADS
    assert found["conversions"] >= MIN_CONVERSIONS
    assert found["serving_auc"] < found["previous_auc"]
    assert found["ci_high"] < -0.02
    assert found["ci_low"] <= found["difference"] <= found["ci_high"]
    assert found["shadowing"] is False  # the verdict is reached: no more shadow scores
    assert "previous_score" not in r.hgetall(store.lead_key(later[0]))
    assert f'lead_model_matured_auc{{version="{weak.version}"}}' in metrics
    assert f'lead_model_matured_auc{{version="{strong.version}"}}' in metrics


def test_a_model_equal_to_its_predecessor_is_no_drop(
    start_scorer: StartScorer, redis_url: str, models: dict[str, Built]
) -> None:
    server = start(start_scorer, redis_url, models["equal"], models["strong"])
    with server.client() as http:
        post_leads(http, MIN_LEADS, seed=3)
        found = wait_for(
            lambda: (v := verdict(http))["state"] != "Collecting" and v,
            what="a final verdict once the leads matured",
            timeout=30,
        )
    assert found["state"] == "NoDrop", found
    assert found["difference"] == 0.0
    assert found["serving_auc"] == found["previous_auc"]


def test_without_a_guard_it_is_off(
    start_scorer: StartScorer, redis_url: str, models: dict[str, Built]
) -> None:
    server = start_scorer(model=models["strong"].path, redis_url=redis_url)
    with server.client() as http:
        assert verdict(http) == {
            "state": "Off",
            "serving_version": None,
            "previous_version": None,
            "shadowing": False,
            "leads": 0,
            "conversions": 0,
            "min_leads": None,
            "min_conversions": None,
            "serving_auc": None,
            "previous_auc": None,
            "difference": None,
            "ci_low": None,
            "ci_high": None,
            "alpha": None,
            "max_drop": None,
            "error": "",
        }


def test_a_previous_model_with_another_digest_turns_the_guard_off(
    start_scorer: StartScorer, redis_url: str, models: dict[str, Built]
) -> None:
    env = guard_env(models["weak"], models["strong"], since=time.time())
    env["previous_model"] = json.dumps(
        {"path": str(models["strong"].path), "digest": "sha256:" + "0" * 64}
    )
    server = start_scorer(model=models["weak"].path, redis_url=redis_url, **env)
    with server.client() as http:
        found = verdict(http)
        assert http.post("/v1/lead", json={"details": "a quote please"}).status_code == 200
    assert found["state"] == "Off"
    assert "previous model refused" in found["error"]
