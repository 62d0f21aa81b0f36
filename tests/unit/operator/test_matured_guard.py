"""The matured-AUC guard's decision: roll back on a drop beyond maxDrop, through the ordinary
rollback path (marked, never promoted again); otherwise nothing; the verdicts in status; the
scorer Deployment after a promotion scores with the previous version too."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from leadops.operator import builders, reasons, registry
from leadops.operator.actions import EmitEvent, MarkVersion, RollBack, RollOut
from leadops.operator.plan import plan
from leadops.operator.rollout import Progress, rollout_state
from leadops.operator.spec import MaturedAucAction
from leadops.operator.world import MaturedReport, ScorerReport, combine

from .worlds import NOW, V1, V2, V3, deployed, entry, world
from .worlds import spec as any_spec

DROP = MaturedReport(
    state="Drop",
    serving_version=V2,
    previous_version=V1,
    leads=2000,
    conversions=640,
    serving_auc="0.7012",
    previous_auc="0.7498",
    difference="-0.0486",
    ci_low="-0.0655",
    ci_high="-0.0317",
    max_drop="0.02",
    alpha="0.05",
)


def spec(**kw: Any) -> Any:
    """A LeadModel with the guard on (it is off by default), unless `kw` says otherwise."""
    guards = kw.pop("guards", {})
    guard = {"action": "Rollback", **guards.get("maturedAuc", {})}
    return any_spec(guards={**guards, "maturedAuc": guard}, **kw)


def test_the_guard_is_off_by_default() -> None:
    assert any_spec().guards.matured_auc.action is MaturedAucAction.OFF


def scorer(matured: MaturedReport | None, *, version: int = V2) -> ScorerReport:
    return ScorerReport(version=version, health="ok", matured=matured)


DIGEST_V1 = "sha256:" + "1" * 64
DIGEST_V2 = "sha256:" + "2" * 64
IMAGE = "docker.io/leadops/scorer:1"
NEW_IMAGE = "docker.io/leadops/scorer:2"
# V2 promoted over V1 (validated digests, on IMAGE).
PROMOTED = replace(
    deployed(V2, previous=V1),
    digest=DIGEST_V2,
    previous_digest=DIGEST_V1,
    image=IMAGE,
    previous_image=IMAGE,
)
PROMOTION = builders.Promotion(V1, DIGEST_V1, PROMOTED.started_at)
# Then its image rolled out (the same version on NEW_IMAGE): the promotion carried.
IMAGE_ROLLED = replace(
    PROMOTED,
    previous=V2,
    previous_digest=DIGEST_V2,
    image=NEW_IMAGE,
    started_at="2026-11-27T10:00:00Z",
    carried_promotion=PROMOTION,
)


def serving_v2(matured: MaturedReport | None, *, deployment: Any = PROMOTED, **spec_kw: Any) -> Any:
    lm = spec(**{"scorer": {"image": IMAGE}, **spec_kw})
    obs = world(
        entry(V1, promoted="2026-11-25T10:00:00Z"),
        entry(V2, promoted="2026-11-26T10:00:00Z"),
        deployment=deployment,
        scorer=scorer(matured),
    )
    return lm, obs


def condition(p: Any, kind: str) -> Any:
    return next(c for c in p.conditions if c.type == kind)


def test_a_drop_beyond_max_drop_rolls_back_with_both_aucs_and_the_interval() -> None:
    lm, obs = serving_v2(DROP)
    p = plan(lm, obs, NOW)
    back = [a for a in p.actions if isinstance(a, RollBack)]
    assert back == [RollBack(version=V1, failed=V2, reason=reasons.MATURED_AUC_DROP, manifest={})]
    # Marked rolled back: the ordinary path keeps it out of "newest passing".
    marks = [a for a in p.actions if isinstance(a, MarkVersion)]
    assert marks[0].name == registry.configmap_name("lm", V2)
    assert marks[0].annotations[registry.ANN_ROLLBACK_REASON] == reasons.MATURED_AUC_DROP
    said = marks[0].annotations[registry.ANN_ROLLBACK_MESSAGE]
    warning = next(
        a for a in p.actions if isinstance(a, EmitEvent) and a.reason == reasons.MATURED_AUC_DROP
    )
    assert warning.type == "Warning"
    for text in (said, warning.message):
        assert "0.7012" in text
        assert "0.7498" in text
        assert "[-0.0655, -0.0317]" in text
        assert "95 % interval" in text
    degraded = condition(p, reasons.DEGRADED)
    assert (degraded.status, degraded.reason) == ("True", reasons.MATURED_AUC_DROP)
    assert p.status.matured_auc[0].verdict == "Drop"
    assert p.status.matured_auc[0].auc == "0.7012"
    assert p.status.matured_auc[0].previous_auc == "0.7498"


@pytest.mark.parametrize(
    ("why", "matured", "spec_kw"),
    [
        ("no guard verdict", None, {}),
        ("still collecting", replace(DROP, state="Collecting", ci_high=""), {}),
        ("no drop", replace(DROP, state="NoDrop", ci_high="0.0100"), {}),
        ("inconclusive", replace(DROP, state="Inconclusive", ci_high=""), {}),
        # The spec's maxDrop is the bar: the upper bound -0.0317 is not below -0.05.
        ("within this LeadModel's maxDrop", DROP, {"guards": {"maturedAuc": {"maxDrop": "0.05"}}}),
        ("the guard is off", DROP, {"guards": {"maturedAuc": {"action": "Off"}}}),
        ("another promotion's verdict", replace(DROP, serving_version=V3), {}),
        ("against another predecessor", replace(DROP, previous_version=V3), {}),
    ],
)
def test_no_rollback(why: str, matured: MaturedReport | None, spec_kw: dict[str, Any]) -> None:
    lm, obs = serving_v2(matured, **spec_kw)
    p = plan(lm, obs, NOW)
    assert not [a for a in p.actions if isinstance(a, RollBack | RollOut)], why
    assert condition(p, reasons.DEGRADED).reason == reasons.AS_EXPECTED, why


def test_an_image_rollout_of_the_promoted_version_keeps_the_guard_watching() -> None:
    lm, obs = serving_v2(replace(DROP, state="Collecting"), scorer={"image": NEW_IMAGE})
    (rolled,) = [a for a in plan(lm, obs, NOW).actions if isinstance(a, RollOut)]
    assert rolled.version == V2
    ann = rolled.manifest["metadata"]["annotations"]
    assert ann[builders.ANN_GUARDED_PREVIOUS] == str(V1)
    assert ann[builders.ANN_GUARDED_DIGEST] == DIGEST_V1
    config = json.loads(_env(rolled.manifest)["LEADOPS_MATURED_AUC"])
    assert (config["servingVersion"], config["previousVersion"]) == (V2, V1)
    assert config["since"] == 1795687200  # the promotion's start, not the image rollout's


def test_a_drop_after_an_image_rollout_rolls_back_the_version_on_the_new_image() -> None:
    lm, obs = serving_v2(DROP, deployment=IMAGE_ROLLED, scorer={"image": NEW_IMAGE})
    p = plan(lm, obs, NOW)
    (back,) = [a for a in p.actions if isinstance(a, RollBack)]
    assert (back.version, back.failed, back.reason) == (V1, V2, reasons.MATURED_AUC_DROP)
    container = back.manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == NEW_IMAGE
    ann = back.manifest["metadata"]["annotations"]
    assert ann[builders.ANN_DIGEST] == DIGEST_V1
    assert builders.ANN_GUARDED_PREVIOUS not in ann
    assert "LEADOPS_MATURED_AUC" not in _env(back.manifest)


def test_undoing_an_image_rollout_keeps_the_guard_watching() -> None:
    stuck = replace(
        IMAGE_ROLLED, progress=Progress.STUCK, available=False, ready=0, pods_failed=True
    )
    lm, obs = serving_v2(None, deployment=stuck, scorer={"image": NEW_IMAGE})
    (back,) = [a for a in plan(lm, obs, NOW).actions if isinstance(a, RollBack)]
    assert back.version == V2
    assert back.manifest["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    config = json.loads(_env(back.manifest)["LEADOPS_MATURED_AUC"])
    assert (config["servingVersion"], config["previousVersion"]) == (V2, V1)


def test_the_carried_promotion_is_read_back_from_the_deployment() -> None:
    owner = builders.Owner(name="lm", namespace="ns", uid="u")
    rollout = builders.Rollout(
        version=V2,
        previous=V2,
        started_at=IMAGE_ROLLED.started_at,
        digest=DIGEST_V2,
        previous_digest=DIGEST_V2,
        image=NEW_IMAGE,
        previous_image=IMAGE,
        carried_promotion=PROMOTION,
    )
    made = builders.scorer_deployment(owner, spec(), rollout)
    assert rollout_state(made).promotion == PROMOTION
    # A promotion's own state is not written twice: its Deployment is as before.
    own = replace(
        rollout,
        previous=V1,
        previous_digest=DIGEST_V1,
        started_at=PROMOTION.since,
        carried_promotion=PROMOTION,
    )
    made = builders.scorer_deployment(owner, spec(), own)
    assert builders.ANN_GUARDED_PREVIOUS not in made["metadata"]["annotations"]
    assert rollout_state(made).promotion == PROMOTION


def test_after_the_rollback_the_version_stays_out_and_its_verdict_stays_in_status() -> None:
    message = "matured AUC of version V2 is 0.7012 against 0.7498"
    rolled = entry(V2, promoted="2026-11-26T10:00:00Z", rolled_back="2026-11-26T11:00:00Z")
    rolled = replace(rolled, rollback_reason=reasons.MATURED_AUC_DROP, rollback_message=message)
    before = {"maturedAuc": [{"version": str(V2), "previousVersion": str(V1), "verdict": "Drop"}]}
    obs = world(
        entry(V1, promoted="2026-11-25T10:00:00Z"),
        rolled,
        deployment=deployed(V1, previous=V2, kind=builders.ROLLOUT_BACK),
        scorer=scorer(None, version=V1),  # the rolled-back Pods are gone: no guard now
        status=before,
    )
    p = plan(spec(), obs, NOW)
    assert not [a for a in p.actions if isinstance(a, RollBack | RollOut)]
    degraded = condition(p, reasons.DEGRADED)
    assert degraded.reason == reasons.MATURED_AUC_DROP
    assert message in degraded.message
    assert [(m.version, m.verdict) for m in p.status.matured_auc] == [(str(V2), "Drop")]


def test_combine_prefers_a_final_verdict_and_a_drop() -> None:
    collecting = replace(DROP, state="Collecting", leads=10)
    no_drop = replace(DROP, state="NoDrop")
    reports = [scorer(collecting), scorer(None), scorer(no_drop), scorer(DROP)]
    found = combine(reports, asked=4)
    assert found is not None
    assert found.matured == DROP
    only = combine([scorer(collecting), scorer(None)], asked=2)
    assert only is not None
    assert only.matured == collecting


def _env(deployment: Mapping[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _init(deployment: dict[str, Any]) -> list[str]:
    return [c["name"] for c in deployment["spec"]["template"]["spec"].get("initContainers", [])]


def test_a_promotion_deploys_the_previous_version_beside_the_serving_one() -> None:
    lm = spec(outcomes={"windowDays": 7}, guards={"maturedAuc": {"minLeads": 500}})
    owner = builders.Owner(name="lm", namespace="ns", uid="u")
    rollout = builders.Rollout(
        version=V2,
        previous=V1,
        started_at="2026-11-26T10:00:00Z",
        digest="sha256:" + "a" * 64,
        previous_digest="sha256:" + "b" * 64,
    )
    made = builders.scorer_deployment(owner, lm, rollout)
    env = _env(made)
    assert json.loads(env["LEADOPS_PREVIOUS_MODEL"]) == {
        "path": f"{builders.MODEL_DIR}/previous.json",
        "digest": "sha256:" + "b" * 64,
    }
    config = json.loads(env["LEADOPS_MATURED_AUC"])
    assert config["servingVersion"] == V2
    assert config["previousVersion"] == V1
    assert config["minLeads"] == 500
    assert config["windowDays"] == 7
    assert config["since"] == 1795687200  # 2026-11-26T10:00:00Z
    assert _init(made) == ["unpack-model", "unpack-previous"]
    # Not after a rollback, an image rollout, a first model, or with the guard off.
    for changed, lm_kw in (
        (replace(rollout, kind=builders.ROLLOUT_BACK), {}),
        (replace(rollout, previous=V2), {}),
        (replace(rollout, previous=None, previous_digest=""), {}),
        (rollout, {"guards": {"maturedAuc": {"action": "Off"}}}),
    ):
        other = builders.scorer_deployment(owner, spec(**lm_kw), changed)
        assert "LEADOPS_MATURED_AUC" not in _env(other)
        assert _init(other) == ["unpack-model"]


@pytest.mark.parametrize("alpha", ["0", "0.0", "1", "1.5", "abc", "0.123456789"])
def test_alpha_is_a_probability_above_zero(alpha: str) -> None:
    with pytest.raises(ValueError, match="alpha"):
        spec(guards={"maturedAuc": {"alpha": alpha}})
