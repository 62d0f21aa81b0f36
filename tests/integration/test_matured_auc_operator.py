"""The matured-AUC guard on the real control plane: a promoted version worse than its
predecessor on matured leads is rolled back (Degraded=True/MaturedAucDrop, a Warning Event with
both AUCs and the interval, status.maturedAuc) and never promoted again; a new scorer image
rolled out in between keeps the guard watching the same promotion.

kwok Pods run nothing, so the scorer runs here (a real redis-server, the previous version
scored in shadow, a window of seconds) and LEADOPS_SCORER_URL points the operator at it (as in
test_estimated_auc_operator.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from leadops.operator import builders, kube, registry
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.scorer import StartScorer
from tests.integration.scorer.test_matured_auc import MIN_LEADS, guard_env, post_leads, verdict
from tests.integration.test_operator import (
    NAME,
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
    scorer_container,
    scorer_env,
    serving,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]

IMAGE = "docker.io/leadops/scorer:0.1.0"
NEW_IMAGE = "docker.io/leadops/scorer:0.1.1"


def scorer_image(client: kube.Kube, ns: str) -> str:
    return str(scorer_container(client, ns)["image"])


def guard_config(client: kube.Kube, ns: str) -> dict[str, Any]:
    """LEADOPS_MATURED_AUC of the scorer Pods, with the previous version it unpacks."""
    env = scorer_env(client, ns)
    config: dict[str, Any] = json.loads(env["LEADOPS_MATURED_AUC"])
    return {**config, "previousModel": json.loads(env["LEADOPS_PREVIOUS_MODEL"])}


def test_a_promoted_version_worse_on_matured_leads_is_rolled_back_for_good(  # noqa: PLR0917 (fixtures)
    api: kube.Kube,  # noqa: F811 (fixture)
    k8s_namespace: str,
    start_scorer: StartScorer,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = k8s_namespace
    now = int(time.time())
    v1 = build_artifact(tmp_path / "v1.json", version=now - 2400, auc=0.8)
    # One stump: it passes the gates (its claimed AUC), and is worse on these leads by 0.10
    # (interval upper bound -0.04, measured with the same seeds).
    v2 = build_artifact(tmp_path / "v2.json", version=now - 1200, auc=0.8, trees=1, depth=1, seed=5)
    scorer = start_scorer(
        model=v2.path, redis_url=redis_url, **guard_env(v2, v1, since=time.time() - 1)
    )
    scorer_api = create_scorer_api_secret(api, ns)
    monkeypatch.setenv("LEADOPS_SCORER_URL", scorer.url)
    with operator(ns):
        api.create(
            leadmodel(
                ns,
                guards={
                    "maturedAuc": {"action": "Rollback", "minLeads": MIN_LEADS, "maxDrop": "0.02"}
                },
                scorer={
                    "image": IMAGE,
                    "replicas": 1,
                    "apiKeySecretRef": scorer_api,
                },
            )
        )
        wait_for(lambda: api.get("Deployment", ns, f"{NAME}-scorer"), what="scorer Deployment")
        publish_version(api, ns, v1.path.read_bytes())
        wait_for(lambda: serving(api, ns, v1.version), what="v1 serving")
        publish_version(api, ns, v2.path.read_bytes())
        wait_for(lambda: serving(api, ns, v2.version), what="v2 serving")
        # The promotion deployed v1 beside v2 for the guard.
        promoted = guard_config(api, ns)
        assert (promoted["servingVersion"], promoted["previousVersion"]) == (v2.version, v1.version)
        # A new scorer image for v2: its Pods go on watching the same promotion.
        api.patch("LeadModel", ns, NAME, {"spec": {"scorer": {"image": NEW_IMAGE}}})
        wait_for(
            lambda: (
                scorer_image(api, ns) == NEW_IMAGE
                and condition(api, ns, "RolledOut").get("reason") == "RolloutComplete"
            ),
            what="the image rollout of v2",
        )
        assert guard_config(api, ns) == promoted
        dep_ann = (api.get("Deployment", ns, f"{NAME}-scorer") or {})["metadata"]["annotations"]
        assert dep_ann[builders.ANN_GUARDED_PREVIOUS] == str(v1.version)
        with scorer.client() as http:
            post_leads(http, MIN_LEADS, seed=1)
            # Collecting while the leads are younger than the window: v2 keeps serving.
            assert verdict(http)["state"] == "Collecting"
            collecting = wait_for(
                lambda: (get_lm(api, ns).get("status") or {}).get("maturedAuc"),
                what="the guard in status while collecting",
            )
        wait_for(
            lambda: condition(api, ns, "RolledOut").get("reason") == "RolledBack",
            what="the rollback on the matured verdict",
            timeout=60,
        )
        degraded = condition(api, ns, "Degraded")
        (event,) = events(api, ns, "MaturedAucDrop")
        found = wait_for(
            lambda: [
                m
                for m in (get_lm(api, ns).get("status") or {}).get("maturedAuc") or []
                if m["verdict"] == "Drop"
            ],
            what="the verdict in status",
        )
        # Passes after the rollback (LEADOPS_RESYNC_SECONDS): v2, newer and passing its gates,
        # is never promoted again.
        generation_passes = 3
        time.sleep(2 * generation_passes)
        assert deployment_version(api, ns) == str(v1.version)
        # The model was at fault, not the image: v1 serves on the new one, unguarded.
        assert scorer_image(api, ns) == NEW_IMAGE
        dep_ann = (api.get("Deployment", ns, f"{NAME}-scorer") or {})["metadata"]["annotations"]
        assert builders.ANN_GUARDED_PREVIOUS not in dep_ann
        assert "LEADOPS_MATURED_AUC" not in scorer_env(api, ns)
        status = get_lm(api, ns)["status"]
    assert collecting[0]["verdict"] == "Collecting"
    assert (degraded["status"], degraded["reason"]) == ("True", "MaturedAucDrop")
    (said,) = found
    assert said["version"] == str(v2.version)
    assert said["previousVersion"] == str(v1.version)
    assert said["leads"] == MIN_LEADS
    assert float(said["auc"]) < float(said["previousAuc"])
    assert float(said["ciHigh"]) < -0.02
    assert event["type"] == "Warning"
    for text in (event["message"], degraded["message"]):
        assert said["auc"] in text
        assert said["previousAuc"] in text
        assert f"[{said['ciLow']}, {said['ciHigh']}]" in text
    assert status["servingVersion"] == str(v1.version)
    cm = api.get("ConfigMap", ns, registry.configmap_name(NAME, v2.version)) or {}
    ann = cm["metadata"]["annotations"]
    assert ann[registry.ANN_ROLLBACK_REASON] == "MaturedAucDrop"
    history = {h["version"]: h for h in status["history"]}
    assert history[str(v2.version)]["reason"] == "MaturedAucDrop"
