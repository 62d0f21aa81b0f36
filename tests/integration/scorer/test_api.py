"""The scorer's API over real HTTP (uvicorn subprocess) with a real redis-server behind it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from leadops.contract.artifact import load_artifact
from tests.fixtures.artifacts import Built
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import StartScorer, chat_key

pytestmark = pytest.mark.redis

SEED_STATUS_FIELDS = {
    "loaded",
    "version",
    "version_date",
    "auc",
    "n_train",
    "load_time",
    "age_hours",
    "drift_score",
    "health",
}
PHONE = "+44 20 7946 0958"
EMAIL = "jane.doe@example.com"


def lead(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Jane Doe",
        "phone": PHONE,
        "email": EMAIL,
        "details": f"Need a quote for 20 seats, call me on {PHONE} or mail {EMAIL}",
        "source": "referral",
        "chat_id": "chat1",
        "attributes": {"visits": 7.0, "plan": "pro"},
    }
    return body | extra


def test_score_store_outcome_export_round_trip(
    start_scorer: StartScorer, good_model: Built, redis_server: RedisServer, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    r = redis_server.client()
    with server.client() as http:
        scored = http.post("/v1/lead", json=lead())
        assert scored.status_code == 200, scored.text
        body = scored.json()
        assert set(body) == {"lead_id", "score", "model_version", "health"}
        assert 0.0 <= body["score"] <= 1.0
        assert body["model_version"] == good_model.version
        lead_id = body["lead_id"]

        outcome = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
        assert outcome.status_code == 200, outcome.text

        record = r.hgetall(f"lead:{lead_id}")
        assert record["converted"] == "1"
        assert record["tenant"] == "default"  # open ingest: the one tenant
        assert float(record["score"]) == pytest.approx(body["score"])
        assert record["model_version"] == str(good_model.version)
        stored = json.dumps(record)
        # No raw contact data anywhere in the record: only presence flags and derived kinds.
        for secret in (PHONE, EMAIL, "Jane Doe", "7946"):
            assert secret not in stored
        memory = [str(m) for m in r.lrange(chat_key("default", "chat1"), 0, -1)]
        assert len(memory) == 1
        assert "Need a quote" in memory[0]
        assert PHONE not in memory[0]
        assert EMAIL not in memory[0]

        added = http.post(f"/v1/lead/{lead_id}/messages", json={"text": f"my email is {EMAIL}"})
        assert added.status_code == 200, added.text
        assert added.json()["redacted"] is True
        memory = [str(m) for m in r.lrange(chat_key("default", "chat1"), 0, -1)]
        assert len(memory) == 2
        assert EMAIL not in memory[1]
        assert memory[1].startswith("my email is")

        # A second lead without outcome must not be exported.
        other = http.post("/v1/lead", json=lead(chat_id="chat2", attributes={"visits": 1.0}))
        assert other.status_code == 200
        third = http.post("/v1/lead", json=lead(chat_id="chat3", source="ads"))
        http.post("/v1/outcome", json={"lead_id": third.json()["lead_id"], "converted": False})

        export = http.get("/ops/export/outcomes.csv")
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    header, data = rows[0], rows[1:]
    assert header[0] == "lead_id"
    assert header[-1] == "converted"
    assert {row[0] for row in data} == {lead_id, third.json()["lead_id"]}
    assert {"received_at", "tenant", "source", "details", "visits", "plan"} <= set(header)
    assert not {"score", "model_version", "chat_id"} & set(header)
    assert sorted(row[-1] for row in data) == ["0", "1"]
    # The guide's `awk -F',' '{print $NF}'`: the last comma-field of each line is the label.
    assert sorted(line.split(",")[-1] for line in export.text.splitlines()[1:]) == ["0", "1"]
    assert PHONE not in export.text
    assert EMAIL not in export.text
    sources = {row[header.index("source")] for row in data}
    assert sources == {"referral", "ads"}


def test_unknown_or_malformed_lead_ids(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    with server.client() as http:
        unknown = http.post("/v1/outcome", json={"lead_id": "0" * 32, "converted": True})
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == "unknown lead_id"
        bad = http.post("/v1/outcome", json={"lead_id": "lead:*", "converted": True})
        assert bad.status_code == 422
        no_lead = http.post(f"/v1/lead/{'a' * 32}/messages", json={"text": "hello"})
        assert no_lead.status_code == 404


def test_bad_lead_bodies_are_422_naming_the_field(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path)
    with server.client() as http:
        too_long = http.post("/v1/lead", json=lead(name="x" * 201))
        assert too_long.status_code == 422
        assert too_long.json()["detail"][0]["loc"][-1] == "name"
        unknown_field = http.post("/v1/lead", json=lead(ssn="123"))
        assert unknown_field.status_code == 422
        not_json = http.post("/v1/lead", content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 422


def test_model_status_has_exactly_the_seed_fields(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path)
    art = load_artifact(good_model.path)
    with server.client() as http:
        status = http.get("/ops/model-status").json()
    assert set(status) == SEED_STATUS_FIELDS
    assert status["loaded"] is True
    assert status["version"] == art.version
    assert status["auc"] == pytest.approx(art.metrics.auc)
    assert status["n_train"] == art.metrics.n_train
    assert status["health"] == "ok"
    assert 0.9 < status["age_hours"] < 1.5  # the fixture's model was trained an hour ago
    assert status["drift_score"] is None  # no leads scored yet
    assert status["version_date"].endswith("Z")


def test_metrics_carry_the_seed_names_and_no_lead_data(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path, drift_min_samples="5")
    with server.client() as http:
        for i in range(6):
            assert http.post("/v1/lead", json=lead(chat_id=f"c{i}")).status_code == 200
        status = http.get("/ops/model-status").json()
        text = http.get("/metrics").text
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line.split(" ")[0]
    }
    assert values["lead_model_auc"] == pytest.approx(status["auc"])
    assert values["lead_model_version"] == status["version"]
    assert values["lead_model_n_train"] == status["n_train"]
    assert values["lead_model_drift_score"] == pytest.approx(status["drift_score"], abs=1e-3)
    assert values["lead_model_last_reload_ts"] == pytest.approx(status["load_time"])
    assert 'leadops_http_requests_total{method="POST",route="/v1/lead",status="200"} 6.0' in text
    assert "leadops_lead_score_count 6.0" in text
    assert "leadops_scoring_duration_seconds_count 6.0" in text
    assert 'leadops_model_reloads_total{reason="",result="loaded"} 1.0' in text
    for secret in (PHONE, EMAIL, "chat1", "Jane"):
        assert secret not in text


def test_model_card(start_scorer: StartScorer, good_model: Built) -> None:
    server = start_scorer(model=good_model.path)
    art = load_artifact(good_model.path)
    with server.client() as http:
        card = http.get("/ops/model-card").json()
    assert card["version"] == art.version
    assert card["digest"] == art.digest
    assert card["digest_verified"] is True
    assert card["signature"]["status"] == "unsigned"
    assert card["training_window"] == art.card.training_window
    assert card["card"]["features"]
    assert card["card"]["limitations"]
    assert card["card"]["fairness"]["notes"]
    assert card["staleness"] == {
        "age_hours": pytest.approx(1.0, abs=0.5),
        "stale_after_hours": 48.0,
        "stale": False,
    }


def test_no_model_loaded(start_scorer: StartScorer) -> None:
    server = start_scorer(model=None)
    with server.client() as http:
        assert http.get("/health").status_code == 200
        ready = http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["health"] == "no_model"
        scored = http.post("/v1/lead", json=lead())
        assert scored.status_code == 503
        assert scored.json()["detail"] == "no model loaded"
        status = http.get("/ops/model-status").json()
    assert set(status) == SEED_STATUS_FIELDS
    assert status["loaded"] is False
    assert status["health"] == "no_model"
    assert "No Redis URL" in server.log()  # the in-process store warns at start
