"""Health as operators see it: drift, staleness, low AUC, and a Redis outage."""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.artifacts import Built, build_artifact, synthetic_lead
from tests.fixtures.metrics import metric_value
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import StartScorer

USUAL = {"details": "Hi, price demo for our team please", "source": "web"}


def test_drift_from_shifted_leads_raises_warning_high_drift(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path, drift_min_samples="50", drift_window="50")
    rng = random.Random(99)
    with server.client() as http:
        # Leads drawn like the training leads (another seed): no drift expected.
        for _ in range(50):
            usual = synthetic_lead(rng)[0].model_dump(mode="json", exclude={"received_at"})
            assert http.post("/v1/lead", json=usual).status_code == 200
        calm = http.get("/ops/model-status").json()
        # Leads unlike training: huge visit counts, a new source, no details at all.
        for _ in range(50):
            odd = {"source": "tiktok", "attributes": {"visits": 900.0, "plan": "enterprise"}}
            assert http.post("/v1/lead", json=odd).status_code == 200
        shifted = http.get("/ops/model-status").json()
        metrics = http.get("/metrics").text
    assert calm["drift_score"] is not None
    assert calm["drift_score"] < 3.0
    assert calm["health"] == "ok"
    assert shifted["drift_score"] > 3.0
    assert shifted["health"] == "warning_high_drift"
    assert metric_value(metrics, "lead_model_drift_score") == pytest.approx(
        shifted["drift_score"], abs=1e-3
    )


def test_stale_model_is_warning_stale_but_ready(start_scorer: StartScorer, model_dir: Path) -> None:
    old = build_artifact(model_dir / "stale.json", version=int(time.time()) - 60 * 3600)
    server = start_scorer(model=old.path)
    with server.client() as http:
        status = http.get("/ops/model-status").json()
        ready = http.get("/ready")
    assert status["health"] == "warning_stale"
    assert status["age_hours"] == pytest.approx(60, abs=0.1)
    assert ready.status_code == 200


@pytest.mark.parametrize(
    ("auc", "health", "ready"),
    [(0.60, "warning_low_auc", 200), (0.50, "critical_low_auc", 503)],
)
def test_low_auc_health_and_readiness(
    start_scorer: StartScorer, model_dir: Path, auc: float, health: str, ready: int
) -> None:
    built = build_artifact(model_dir / f"auc-{auc}.json", auc=auc)
    server = start_scorer(model=built.path)
    with server.client() as http:
        assert http.get("/ops/model-status").json()["health"] == health
        assert http.get("/ready").status_code == ready
        assert http.post("/v1/lead", json=USUAL).json()["health"] == health


def test_thresholds_come_from_settings(start_scorer: StartScorer, good_model: Built) -> None:
    server = start_scorer(model=good_model.path, auc_warning="0.9", auc_critical="0.85")
    with server.client() as http:
        assert http.get("/ops/model-status").json()["health"] == "critical_low_auc"


def _wait_for_store(http: httpx.Client) -> None:
    """Until the scorer has seen Redis back and settled its unconfirmed records."""
    deadline = time.monotonic() + 10
    while True:
        metrics = http.get("/metrics").text
        if "leadops_store_up 1.0" in metrics and "leadops_records_unconfirmed 0.0" in metrics:
            return
        assert time.monotonic() < deadline, "the scorer did not see Redis back"
        time.sleep(0.1)


@pytest.mark.redis
def test_redis_outage_in_best_effort_keeps_scoring_and_ready_and_counts_drops(
    start_scorer: StartScorer, good_model: Built, redis_server: RedisServer, redis_url: str
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        redis_timeout_seconds="0.3",
        durability="bestEffort",
    )
    with server.client() as http:
        stored = http.post("/v1/lead", json=USUAL).json()["lead_id"]
        assert (
            http.post("/v1/outcome", json={"lead_id": stored, "converted": True}).status_code == 200
        )
        redis_server.stop()
        try:
            scored = http.post("/v1/lead", json=USUAL)
            assert scored.status_code == 200
            assert scored.json()["stored"] is False  # queued only: bestEffort says so
            lost = scored.json()["lead_id"]
            outcome = http.post("/v1/outcome", json={"lead_id": lost, "converted": True})
            assert outcome.status_code == 503
            assert "unavailable" in outcome.json()["detail"]
            ready = http.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["store_ok"] is False
            metrics = http.get("/metrics").text
            # Not counted yet: a failed write may have landed; it is looked up once Redis is back.
            assert "leadops_records_unconfirmed 1.0" in metrics
            assert 'leadops_records_dropped_total{kind="lead"} 0.0' in metrics
            assert 'leadops_records_dropped_total{kind="outcome"} 1.0' in metrics
            assert "leadops_store_up 0.0" in metrics
        finally:
            redis_server.start()
        _wait_for_store(http)
        # Back up: the client reconnects by itself, and the lost lead is counted, exactly.
        metrics = http.get("/metrics").text
        assert 'leadops_records_dropped_total{kind="lead"} 1.0' in metrics
        assert "leadops_records_unconfirmed 0.0" in metrics
        again = http.post("/v1/lead", json=USUAL).json()["lead_id"]
        assert (
            http.post("/v1/outcome", json={"lead_id": again, "converted": False}).status_code == 200
        )
        assert http.get("/ready").json()["store_ok"] is True
    assert "Dropped 1 lead record(s): store unavailable" in server.log()


@pytest.mark.redis
def test_redis_outage_when_acknowledged_is_a_503_that_stores_nothing(
    start_scorer: StartScorer, good_model: Built, redis_server: RedisServer, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url, redis_timeout_seconds="0.3")
    with server.client() as http:
        first = http.post("/v1/lead", json=USUAL)
        assert (first.status_code, first.json()["stored"]) == (200, True)
        redis_server.stop()
        try:
            refused = http.post("/v1/lead", json=USUAL)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["stored"] is False
            assert "nothing was recorded" in refused.json()["detail"]
            assert http.get("/ready").json()["store_ok"] is False
            metrics = http.get("/metrics").text
            # Refused, not dropped: the caller was told and retries.
            assert 'leadops_records_dropped_total{kind="lead"} 0.0' in metrics
            assert "leadops_store_up 0.0" in metrics
        finally:
            redis_server.start()
        _wait_for_store(http)  # until then (a ping a second), leads are refused at once
        again = http.post("/v1/lead", json=USUAL)
        assert (again.status_code, again.json()["stored"]) == (200, True)
    keys = redis_server.client().keys("lead:*")
    assert sorted(keys) == sorted(f"lead:{a.json()['lead_id']}" for a in (first, again))
