"""Cold start over real HTTP with real Redis: no model yet, leads stored unscored, outcomes
exported, the first model trained from them, then scored (issue #15 item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadops.contract.artifact import load_artifact
from leadops.jobs import synth
from tests.fixtures.artifacts import Built
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = pytest.mark.redis


def test_without_cold_start_a_scorer_with_no_model_refuses_leads(start_scorer: StartScorer) -> None:
    server = start_scorer(model=None)
    with server.client() as http:
        assert http.get("/ready").status_code == 503
        assert http.post("/v1/lead", json={"details": "hi"}).status_code == 503


def test_cold_start_stores_leads_unscored_until_the_first_model_trained_from_them(
    start_scorer: StartScorer, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    server = start_scorer(redis_url=redis_url, cold_start="true")
    r = redis_server.client()
    drawn = synth.generate(240, seed=3)
    with server.client() as http:
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["health"] == "no_model"
        assert ready.json()["ready"] is True
        for d in drawn:
            body = d.lead.model_dump(mode="json", exclude_none=True)
            body["tenant"] = "default"  # open ingest serves tenant default only
            answer = http.post("/v1/lead", json=body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["score"] is None
            assert got["model_version"] is None
            assert got["health"] == "no_model"
            assert got["stored"] is True
            record = r.hgetall(f"lead:{got['lead_id']}")
            assert record, "the lead is stored"
            assert record.get(b"score", b"") == b""  # unscored (empty fields are not written)
            outcome = http.post(
                "/v1/outcome", json={"lead_id": got["lead_id"], "converted": bool(d.converted)}
            )
            assert outcome.status_code == 200, outcome.text
        metrics = http.get("/metrics").text
        assert "leadops_leads_unscored_total 240.0" in metrics
        # No model, no AUC: NaN, which `lead_model_auc < 0.55` never matches (a 0 would page).
        assert "\nlead_model_auc NaN\n" in metrics
    # The nightly training's own command, reading the export with the API key.
    trained = tmp_path / "trained.json"
    env = {**os.environ, "LEADOPS_API_KEY": API_KEY}
    run = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "train", "--input",
         f"{server.url}/ops/export/outcomes.csv", "--output", str(trained)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    artifact = load_artifact(trained)
    assert artifact.metrics.n_train + artifact.metrics.n_test == len(drawn)
    # As the operator rolls it out: new scorer Pods with the model, on the same Redis.
    server.stop()
    server = start_scorer(model=trained, redis_url=redis_url, cold_start="true")
    with server.client() as http:
        body = drawn[0].lead.model_dump(mode="json", exclude_none=True) | {"tenant": "default"}
        scored = http.post("/v1/lead", json=body).json()
        assert scored["model_version"] == artifact.version
        assert 0.0 <= scored["score"] <= 1.0


def test_cold_start_ends_once_a_model_is_loaded(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path, cold_start="true")
    with server.client() as http:
        scored = http.post("/v1/lead", json={"details": "hello"}).json()
    assert scored["model_version"] == good_model.version
    assert scored["score"] is not None
    with server.client() as http:
        metrics = http.get("/metrics").text
    assert f"\nlead_model_auc {good_model.auc}\n" in metrics


@pytest.mark.parametrize(("key", "words"), [(None, "is not set"), ("wrong-key", "was refused")])
def test_train_from_a_scorer_url_without_the_right_key_says_which_variable(
    start_scorer: StartScorer, tmp_path: Path, key: str | None, words: str
) -> None:
    server = start_scorer(cold_start="true")
    env = {k: v for k, v in os.environ.items() if k != "LEADOPS_API_KEY"}
    if key is not None:
        env["LEADOPS_API_KEY"] = key
    run = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "train", "--input",
         f"{server.url}/ops/export/outcomes.csv", "--output", str(tmp_path / "m.json")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "HTTP 401" in run.stderr
    assert f"$LEADOPS_API_KEY {words}" in run.stderr
