"""In-process supplement (TestClient, dependency overrides): the paths real HTTP cannot force."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
from fastapi.testclient import TestClient

from leadops.contract import featurize
from leadops.scorer.app import create_app
from leadops.scorer.deps import get_model_or_cold_start
from leadops.scorer.model import ServingModel
from leadops.scorer.settings import Settings
from leadops.scorer.state import SCORING_MIN_FAILURES, ScorerState
from tests.fixtures.artifacts import Built


class BrokenModel(ServingModel):
    """A model whose scoring raises, as a bug in featurization would."""

    def score_row(
        self, row: dict[str, str], cells: featurize.RowCells | None = None
    ) -> tuple[float, npt.NDArray[np.float32]]:
        raise RuntimeError("boom")


def _broken_copy(state: ScorerState) -> BrokenModel:
    assert state.model is not None
    return BrokenModel(
        **{f.name: getattr(state.model, f.name) for f in dataclasses.fields(state.model)}
    )


def test_one_failing_lead_is_500_but_leaves_a_healthy_scorer_ready(good_model: Built) -> None:
    app = create_app(Settings(model_path=good_model.path, dev_open_ops=True))
    with TestClient(app) as client:
        for _ in range(SCORING_MIN_FAILURES):
            assert client.post("/v1/lead", json={"details": "fine"}).status_code == 200
        app.dependency_overrides[get_model_or_cold_start] = lambda: _broken_copy(app.state.scorer)
        failed = client.post("/v1/lead", json={"details": "poisoned"})
        assert failed.status_code == 500
        assert failed.json() == {"detail": "scoring failed"}
        del app.dependency_overrides[get_model_or_cold_start]
        assert client.get("/ops/model-status").json()["health"] == "ok"
        assert client.get("/ready").status_code == 200


def test_a_model_that_fails_most_leads_is_error_until_a_good_reload(good_model: Built) -> None:
    app = create_app(Settings(model_path=good_model.path, dev_open_ops=True))
    with TestClient(app) as client:
        app.dependency_overrides[get_model_or_cold_start] = lambda: _broken_copy(app.state.scorer)
        for _ in range(SCORING_MIN_FAILURES - 1):
            assert client.post("/v1/lead", json={"details": "hello"}).status_code == 500
        assert client.get("/ops/model-status").json()["health"] == "ok"
        assert client.post("/v1/lead", json={"details": "hello"}).status_code == 500
        assert client.get("/ops/model-status").json()["health"] == "error"
        assert client.get("/ready").status_code == 503
        del app.dependency_overrides[get_model_or_cold_start]
        assert client.post("/ops/reload-model").status_code == 200
        assert client.get("/ops/model-status").json()["health"] == "ok"
        assert client.post("/v1/lead", json={"details": "hello"}).status_code == 200


def test_two_apps_in_one_process_keep_separate_metrics(good_model: Built) -> None:
    first = create_app(Settings(model_path=good_model.path))
    second = create_app(Settings(model_path=good_model.path))
    with TestClient(first) as a, TestClient(second) as b:
        a.post("/v1/lead", json={"details": "one"})
        a.post("/v1/lead", json={"details": "two"})
        b.post("/v1/lead", json={"details": "three"})
        assert "leadops_lead_score_count 2.0" in a.get("/metrics").text
        assert "leadops_lead_score_count 1.0" in b.get("/metrics").text


def test_a_scoring_failure_on_the_hot_path_is_the_same_500(good_model: Built) -> None:
    # No dependency override: the request takes the ASGI fast path (fastpath.LeadFastPath).
    app = create_app(Settings(model_path=good_model.path, dev_open_ops=True))
    with TestClient(app) as client:
        state: ScorerState = app.state.scorer
        state.model = _broken_copy(state)
        failed = client.post("/v1/lead", json={"details": "poisoned"})
        assert failed.status_code == 500
        assert failed.json() == {"detail": "scoring failed"}
        assert list(state.scoring_failed) == [True]
        metrics = client.get("/metrics").text
    assert 'leadops_http_requests_total{method="POST",route="/v1/lead",status="500"} 1.0' in metrics


def test_an_experiments_failures_and_answer_times_are_counted_per_variant(
    good_model: Built,
) -> None:
    from leadops.scorer.experiment import Experiment  # noqa: PLC0415
    from tests.fixtures.metrics import metric_value  # noqa: PLC0415

    experiment = Experiment.model_validate(
        {"name": "trial", "variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]}
    )
    app = create_app(Settings(model_path=good_model.path, dev_open_ops=True, experiment=experiment))
    with TestClient(app) as client:
        served = [client.post("/v1/lead", json={"details": "fine"}) for _ in range(20)]
        app.dependency_overrides[get_model_or_cold_start] = lambda: _broken_copy(app.state.scorer)
        failed = [client.post("/v1/lead", json={"details": "poisoned"}) for _ in range(6)]
        del app.dependency_overrides[get_model_or_cold_start]
        metrics = client.get("/metrics").text
    assert {r.status_code for r in served} == {200}
    assert {r.status_code for r in failed} == {500}
    answered = sum(
        metric_value(
            metrics,
            "leadops_experiment_answer_duration_seconds_count",
            {"experiment": "trial", "variant": v},
        )
        for v in ("a", "b")
    )
    failures = sum(
        metric_value(
            metrics,
            "leadops_experiment_scoring_failures_total",
            {"experiment": "trial", "variant": v},
        )
        for v in ("a", "b")
    )
    assert (answered, failures) == (20, 6)
