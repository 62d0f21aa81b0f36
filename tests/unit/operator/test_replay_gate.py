"""The replay gate as tables: replay Jobs and their Pods -> runs; runs x status -> Replayed,
the replay Job to create, and whether the promotion waits (spec.guards.replay)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from leadops.operator import builders, plan, reasons, replay_gate
from leadops.operator import experiment as experiments
from leadops.operator.actions import CreateOnce, EmitEvent, Plan, RollBack, RollOut, status_body
from leadops.operator.spec import ConditionStatus, LeadModelSpec
from leadops.operator.world import Observed, ReplayRun

from .worlds import NOW, V1, V2, V3, deployed, entry, spec, world

GUARDED = spec(guards={"replay": {}})
HOLD = spec(guards={"replay": {"onInconclusive": "Hold"}})
JOB = builders.replay_job_name("lm", V2, V1)


def report(verdict: str, reason: str, *, candidate: int = V2, baseline: int = V1) -> dict[str, Any]:
    worse = verdict == "Fail"
    return {
        "verdict": verdict,
        "reason": reason,
        "message": "AUC 0.7712 (candidate) vs 0.8034 (baseline), difference -0.0322, 95 % CI "
        "[-0.0451, -0.0193], on 1500 leads; worse by more than 0.02"
        if worse
        else "AUC 0.8031 (candidate) vs 0.8034 (baseline) ...",
        "leads": 1500 if reason != "TooFewLeads" else 150,
        "conversions": 520 if reason != "TooFewLeads" else 50,
        "candidate": {"version": candidate, "auc": 0.7712 if worse else 0.8031},
        "baseline": {"version": baseline, "auc": 0.8034},
        "difference": -0.0322 if worse else -0.0003,
        "ci": [-0.0451, -0.0193] if worse else [-0.004, 0.0034],
        "confidence": 0.95,
        "p_value": 0.0001,
        "score_psi": 0.031,
    }


def job(state: str = "", *, name: str = JOB, pair: tuple[int, int] = (V2, V1)) -> dict[str, Any]:
    conds = [{"type": state, "status": "True", "message": "BackoffLimitExceeded"}] if state else []
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {
                builders.REPLAY_CANDIDATE: str(pair[0]),
                builders.REPLAY_BASELINE: str(pair[1]),
            },
        },
        "status": {"conditions": conds},
    }


def pod(phase: str, *, message: str = "", job_name: str = JOB, code: int = 0) -> dict[str, Any]:
    ended = {"exitCode": code, "message": message, "finishedAt": "2026-11-26T11:00:00Z"}
    return {
        "metadata": {"name": f"{job_name}-x", "labels": {"job-name": job_name}},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "replay", "state": {"terminated": ended}}
                if phase in {"Succeeded", "Failed"}
                else {"name": "replay", "state": {"running": {}}}
            ],
        },
    }


def run(state: str, found: dict[str, Any] | None = None, **kw: Any) -> ReplayRun:
    return ReplayRun(
        job=JOB, uid="uid-j", candidate=V2, baseline=V1, state=state, report=found, **kw
    )


def serving_v1(*runs: ReplayRun, status: dict[str, Any] | None = None) -> Observed:
    obs = world(entry(V1), entry(V2), deployment=deployed(V1), status=status)
    return replace(obs, replay_runs=runs)


def replayed(p: Plan) -> Any:
    return next(c for c in p.conditions if c.type == reasons.REPLAYED)


def ready(p: Plan) -> Any:
    return next(c for c in p.conditions if c.type == reasons.READY)


# Reading Jobs and Pods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "jobs", "pods", "state", "said"),
    [
        ("running", [job()], [pod("Running")], "Running", ""),
        ("no Pod yet", [job()], [], "Running", ""),
        (
            "a verdict",
            [job("Complete")],
            [pod("Succeeded", message=json.dumps(report("Pass", "NotWorse")))],
            "Succeeded",
            "",
        ),
        (
            "a retry's verdict after a failed try",
            [job("Complete")],
            [
                pod("Failed", message="Traceback ...\nConnectError: refused", code=1),
                pod("Succeeded", message=json.dumps(report("Pass", "NotWorse"))),
            ],
            "Succeeded",
            "",
        ),
        (
            "failed twice",
            [job("Failed")],
            [pod("Failed", message="replay: --input: HTTP 503", code=2)] * 2,
            "Failed",
            "exit code 2: replay: --input: HTTP 503",
        ),
        (
            "complete without a verdict",
            [job("Complete")],
            [pod("Succeeded", message="")],
            "Failed",
            "no verdict",
        ),
        ("another LeadModel's Pods", [job()], [pod("Failed", job_name="other")], "Running", ""),
    ],
)
def test_runs_of(
    name: str, jobs: list[dict[str, Any]], pods: list[dict[str, Any]], state: str, said: str
) -> None:
    (found,) = replay_gate.runs_of(jobs, pods)
    assert (found.candidate, found.baseline, found.job) == (V2, V1, JOB)
    assert found.state == state
    assert said in found.message
    assert (found.report is not None) == (state == "Succeeded")


def test_a_job_without_its_pair_labels_is_not_a_replay() -> None:
    unlabelled = {"metadata": {"name": "x"}, "status": {}}
    assert replay_gate.runs_of([unlabelled], []) == ()


# The planner ------------------------------------------------------------------------------


def test_without_the_guard_a_candidate_is_promoted_at_once() -> None:
    p = plan.plan(spec(), serving_v1(), NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    assert not p.of(CreateOnce)
    assert not [c for c in p.conditions if c.type == reasons.REPLAYED]
    assert p.status.replay is None


def test_a_candidate_waits_for_its_replay_job() -> None:
    p = plan.plan(GUARDED, serving_v1(), NOW)
    assert not p.of(RollOut)
    (create,) = p.of(CreateOnce)
    assert (create.kind, create.name) == ("Job", JOB)
    labels = create.manifest["metadata"]["labels"]
    assert labels[builders.REPLAY_CANDIDATE] == str(V2)
    assert labels[builders.REPLAY_BASELINE] == str(V1)
    args = create.manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--days") + 1] == "30"
    assert args[args.index("--max-drop") + 1] == "0.02"
    assert args[-2:] == ["--termination-log", builders.TERMINATION_LOG]
    (said,) = [e for e in p.of(EmitEvent) if e.reason == reasons.REPLAYING]
    assert f"Created Job {JOB}" in said.message
    cond = replayed(p)
    assert (cond.status, cond.reason) == (ConditionStatus.UNKNOWN, reasons.REPLAY_RUNNING)
    assert p.status.replay is not None
    assert (p.status.replay.state, p.status.replay.held) == ("Running", True)
    assert ready(p).status is ConditionStatus.TRUE  # V1 serves
    assert f"version {V2} waits for its replay" in ready(p).message
    assert p.requeue_after == replay_gate.POLL_SECONDS


def test_a_restarted_operator_finds_the_same_job() -> None:
    first = plan.plan(GUARDED, serving_v1(), NOW)
    again = plan.plan(GUARDED, serving_v1(run("Running"), status=status_body(first.status)), NOW)
    assert not again.of(CreateOnce)  # the Job of the pair exists
    assert not again.of(RollOut)
    assert replayed(again).reason == reasons.REPLAY_RUNNING
    # Not yet seen (created a moment ago): asked again under the same name; apply takes 409.
    lost = plan.plan(GUARDED, serving_v1(status=status_body(first.status)), NOW)
    (create,) = lost.of(CreateOnce)
    assert create.name == JOB
    events = {e.once_key for e in first.of(EmitEvent) + lost.of(EmitEvent) if e.once_key}
    assert len([k for k in events if "replaying" in k]) == 1


def test_a_pass_promotes() -> None:
    p = plan.plan(GUARDED, serving_v1(run("Succeeded", report("Pass", "NotWorse"))), NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    cond = replayed(p)
    assert (cond.status, cond.reason) == (ConditionStatus.TRUE, reasons.REPLAY_PASSED)
    rec = p.status.replay
    assert rec is not None
    assert (rec.verdict, rec.candidate_auc, rec.baseline_auc) == ("Pass", "0.8031", "0.8034")
    assert rec.held is False


def test_a_worse_candidate_is_not_promoted_and_said_once() -> None:
    obs = serving_v1(run("Succeeded", report("Fail", "ReplayWorse")))
    p = plan.plan(GUARDED, obs, NOW)
    assert not p.of(RollOut)
    assert not p.of(CreateOnce)
    cond = replayed(p)
    assert (cond.status, cond.reason) == (ConditionStatus.FALSE, reasons.REPLAY_WORSE)
    (warning,) = [e for e in p.of(EmitEvent) if e.reason == reasons.REPLAY_WORSE]
    assert warning.type == "Warning"
    assert "0.7712" in warning.message
    assert "0.8034" in warning.message
    assert "[-0.0451, -0.0193]" in warning.message
    assert f"Version {V2} is not promoted" in warning.message
    rec = p.status.replay
    assert rec is not None
    assert (rec.verdict, rec.reason, rec.held) == ("Fail", "ReplayWorse", True)
    assert rec.ci == ["-0.0451", "-0.0193"]
    assert f"version {V2} is not promoted" in ready(p).message
    # The Job goes (its TTL): the verdict stays, no second Job, the same Event key.
    later = plan.plan(GUARDED, serving_v1(status=status_body(p.status)), NOW)
    assert not later.of(CreateOnce)
    assert not later.of(RollOut)
    assert replayed(later).reason == reasons.REPLAY_WORSE
    keys = {e.once_key for e in later.of(EmitEvent) if e.reason == reasons.REPLAY_WORSE}
    assert keys == {warning.once_key}


def test_a_newer_candidate_is_a_new_pair() -> None:
    failed = plan.plan(GUARDED, serving_v1(run("Succeeded", report("Fail", "ReplayWorse"))), NOW)
    obs = world(
        entry(V1), entry(V2), entry(V3), deployment=deployed(V1), status=status_body(failed.status)
    )
    p = plan.plan(GUARDED, obs, NOW)
    (create,) = p.of(CreateOnce)
    assert create.name == builders.replay_job_name("lm", V3, V1) != JOB


@pytest.mark.parametrize(
    ("lm", "promoted", "status"),
    [(GUARDED, True, ConditionStatus.TRUE), (HOLD, False, ConditionStatus.FALSE)],
    ids=["Promote", "Hold"],
)
def test_inconclusive_follows_the_setting(
    lm: LeadModelSpec, promoted: bool, status: ConditionStatus
) -> None:
    p = plan.plan(lm, serving_v1(run("Succeeded", report("Inconclusive", "TooFewLeads"))), NOW)
    assert bool(p.of(RollOut)) is promoted
    cond = replayed(p)
    assert (cond.status, cond.reason) == (status, reasons.REPLAY_INCONCLUSIVE)
    assert "TooFewLeads" in cond.message
    assert ("onInconclusive is Hold" in cond.message) is not promoted


def test_a_failed_job_holds_with_a_warning_and_runs_again_once_gone() -> None:
    obs = serving_v1(run("Failed", message="exit code 1: replay: cannot reach the scorer"))
    p = plan.plan(GUARDED, obs, NOW)
    assert not p.of(RollOut)
    assert not p.of(CreateOnce)  # the failed Job is still there
    cond = replayed(p)
    assert (cond.status, cond.reason) == (ConditionStatus.FALSE, reasons.REPLAY_FAILED)
    assert f"kubectl delete job {JOB}" in cond.message
    (warning,) = [e for e in p.of(EmitEvent) if e.reason == reasons.REPLAY_FAILED]
    assert warning.type == "Warning"
    assert "cannot reach the scorer" in warning.message
    assert p.requeue_after == replay_gate.POLL_SECONDS
    gone = plan.plan(GUARDED, serving_v1(status=status_body(p.status)), NOW)
    (create,) = gone.of(CreateOnce)
    assert create.name == JOB
    (again,) = [e for e in gone.of(EmitEvent) if e.reason == reasons.REPLAYING]
    assert "again" in again.message


def test_a_verdict_about_other_versions_is_no_verdict() -> None:
    wrong = report("Pass", "NotWorse", candidate=V3)
    p = plan.plan(GUARDED, serving_v1(run("Succeeded", wrong)), NOW)
    assert not p.of(RollOut)
    assert replayed(p).reason == reasons.REPLAY_FAILED
    assert f"not {V2} and {V1}" in replayed(p).message


def test_a_first_model_is_not_replayed() -> None:
    p = plan.plan(GUARDED, world(entry(V2)), NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    assert not p.of(CreateOnce)
    cond = replayed(p)
    assert (cond.status, cond.reason) == (ConditionStatus.TRUE, reasons.REPLAY_SKIPPED)
    assert "first model" in cond.message
    # The next candidate, with the skip on record, is replayed against the first model.
    obs = replace(serving_v1(), status=status_body(p.status))
    (create,) = plan.plan(GUARDED, obs, NOW).of(CreateOnce)
    assert create.name == JOB


def test_a_pinned_version_is_a_persons_choice() -> None:
    p = plan.plan(spec(guards={"replay": {}}, modelVersion=str(V2)), serving_v1(), NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    assert replayed(p).reason == reasons.REPLAY_SKIPPED


def test_an_experiments_winner_is_not_replayed() -> None:
    won = experiments.Decision(promote_version=V2)
    held = plan.replay_hold(GUARDED, serving_v1(), plan.Target(V2), won)
    assert held.goal.version == V2
    assert held.decision.condition is not None
    assert held.decision.condition.reason == reasons.REPLAY_SKIPPED
    assert not held.decision.actions


def test_a_rollback_never_replays() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True))
    p = plan.plan(GUARDED, obs, NOW)
    (back,) = p.of(RollBack)
    assert back.version == V1
    assert not p.of(CreateOnce)


def test_the_spec_checks_the_window_and_alpha() -> None:
    assert spec(guards={"replay": {}}).semantic_errors() == []
    errors = spec(
        guards={"replay": {"days": 400, "alpha": "0.3"}}, retention={"outcomeDays": 365}
    ).semantic_errors()
    assert any("guards.replay.days 400 is above retention.outcomeDays 365" in e for e in errors)
    assert any("guards.replay.alpha" in e for e in errors)


def test_the_replay_job_name_fits_a_job_of_the_longest_leadmodel() -> None:
    name = builders.replay_job_name("x" * 39, 9_999_999_999, 9_999_999_998)
    assert len(name) <= 63
    assert builders.replay_job_name("lm", V2, V1) != builders.replay_job_name("lm", V2, V3)
