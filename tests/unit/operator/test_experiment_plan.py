"""The operator's side of an experiment, as tables without a cluster: verdict ConfigMaps in,
phase, Events, what the scorer runs, the evaluation CronJob and promotion out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from leadops.operator import builders, plan, reasons
from leadops.operator import experiment as experiments
from leadops.operator.actions import EmitEvent, GarbageCollect, RemoveChild, RollOut
from leadops.operator.spec import ExperimentPhase
from tests.unit.operator.worlds import NOW, V1, V2, deployed, entry, spec, world

VARIANTS = [
    {"name": "control", "weight": 50},
    {"name": "v2", "weight": 50, "modelVersion": str(V2), "flags": {"memory": "on"}},
]


def _lm(**experiment: Any) -> Any:
    body = {"name": "trial", "variants": VARIANTS} | experiment
    return spec(experiment=body)


def _verdict(
    verdict: str, *, variant: str | None = None, reason: str = "", hours_ago: int = 1, **kw: Any
) -> dict[str, Any]:
    at = (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = {
        "verdict": verdict,
        "variant": variant,
        "reason": reason,
        "look": 3,
        "looks": 28,
        "alpha_spent": 0.000012,
        "evaluated_at": at,
        "variants": [
            {"name": "control", "assigned": 1000, "leads": 800, "conversions": 240},
            {"name": "v2", "assigned": 990, "leads": 790, "conversions": 300},
        ],
    }
    return experiments.verdict_configmap(
        report,
        experiment=kw.get("experiment", "trial"),
        leadmodel="lm",
        namespace="ns",
        owner_uid="uid-1",
    )


def _world(
    *verdicts: dict[str, Any],
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> Any:
    obs = world(entry(V1, promoted="x"), entry(V2), deployment=deployed(V1), status=status)
    return replace(obs, experiment_verdicts=verdicts, annotations=annotations or {})


def _events(p: Any) -> list[tuple[str, str]]:
    return [(a.type, a.reason) for a in p.actions if isinstance(a, EmitEvent)]


def _cronjob(p: Any) -> dict[str, Any] | None:
    name = builders.names("lm")["experiment"]
    return next(
        (a.manifest for a in p.actions if getattr(a, "kind", "") == "CronJob"
         and a.name == name),
        None,
    )  # fmt: skip


def _scorer_env(p: Any) -> dict[str, str]:
    deployment = next(
        a.manifest
        for a in p.actions
        if getattr(a, "kind", "") == "Deployment" or isinstance(a, RollOut)
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_a_new_experiment_runs_buckets_in_the_scorer_and_holds_candidates_back() -> None:
    p = plan.plan(_lm(), _world(), NOW)
    exp = p.status.experiment
    assert exp is not None
    assert (exp.phase, exp.reason) == (ExperimentPhase.RUNNING, "NotYetEvaluated")
    assert exp.started_at == "2026-11-26T12:00:00Z"
    env = _scorer_env(p)
    config = json.loads(env["LEADOPS_EXPERIMENT"])
    assert [v.get("modelVersion") for v in config["variants"]] == [None, str(V2)]
    assert json.loads(env["LEADOPS_VARIANT_MODELS"]) == {
        str(V2): {
            "path": f"/var/lib/leadops/model/variant-{V2}.json",
            "digest": "sha256:" + "0" * 64,
        }
    }
    # V2 is newer and passes the gates, but it is the challenger: the control keeps serving.
    assert not any(isinstance(a, RollOut) for a in p.actions)
    cron = _cronjob(p)
    assert cron is not None
    assert cron["spec"]["suspend"] is False
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--started-at 2026-11-26T12:00:00Z --of 28" in command[2]
    assert "leadops experiment publish" in command[2]
    # The guardrails: the scorer's counts over every replica, and the spec's limits.
    assert (
        "/ops/experiment/guardrails --max-error-rate 0.02 --max-p99-latency-ratio 1.5"
        in (command[2])
    )
    assert "--output /work/verdict.json" in command[2]
    assert ("Normal", "ExperimentRunning") in _events(p)


def test_an_automatic_win_of_a_model_variant_rolls_it_out_and_ends_the_experiment() -> None:
    p = plan.plan(
        _lm(), _world(_verdict("promote", variant="v2", reason="SignificantlyBetter")), NOW
    )
    assert [a.version for a in p.actions if isinstance(a, RollOut)] == [V2]
    exp = p.status.experiment
    assert exp is not None
    assert (exp.phase, exp.variant, exp.look) == (ExperimentPhase.PROMOTED, "v2", 3)
    assert [v.conversions for v in exp.variants] == [240, 300]
    assert ("Normal", "ExperimentPromoted") in _events(p)
    cron = _cronjob(p)
    assert cron is not None
    assert cron["spec"]["suspend"] is True  # no more looks


def test_a_manual_win_waits_for_a_person_then_promotes_on_the_annotation() -> None:
    won = _verdict("promote", variant="v2", reason="SignificantlyBetter")
    waiting = plan.plan(_lm(promotion="Manual"), _world(won), NOW)
    assert waiting.status.experiment is not None
    assert waiting.status.experiment.phase is ExperimentPhase.AWAITING_PROMOTION
    assert not any(isinstance(a, RollOut) for a in waiting.actions)
    approved = plan.plan(
        _lm(promotion="Manual"),
        _world(won, annotations={experiments.ANN_ACTION: "promote:trial"}),
        NOW,
    )
    assert approved.status.experiment is not None
    assert approved.status.experiment.reason == reasons.EXPERIMENT_PROMOTED_BY_USER
    assert [a.version for a in approved.actions if isinstance(a, RollOut)] == [V2]


@pytest.mark.parametrize(
    ("verdict", "reason", "phase"),
    [
        ("abort", "SignificantlyWorse", ExperimentPhase.ABORTED),
        ("abort", "ScorePsiGuardrail", ExperimentPhase.ABORTED),
        ("invalid", "SampleRatioMismatch", ExperimentPhase.INVALID),
        ("inconclusive", "OutOfLooks", ExperimentPhase.INCONCLUSIVE),
    ],
)
def test_a_stopping_verdict_stops_bucketing_with_a_condition_and_a_warning(
    verdict: str, reason: str, phase: ExperimentPhase
) -> None:
    p = plan.plan(_lm(), _world(_verdict(verdict, reason=reason)), NOW)
    assert p.status.experiment is not None
    assert (p.status.experiment.phase, p.status.experiment.reason) == (phase, reason)
    assert "LEADOPS_EXPERIMENT" not in _scorer_env(p)
    assert not any(isinstance(a, RollOut) for a in p.actions)  # the control keeps serving
    condition = next(c for c in p.status.conditions if c.type == reasons.EXPERIMENT)
    assert (condition.status, condition.reason) == ("False", reason)
    assert ("Warning", f"Experiment{phase}") in _events(p)


def test_a_restarted_operator_keeps_the_start_and_says_a_verdict_once() -> None:
    verdicts = (_verdict("continue", reason="NotYetSignificant"),)
    first = plan.plan(_lm(), _world(*verdicts), NOW)
    assert first.status.experiment is not None
    written = first.status.model_dump(by_alias=True, exclude_none=True)["experiment"]
    later = NOW + timedelta(days=2)
    again = plan.plan(_lm(), _world(*verdicts, status={"experiment": written}), later)
    assert again.status.experiment is not None
    assert again.status.experiment.started_at == first.status.experiment.started_at
    assert (again.status.experiment.look, again.status.experiment.alpha_spent) == (3, "1.2e-05")
    assert not [e for e in _events(again) if e[1].startswith("Experiment")]


def test_a_user_abort_a_pin_and_a_missing_variant_model_stop_it() -> None:
    aborted = plan.plan(_lm(), _world(annotations={experiments.ANN_ACTION: "abort:trial"}), NOW)
    pinned = plan.plan(
        spec(experiment={"name": "trial", "variants": VARIANTS}, modelVersion=str(V1)),
        _world(),
        NOW,
    )
    missing = plan.plan(
        _lm(variants=[VARIANTS[0], VARIANTS[1] | {"modelVersion": "1700000000"}]), _world(), NOW
    )
    got = [
        (p.status.experiment.phase, p.status.experiment.reason)
        for p in (aborted, pinned, missing)
        if p.status.experiment is not None
    ]
    assert got == [
        (ExperimentPhase.ABORTED, reasons.EXPERIMENT_ABORTED_BY_USER),
        (ExperimentPhase.PAUSED, reasons.EXPERIMENT_PINNED),
        (ExperimentPhase.INVALID, reasons.EXPERIMENT_UNKNOWN_VARIANT_MODEL),
    ]
    # An abort for another experiment's name is not this one's.
    other = plan.plan(_lm(), _world(annotations={experiments.ANN_ACTION: "abort:old"}), NOW)
    assert other.status.experiment is not None
    assert other.status.experiment.phase is ExperimentPhase.RUNNING


def test_old_verdicts_and_other_experiments_verdicts_are_collected() -> None:
    verdicts = [_verdict("continue", hours_ago=24 * d) for d in range(1, 6)]
    verdicts.append(_verdict("abort", experiment="earlier", hours_ago=200))
    p = plan.plan(_lm(), _world(*verdicts), NOW)
    gone = next(a.names for a in p.actions if isinstance(a, GarbageCollect))
    names = [v["metadata"]["name"] for v in verdicts]
    assert sorted(gone) == sorted([names[3], names[4], names[5]])


def test_removing_the_experiment_removes_its_cronjob() -> None:
    with_it = plan.plan(_lm(), _world(), NOW)
    cron = _cronjob(with_it)
    assert cron is not None
    cron = cron | {"metadata": cron["metadata"] | {"uid": "c"}}
    obs = _world()
    obs = replace(obs, children={("CronJob", "lm-experiment"): cron})
    without = plan.plan(spec(), obs, NOW)
    assert without.status.experiment is None
    removed = [(a.kind, a.name) for a in without.actions if isinstance(a, RemoveChild)]
    assert removed == [("CronJob", "lm-experiment")]


@pytest.mark.parametrize(
    "data",
    [{}, {"verdict.json": "not json"}, {"verdict.json": json.dumps({"verdict": "promote"})}],
)
def test_an_unreadable_verdict_is_ignored(data: dict[str, str]) -> None:
    cm = {"metadata": {"name": "x", "labels": {}}, "data": data}
    assert experiments.parse_verdict(cm) is None


def test_a_verdict_without_a_time_is_refused() -> None:
    with pytest.raises(ValueError, match="evaluated_at"):
        experiments.verdict_configmap(
            {"verdict": "continue"}, experiment="t", leadmodel="lm", namespace="ns", owner_uid=""
        )


FLAG_VARIANTS = [
    {"name": "control", "weight": 50},
    {"name": "v2", "weight": 50, "flags": {"memory": "on"}},
]


def test_an_automatic_win_of_a_flag_variant_serves_its_flags_to_every_lead() -> None:
    won = _verdict("promote", variant="v2", reason="SignificantlyBetter")
    p = plan.plan(_lm(variants=FLAG_VARIANTS), _world(won), NOW)
    exp = p.status.experiment
    assert exp is not None
    assert (exp.phase, exp.served_variant, exp.served_flags) == (
        ExperimentPhase.PROMOTED,
        "v2",
        {"memory": "on"},
    )
    config = json.loads(_scorer_env(p)["LEADOPS_EXPERIMENT"])
    assert config["winner"] == "v2"
    assert [v["flags"] for v in config["variants"]] == [{}, {"memory": "on"}]
    assert "LEADOPS_VARIANT_MODELS" not in _scorer_env(p)
    assert "its flags are served to every lead" in exp.message
    cron = _cronjob(p)
    assert cron is not None
    assert cron["spec"]["suspend"] is True


def test_a_manual_flag_win_is_served_only_once_a_person_promotes_it() -> None:
    won = _verdict("promote", variant="v2", reason="SignificantlyBetter")
    lm = _lm(variants=FLAG_VARIANTS, promotion="Manual")
    waiting = plan.plan(lm, _world(won), NOW)
    assert "winner" not in json.loads(_scorer_env(waiting)["LEADOPS_EXPERIMENT"])
    assert waiting.status.experiment is not None
    assert waiting.status.experiment.served_flags == {}
    approved = plan.plan(
        lm, _world(won, annotations={experiments.ANN_ACTION: "promote:trial"}), NOW
    )
    assert json.loads(_scorer_env(approved)["LEADOPS_EXPERIMENT"])["winner"] == "v2"


def test_the_flags_served_are_the_ones_that_won_whatever_later_edits_say() -> None:
    won = _verdict("promote", variant="v2", reason="SignificantlyBetter")
    first = plan.plan(_lm(variants=FLAG_VARIANTS), _world(won), NOW)
    assert first.status.experiment is not None
    written = first.status.model_dump(by_alias=True, exclude_none=True)["experiment"]
    assert written["servedFlags"] == {"memory": "on"}
    edited = [FLAG_VARIANTS[0], FLAG_VARIANTS[1] | {"flags": {"memory": "off"}}]
    # A restarted operator (status as written) over an edited spec serves what won.
    again = plan.plan(_lm(variants=edited), _world(won, status={"experiment": written}), NOW)
    assert again.status.experiment is not None
    assert again.status.experiment.served_flags == {"memory": "on"}
    config = json.loads(_scorer_env(again)["LEADOPS_EXPERIMENT"])
    assert config["variants"][1]["flags"] == {"memory": "on"}
    # The winner renamed away before any record: nothing to serve, the control's answers.
    renamed = [FLAG_VARIANTS[0], FLAG_VARIANTS[1] | {"name": "v3"}]
    gone = plan.plan(_lm(variants=renamed), _world(won), NOW)
    assert gone.status.experiment is not None
    assert gone.status.experiment.served_variant == ""
    assert "LEADOPS_EXPERIMENT" not in _scorer_env(gone)
    # spec.experiment removed: no flags served, no experiment in status.
    removed = plan.plan(spec(), _world(won, status={"experiment": written}), NOW)
    assert removed.status.experiment is None
    assert "LEADOPS_EXPERIMENT" not in _scorer_env(removed)


def test_a_winning_model_variant_rolls_out_with_its_flags_in_one_deployment() -> None:
    p = plan.plan(
        _lm(), _world(_verdict("promote", variant="v2", reason="SignificantlyBetter")), NOW
    )
    rollout = next(a for a in p.actions if isinstance(a, RollOut))
    container = rollout.manifest["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    config = json.loads(env["LEADOPS_EXPERIMENT"])
    assert (config["winner"], config["variants"][1]["flags"]) == ("v2", {"memory": "on"})
    assert "LEADOPS_VARIANT_MODELS" not in env  # the winner is the serving model now


def test_a_guardrail_abort_says_which_guardrail_variant_and_figures() -> None:
    said = "variant v2: error rate 0.5000 (120 of 240 leads failed) above maxErrorRate 0.02"
    breached = _verdict("abort", reason="ErrorRateGuardrail")
    breached["data"]["verdict.json"] = json.dumps(
        json.loads(breached["data"]["verdict.json"]) | {"message": said}
    )
    p = plan.plan(_lm(), _world(breached), NOW)
    exp = p.status.experiment
    assert exp is not None
    assert (exp.phase, exp.reason) == (ExperimentPhase.ABORTED, "ErrorRateGuardrail")
    assert said in exp.message
    assert "LEADOPS_EXPERIMENT" not in _scorer_env(p)  # bucketing stops; the control serves
    warning = next(a for a in p.actions if isinstance(a, EmitEvent) and a.type == "Warning")
    assert said in warning.message
