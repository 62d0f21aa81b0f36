"""A running experiment over real HTTP: stable buckets across two scorer processes, the
variant and flags in each answer, live counts in GET /ops/experiment and /metrics."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from leadops.contract import bucketing
from tests.fixtures.artifacts import Built
from tests.fixtures.metrics import metric_value
from tests.fixtures.scorer import StartScorer

EXPERIMENT = {
    "name": "memory-on",
    "unit": "chat",
    "variants": [
        {"name": "control", "weight": 50},
        {"name": "memory", "weight": 50, "flags": {"memory": "on", "followUpDelayMinutes": "5"}},
    ],
}
FLAGS = {"control": {}, "memory": {"memory": "on", "followUpDelayMinutes": "5"}}


def _lead(chat: str) -> dict[str, object]:
    return {"details": "quote for 20 seats", "source": "referral", "chat_id": chat}


def test_buckets_are_stable_across_processes_and_counted(
    start_scorer: StartScorer, good_model: Built
) -> None:
    config = json.dumps(EXPERIMENT)
    first = start_scorer(model=good_model.path, experiment=config)
    second = start_scorer(model=good_model.path, experiment=config)
    chats = [f"chat-{i}" for i in range(60)]
    seen: dict[str, list[str]] = {}
    for server in (first, second):
        with server.client() as http:
            for chat in chats:
                answer = http.post("/v1/lead", json=_lead(chat))
                assert answer.status_code == 200, answer.text
                exp = answer.json()["experiment"]
                assert exp["name"] == "memory-on"
                assert exp["flags"] == FLAGS[exp["variant"]]
                seen.setdefault(chat, []).append(exp["variant"])
    weights = [("control", 50), ("memory", 50)]
    for chat, variants in seen.items():
        # Same variant on both replicas, and the one the shared hash names (open-ingest tenant).
        assert variants == [bucketing.variant("memory-on", f"default\0{chat}", weights)] * 2
    expected = Counter(v[0] for v in seen.values())
    assert set(expected) == {"control", "memory"}  # 60 chats: both arms get some
    with first.client() as http:
        status = http.get("/ops/experiment").json()
        metrics = http.get("/metrics").text
    assert status["running"] is True
    assert {v["name"]: v["leads"] for v in status["variants"]} == dict(expected)
    for name, count in expected.items():
        labels = {"experiment": "memory-on", "variant": name}
        assert metric_value(metrics, "leadops_experiment_leads_total", labels) == count


def test_without_an_experiment_nothing_changes(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path)
    with server.client() as http:
        answer = http.post("/v1/lead", json=_lead("c1")).json()
        status = http.get("/ops/experiment").json()
        refused = http.get("/ops/experiment", headers={"x-api-key": "wrong"})
    assert "experiment" not in answer
    assert (status["running"], status["variants"]) == (False, [])
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("variants", "words"),
    [
        ([{"name": "a", "weight": 60}, {"name": "b", "weight": 50}], "sum to 100"),
        (
            [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "modelVersion": "17"}],
            "flag variants only",
        ),
    ],
)
def test_a_malformed_experiment_stops_the_scorer_at_start(
    start_scorer: StartScorer, good_model: Built, variants: list[dict[str, object]], words: str
) -> None:
    config = json.dumps({"name": "bad", "variants": variants})
    with pytest.raises(RuntimeError, match="scorer exited") as exited:
        start_scorer(model=good_model.path, experiment=config)
    assert words in str(exited.value)
