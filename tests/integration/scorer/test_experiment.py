"""A running experiment over real HTTP: stable buckets across two scorer processes, the
variant and flags in each answer, live counts in GET /ops/experiment and /metrics; model
variants served and shadow-scored, their export on a real Redis read by
`leadops experiment evaluate`; a variant model refused by the gates stops the experiment."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from leadops.contract import bucketing
from tests.fixtures.artifacts import Built
from tests.fixtures.metrics import metric_value
from tests.fixtures.scorer import API_KEY, StartScorer

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
        export = http.get("/ops/export/experiment.csv")
    assert "experiment" not in answer
    # No experiment, no experiment leads: the header alone.
    assert export.text.splitlines() == [
        "lead_id,variant,model_version,scored_at,outcome_at,converted"
    ]
    assert (status["running"], status["variants"]) == (False, [])
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("variants", "words"),
    [
        ([{"name": "a", "weight": 60}, {"name": "b", "weight": 50}], "sum to 100"),
        (
            [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "modelVersion": "17"}],
            "modelVersion 17 has no file in LEADOPS_VARIANT_MODELS",
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


def _model_experiment(challenger: Built) -> str:
    return json.dumps(
        {
            "name": "model-v2",
            "unit": "lead",
            "variants": [
                {"name": "control", "weight": 50},
                {"name": "v2", "weight": 50, "modelVersion": str(challenger.version)},
            ],
        }
    )


@pytest.mark.redis
def test_model_variants_are_served_shadow_scored_exported_and_evaluated(
    start_scorer: StartScorer, good_model: Built, other_model: Built, redis_url: str
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        experiment=_model_experiment(other_model),
        variant_models=json.dumps({str(other_model.version): {"path": str(other_model.path)}}),
    )
    answers = []
    with server.client() as http:
        for i in range(80):
            lead = {"details": f"quote for {i} seats", "source": ["ads", "referral"][i % 2]}
            answer = http.post("/v1/lead", json=lead)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        # Every third lead converts; the rest have no outcome yet (and count as "no" once old).
        for answer in answers[::3]:
            body = {"lead_id": answer["lead_id"], "converted": True}
            assert http.post("/v1/outcome", json=body).status_code == 200
        # One "no" too, for a lead that already has its "yes": an outcome report, counted.
        no = {"lead_id": answers[0]["lead_id"], "converted": False}
        assert http.post("/v1/outcome", json=no).status_code == 200
        status = http.get("/ops/experiment").json()
        export = http.get("/ops/export/experiment.csv")
        refused = http.get("/ops/export/experiment.csv", headers={"x-api-key": "wrong"})
        metrics = http.get("/metrics").text
    assert refused.status_code == 401
    served = {a["experiment"]["variant"]: a["model_version"] for a in answers}
    # The bucketed variant's model answers: v2 leads get the challenger's version.
    assert served == {"control": good_model.version, "v2": other_model.version}
    assert status["running"] is True
    assert status["invalid"] is None
    assert [v["model_version"] for v in status["variants"]] == [None, other_model.version]
    yes = Counter(a["experiment"]["variant"] for a in answers[::3])
    for name in ("control", "v2"):
        labels = {"experiment": "model-v2", "variant": name}
        reports = yes[name] + (name == answers[0]["experiment"]["variant"])
        assert metric_value(metrics, "leadops_experiment_outcomes_total", labels) == reports
        assert metric_value(metrics, "leadops_experiment_conversions_total", labels) == yes[name]

    assert export.status_code == 200
    rows = {r["lead_id"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert set(rows) == {a["lead_id"] for a in answers}  # every lead, outcome or not
    converted = {a["lead_id"] for a in answers[::3]}
    for answer in answers:
        row = rows[answer["lead_id"]]
        variant = answer["experiment"]["variant"]
        assert row["variant"] == variant
        assert row["model_version"] == str(answer["model_version"])
        # Both models scored every lead; the answer is the lead's own variant's score.
        assert float(row[f"shadow_{variant}"]) == answer["score"]
        assert row["shadow_control"] != row["shadow_v2"]
        assert float(row["scored_at"]) > 0
        if answer is answers[0]:
            assert row["converted"] == "0"  # its latest outcome: the "no"
        elif answer["lead_id"] in converted:
            assert (row["converted"], float(row["outcome_at"]) >= float(row["scored_at"])) == (
                "1",
                True,
            )
        else:
            assert (row["converted"], row["outcome_at"]) == ("", "")
    assert "details" not in export.text.splitlines()[0]  # no lead contents in the export

    # The evaluation reads the export straight from the scorer, as the CronJob does.
    env = {**os.environ, "LEADOPS_API_KEY": API_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "experiment", "evaluate", "--input",
         f"{server.url}/ops/export/experiment.csv", "--window-days", "1",
         "--now", "2100-01-01T00:00:00Z", "--weights", "control=50,v2=50",
         "--control", "control", "--min-leads", "1", "--min-conversions", "1"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    tallies = {v["name"]: (v["leads"], v["conversions"]) for v in result["variants"]}
    expected = Counter(a["experiment"]["variant"] for a in answers)
    wins = Counter(a["experiment"]["variant"] for a in answers[3::3])  # the first said "no"
    assert tallies == {name: (expected[name], wins[name]) for name in ("control", "v2")}
    assert result["comparisons"][0]["auc_difference"] is not None  # paired on the shadow scores


def test_a_variant_model_refused_by_the_gates_stops_the_experiment(
    start_scorer: StartScorer, good_model: Built, other_model: Built, tmp_path: Path
) -> None:
    tampered = tmp_path / "v2.json"
    shutil.copy(other_model.path, tampered)
    server = start_scorer(
        model=good_model.path,
        experiment=_model_experiment(other_model),
        variant_models=json.dumps(
            {str(other_model.version): {"path": str(tampered), "digest": "sha256:" + "0" * 64}}
        ),
    )
    with server.client() as http:
        answer = http.post("/v1/lead", json=_lead("c1")).json()
        status = http.get("/ops/experiment").json()
        export = http.get("/ops/export/experiment.csv")
    # The champion answers every lead, unbucketed; the experiment says why it does not run.
    assert "experiment" not in answer
    assert answer["model_version"] == good_model.version
    assert status["running"] is False
    assert "DigestMismatch" in status["invalid"]
    assert export.text.splitlines() == [
        "lead_id,variant,model_version,scored_at,outcome_at,converted,shadow_control,shadow_v2"
    ]


def test_a_concluded_experiment_answers_every_lead_with_the_winners_flags(
    start_scorer: StartScorer, good_model: Built
) -> None:
    # What the operator renders once variant "memory" won: its flags, a winner, no models.
    concluded = json.dumps(EXPERIMENT | {"winner": "memory"})
    server = start_scorer(model=good_model.path, experiment=concluded)
    with server.client() as http:
        answers = [http.post("/v1/lead", json=_lead(f"chat-{i}")) for i in range(40)]
        status = http.get("/ops/experiment").json()
        export = http.get("/ops/export/experiment.csv")
        metrics = http.get("/metrics").text
    assert {a.status_code for a in answers} == {200}
    # 40 chats would land in both arms if bucketed: every one gets the winner's flags instead.
    assert {json.dumps(a.json()["experiment"], sort_keys=True) for a in answers} == {
        json.dumps({"name": "memory-on", "variant": "memory", "flags": FLAGS["memory"]},
                   sort_keys=True)
    }  # fmt: skip
    assert {a.json()["model_version"] for a in answers} == {good_model.version}
    assert (status["running"], status["winner"], status["invalid"]) == (False, "memory", None)
    assert [v["leads"] for v in status["variants"]] == [0, 0]  # nothing bucketed
    assert len(export.text.splitlines()) == 1  # no new experiment leads: the header alone
    assert "leadops_experiment_leads_total{" not in metrics


def test_a_winner_that_is_not_a_variant_stops_the_scorer_at_start(
    start_scorer: StartScorer, good_model: Built
) -> None:
    with pytest.raises(RuntimeError, match="scorer exited") as exited:
        start_scorer(model=good_model.path, experiment=json.dumps(EXPERIMENT | {"winner": "x"}))
    assert "winner 'x' is not a variant" in str(exited.value)
