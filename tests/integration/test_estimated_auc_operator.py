"""The estimated AUC on the real control plane: a real scorer's estimate below minAuc makes the
LeadModel Degraded=True/EstimatedAucLow with one Warning Event, and nothing is rolled back.

kwok Pods run nothing, so the scorer runs here and LEADOPS_SCORER_URL points the operator at it
(as in test_operator.py's scorer-polling test)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from leadops.operator import early_auc, kube
from tests.fixtures.artifacts import build_artifact, synthetic_lead
from tests.fixtures.scorer import ScorerServer, StartScorer
from tests.integration.test_operator import (
    api,  # noqa: F401 (fixture)
    condition,
    crd_installed,  # noqa: F401 (fixture)
    create_scorer_api_secret,
    deployment_version,
    events,
    get_lm,
    leadmodel,
    operator,
    publish_version,
    serving,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

# The artifacts claim a test AUC that passes minAuc; what their calibration expects on the
# synthetic leads (about 0.80) is below it.
CLAIMED_AUC = 0.95
MIN_AUC = "0.90"


def post_leads(scorer: ScorerServer, rng: random.Random, n: int) -> float:
    """Post `n` synthetic leads to the scorer; its estimated AUC afterwards."""
    with scorer.client() as http:
        for _ in range(n):
            lead = synthetic_lead(rng)[0].model_dump(mode="json", exclude={"received_at"})
            assert http.post("/v1/lead", json=lead).status_code == 200
        found = http.get("/ops/model-status", params={"estimate": "true"}).json()
    return float(found["estimated_auc"])


def estimate_leads(client: kube.Kube, ns: str) -> int:
    return int((get_lm(client, ns).get("status") or {}).get("estimatedAucLeads") or 0)


def test_estimated_auc_below_min_auc_degrades_and_warns_without_rolling_back(
    api: kube.Kube,  # noqa: F811 (fixture)
    k8s_namespace: str,
    start_scorer: StartScorer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = k8s_namespace
    now = int(time.time())
    v1 = build_artifact(
        tmp_path / "v1.json", version=now - 2400, auc=CLAIMED_AUC, calibrated=True, seed=1
    )
    v2 = build_artifact(tmp_path / "v2.json", version=now - 1200, auc=CLAIMED_AUC, calibrated=True)
    scorer = start_scorer(model=v2.path)
    scorer_api = create_scorer_api_secret(api, ns)
    monkeypatch.setenv("LEADOPS_SCORER_URL", scorer.url)
    with operator(ns):
        api.create(
            leadmodel(
                ns,
                gates={"minAuc": MIN_AUC},
                scorer={"replicas": 1, "apiKeySecretRef": scorer_api},
            )
        )
        wait_for(lambda: api.get("Deployment", ns, "acme-scorer"), what="scorer Deployment")
        publish_version(api, ns, v1.path.read_bytes())
        wait_for(lambda: serving(api, ns, v1.version), what="v1 serving")
        publish_version(api, ns, v2.path.read_bytes())
        wait_for(lambda: serving(api, ns, v2.version), what="v2 serving")
        # Fewer leads than the minimum: an estimate in status, nothing said.
        rng = random.Random(11)
        few = post_leads(scorer, rng, early_auc.MIN_LEADS - 1)
        wait_for(
            lambda: estimate_leads(api, ns) == early_auc.MIN_LEADS - 1,
            what="the estimate on too few leads in status",
        )
        assert condition(api, ns, "Degraded")["reason"] == "AsExpected"
        assert few < float(MIN_AUC)
        post_leads(scorer, rng, 1)
        degraded = wait_for(
            lambda: (c := condition(api, ns, "Degraded")).get("reason") == "EstimatedAucLow" and c,
            what="Degraded=True/EstimatedAucLow",
        )
        # More leads, more passes (the status follows them): still v2, still one Event.
        final = post_leads(scorer, rng, 10)
        wait_for(
            lambda: estimate_leads(api, ns) == early_auc.MIN_LEADS + 10,
            what="later passes",
        )
        status = get_lm(api, ns)["status"]
        said = events(api, ns, "EstimatedAucLow")
        assert condition(api, ns, "Degraded")["reason"] == "EstimatedAucLow"
    assert degraded["status"] == "True"
    assert f"minAuc {MIN_AUC}" in degraded["message"]
    assert status["estimatedAuc"] == f"{final:.4f}"
    assert [e["type"] for e in said] == ["Warning"]
    assert deployment_version(api, ns) == str(v2.version)
    assert status["servingVersion"] == str(v2.version)
    assert condition(api, ns, "RolledOut")["reason"] == "RolloutComplete"
