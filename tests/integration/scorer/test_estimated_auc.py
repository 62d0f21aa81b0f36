"""The estimated AUC (CBPE) over HTTP: a real scorer with a real Redis, leads posted one by one."""

from __future__ import annotations

import math
import random

import httpx
import pytest

from leadops.contract import artifact
from leadops.operator import ask_scorers
from leadops.stats import cbpe
from tests.fixtures.artifacts import Built, build_artifact, synthetic_lead
from tests.fixtures.metrics import metric_value
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = pytest.mark.redis

MIN_LEADS = 40
WINDOW = 60


@pytest.fixture(scope="module")
def calibrated_model(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_artifact(tmp_path_factory.mktemp("cbpe") / "calibrated.json", calibrated=True)


def _post_leads(http: httpx.Client, rng: random.Random, n: int) -> list[float]:
    """Post `n` synthetic leads; their scores, in order."""
    scores = []
    for _ in range(n):
        lead = synthetic_lead(rng)[0].model_dump(mode="json", exclude={"received_at"})
        answer = http.post("/v1/lead", json=lead)
        assert answer.status_code == 200
        scores.append(float(answer.json()["score"]))
    return scores


def test_estimate_appears_after_min_leads_and_matches_cbpe_on_the_same_scores(
    start_scorer: StartScorer, calibrated_model: Built, redis_url: str
) -> None:
    calibration = artifact.load_artifact(calibrated_model.path).calibration
    assert calibration is not None
    server = start_scorer(
        model=calibrated_model.path,
        redis_url=redis_url,
        estimate_min_leads=str(MIN_LEADS),
        estimate_window=str(WINDOW),
    )
    rng = random.Random(7)
    with server.client() as http:
        early_scores = _post_leads(http, rng, MIN_LEADS - 1)
        early = http.get("/ops/model-status", params={"estimate": "true"}).json()
        plain = http.get("/ops/model-status").json()
        early_metrics = http.get("/metrics").text
        scores = early_scores + _post_leads(http, rng, 1)
        first = http.get("/ops/model-status", params={"estimate": "true"}).json()
        # Past the window: only the latest WINDOW scores count.
        scores += _post_leads(http, rng, WINDOW)
        later = http.get("/ops/model-status", params={"estimate": "true"}).json()
        metrics = http.get("/metrics").text
    # What the operator reads from each Pod (its own client, over the same HTTP).
    report = ask_scorers.ask(server.url, {"x-api-key": API_KEY})
    # The operations guide's fields exactly, unless the estimate is asked for.
    assert "estimated_auc" not in plain
    assert (early["estimated_auc"], early["estimated_auc_leads"]) == (None, 0)
    assert math.isnan(metric_value(early_metrics, "lead_model_estimated_auc"))
    assert metric_value(early_metrics, "lead_model_estimated_auc_leads") == 0

    def expected(window: list[float]) -> float:
        found = cbpe.estimate(calibration.scores, calibration.probabilities, window)
        assert found is not None
        return found

    assert first["estimated_auc_leads"] == MIN_LEADS
    assert first["estimated_auc"] == pytest.approx(expected(scores[:MIN_LEADS]), abs=1e-4)
    assert later["estimated_auc_leads"] == WINDOW
    assert later["estimated_auc"] == pytest.approx(expected(scores[-WINDOW:]), abs=1e-4)
    assert later["estimated_auc"] != pytest.approx(first["estimated_auc"], abs=1e-6)
    assert metric_value(metrics, "lead_model_estimated_auc") == pytest.approx(
        later["estimated_auc"], abs=1e-4
    )
    assert metric_value(metrics, "lead_model_estimated_auc_leads") == WINDOW
    assert report is not None
    assert (report.version, report.estimated_auc_leads) == (calibrated_model.version, WINDOW)
    assert report.estimated_auc == str(later["estimated_auc"])


def test_a_model_without_a_calibration_map_reports_no_estimate(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url, estimate_min_leads="5")
    with server.client() as http:
        _post_leads(http, random.Random(3), 10)
        status = http.get("/ops/model-status", params={"estimate": "true"}).json()
    assert (status["estimated_auc"], status["estimated_auc_leads"]) == (None, 0)
