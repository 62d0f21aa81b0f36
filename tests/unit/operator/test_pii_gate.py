"""The PII gate as tables: a backfill Pod -> its run; runs x LeadModel age x clock ->
PiiCompliant; the planner holding promotions (never rollbacks) and the override."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from leadops.operator import builders, conditions, pii_gate, plan, reasons
from leadops.operator.actions import EmitEvent, Plan, RollBack, RollOut, status_body
from leadops.operator.spec import BackfillResult, ConditionStatus, PiiBackfillRun
from leadops.operator.world import Observed

from .worlds import NOW, V1, V2, deployed, entry, spec, world

FINISHED = "2026-11-26T10:00:00Z"  # two hours before NOW
WEEK = 7 * 86400


def summary(**kw: Any) -> str:
    base = {"complete": True, "dry_run": False, "scanned_keys": 40, "redacted_items": 12}
    return json.dumps({**base, "errors": 0, "finished_at": FINISHED, **kw})


def pod(
    phase: str,
    *,
    name: str = "lm-pii-backfill-29000-abcde",
    message: str = "",
    exit_code: int | None = None,
    finished: str = FINISHED,
    args: tuple[str, ...] = ("pii-backfill", "--pattern", "mem:*"),
    reason: str = "",
    job: bool = True,
) -> dict[str, Any]:
    terminated: dict[str, Any] = {"finishedAt": finished, "message": message}
    if exit_code is not None:
        terminated["exitCode"] = exit_code
    if reason:
        terminated["reason"] = reason
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": "2026-11-26T09:59:00Z",
            "ownerReferences": [{"kind": "Job", "name": "lm-pii-backfill-29000"}] if job else [],
        },
        "spec": {"containers": [{"name": "pii-backfill", "args": list(args)}]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "pii-backfill", "state": {"terminated": terminated}}
                if phase in {"Succeeded", "Failed"}
                else {"name": "pii-backfill", "state": {"running": {}}}
            ],
        },
    }


@pytest.mark.parametrize(
    ("name", "given", "result", "said"),
    [
        ("success with its summary", pod("Succeeded", message=summary(), exit_code=0), "S", ""),
        (
            "stopped early (Redis lost)",
            pod("Failed", message=summary(complete=False), exit_code=1),
            "I",
            "stopped before the end",
        ),
        (
            "some keys failed",
            pod("Failed", message=summary(errors=3), exit_code=1),
            "I",
            "3 keys failed",
        ),
        (
            "killed: no summary, the log's last line",
            pod("Failed", message="scanning...\nKilled", exit_code=137, reason="Error"),
            "F",
            "Error, exit code 137: Killed",
        ),
        ("exit 0 without a summary: done", pod("Succeeded", exit_code=0), "S", ""),
        ("still running", pod("Running"), None, ""),
        ("a dry run by its args", pod("Succeeded", args=("--dry-run",), exit_code=0), None, ""),
        (
            "a dry run by its summary",
            pod("Succeeded", message=summary(dry_run=True), exit_code=0),
            None,
            "",
        ),
        ("not a Job's Pod", pod("Succeeded", exit_code=0, job=False), None, ""),
    ],
)
def test_run_of(name: str, given: dict[str, Any], result: str | None, said: str) -> None:
    run = pii_gate.run_of(given)
    if result is None:
        assert run is None
        return
    assert run is not None
    assert run.result.value[0] == result
    assert run.finished_at == FINISHED
    assert said in run.message


def test_a_run_without_finish_time_dates_from_its_pod() -> None:
    run = pii_gate.run_of(pod("Failed", exit_code=1, finished=""))
    assert run is not None
    assert run.finished_at == "2026-11-26T09:59:00Z"


def run(result: BackfillResult, *, hours_ago: float = 2, name: str = "p") -> PiiBackfillRun:
    at = conditions.rfc3339(NOW - timedelta(hours=hours_ago))
    return PiiBackfillRun(pod=name, result=result, finished_at=at)


OK, FAILED, PART = BackfillResult.SUCCEEDED, BackfillResult.FAILED, BackfillResult.INCOMPLETE


def aged(obs: Observed, *, days: float = 30, **kw: Any) -> Observed:
    return replace(obs, created=NOW - timedelta(days=days), **kw)


@pytest.mark.parametrize(
    ("name", "obs", "status", "reason"),
    [
        ("fresh success", aged(world(), backfill_runs=(run(OK),)), "True", "BackfillSucceeded"),
        ("failed", aged(world(), backfill_runs=(run(FAILED),)), "False", "BackfillFailed"),
        ("incomplete", aged(world(), backfill_runs=(run(PART),)), "False", "BackfillIncomplete"),
        (
            "a success after a failure opens it",
            aged(world(), backfill_runs=(run(FAILED, hours_ago=3), run(OK, hours_ago=1))),
            "True",
            "BackfillSucceeded",
        ),
        (
            "a failure after a success closes it",
            aged(world(), backfill_runs=(run(OK, hours_ago=3), run(FAILED, hours_ago=1))),
            "False",
            "BackfillFailed",
        ),
        (
            "success older than two weekly periods",
            aged(world(), backfill_runs=(run(OK, hours_ago=24 * 14 + 1),)),
            "False",
            "BackfillStale",
        ),
        (
            "success within two weekly periods",
            aged(world(), backfill_runs=(run(OK, hours_ago=24 * 13),)),
            "True",
            "BackfillSucceeded",
        ),
        ("no result, old LeadModel", aged(world()), "False", "NoBackfillResult"),
        ("no result, LeadModel 3 days old", aged(world(), days=3), "Unknown", "NotYetDue"),
        (
            "the status remembers a run whose Pod is gone",
            aged(
                world(status={"piiGate": {"lastRun": run(FAILED).model_dump(by_alias=True)}}),
            ),
            "False",
            "BackfillFailed",
        ),
        (
            "a newer Pod beats the remembered run",
            aged(
                world(
                    status={
                        "piiGate": {"lastRun": run(FAILED, hours_ago=5).model_dump(by_alias=True)}
                    }
                ),
                backfill_runs=(run(OK, hours_ago=1),),
            ),
            "True",
            "BackfillSucceeded",
        ),
        (
            "same second: the failure counts",
            aged(world(), backfill_runs=(run(OK, name="a"), run(FAILED, name="b"))),
            "False",
            "BackfillFailed",
        ),
    ],
)
def test_judge(name: str, obs: Observed, status: str, reason: str) -> None:
    gate = pii_gate.judge(spec(), obs, NOW)
    assert (gate.condition.status.value, gate.condition.reason) == (status, reason)
    assert gate.period_seconds == WEEK
    assert gate.closed == (status == "False")


def test_judge_says_how_to_reopen_and_when_it_goes_stale() -> None:
    failed = pii_gate.judge(spec(), aged(world(), backfill_runs=(run(FAILED),)), NOW)
    assert "kubectl logs p" in failed.condition.message
    assert "leadops backfill lm" in failed.condition.message
    ok = pii_gate.judge(spec(), aged(world(), backfill_runs=(run(OK),)), NOW)
    assert ok.stale_at == "2026-12-10T10:00:00Z"
    suspended = spec(piiBackfill={"suspend": True})
    stale = pii_gate.judge(suspended, aged(world(), backfill_runs=(run(OK, hours_ago=400),)), NOW)
    assert "spec.piiBackfill.suspend is true" in stale.condition.message
    running = pii_gate.judge(
        spec(), aged(world(), backfill_runs=(run(FAILED),), backfill_running=("q",)), NOW
    )
    assert "backfill q is running now" in running.condition.message


# The planner ----------------------------------------------------------------------------


def closed(obs: Observed) -> Observed:
    """A month-old LeadModel whose last backfill was killed."""
    return aged(obs, backfill_runs=(run(FAILED),))


def pii(p: Plan) -> Any:
    return next(c for c in p.conditions if c.type == reasons.PII_COMPLIANT)


def test_a_promotion_waits_while_the_gate_is_closed() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V1)))
    p = plan.plan(spec(), obs, NOW)
    assert not p.of(RollOut)
    assert pii(p).status is ConditionStatus.FALSE
    assert pii(p).reason == reasons.BACKFILL_FAILED
    assert p.status.pii_gate is not None
    assert p.status.pii_gate.held_version == str(V2)
    assert p.status.serving_version == str(V1)
    (warning,) = [e for e in p.of(EmitEvent) if e.reason == reasons.BACKFILL_FAILED]
    assert warning.type == "Warning"
    assert f"Promotion of version {V2} waits" in warning.message
    assert pii_gate.OVERRIDE_ANNOTATION in warning.message
    ready = next(c for c in p.conditions if c.type == reasons.READY)
    assert ready.status is ConditionStatus.TRUE  # V1 still serves
    assert f"version {V2} waits for the PII gate" in ready.message
    assert p.requeue_after == pii_gate.HOLD_POLL_SECONDS


def test_the_wait_is_said_once() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V1)))
    first = plan.plan(spec(), obs, NOW)
    again = plan.plan(spec(), replace(obs, status=status_body(first.status)), NOW)
    assert not [e for e in again.of(EmitEvent) if e.reason == reasons.BACKFILL_FAILED]
    assert not again.of(RollOut)


def test_a_successful_run_releases_the_promotion() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V1)))
    held = plan.plan(spec(), obs, NOW)
    later = replace(
        obs,
        status=status_body(held.status),
        backfill_runs=(run(FAILED, hours_ago=2), run(OK, hours_ago=1)),
    )
    p = plan.plan(spec(), later, NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    assert pii(p).reason == reasons.BACKFILL_SUCCEEDED
    assert p.status.pii_gate is not None
    assert p.status.pii_gate.held_version == ""


@pytest.mark.parametrize(
    ("name", "obs", "lm"),
    [
        ("first promotion: nothing serves", closed(world(entry(V2))), spec()),
        (
            "a pin to an older version is a rollback",
            closed(world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1))),
            spec(modelVersion=str(V1)),
        ),
        (
            "LeadModel younger than one period, no result yet",
            aged(world(entry(V1), entry(V2), deployment=deployed(V1)), days=2),
            spec(),
        ),
        (
            "a fresh successful run",
            aged(world(entry(V1), entry(V2), deployment=deployed(V1)), backfill_runs=(run(OK),)),
            spec(),
        ),
    ],
)
def test_what_never_waits(name: str, obs: Observed, lm: Any) -> None:
    p = plan.plan(lm, obs, NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == (V1 if "older" in name else V2)


def test_a_pin_to_a_newer_version_is_a_promotion_and_waits() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V1)))
    p = plan.plan(spec(promotion="Manual", modelVersion=str(V2)), obs, NOW)
    assert not p.of(RollOut)
    assert p.status.pii_gate is not None
    assert p.status.pii_gate.held_version == str(V2)


def test_a_failed_rollout_rolls_back_whatever_the_gate_says() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True)))
    p = plan.plan(spec(), obs, NOW)
    (back,) = p.of(RollBack)
    assert back.version == V1
    assert pii(p).status is ConditionStatus.FALSE


def test_the_override_lets_the_promotion_pass_and_is_recorded() -> None:
    obs = closed(world(entry(V1), entry(V2), deployment=deployed(V1)))
    why = "OPS-42: history scrubbed by hand"
    overridden = replace(obs, annotations={pii_gate.OVERRIDE_ANNOTATION: why})
    p = plan.plan(spec(), overridden, NOW)
    (roll,) = p.of(RollOut)
    assert roll.version == V2
    assert pii(p).status is ConditionStatus.FALSE
    assert pii(p).reason == reasons.OVERRIDDEN
    assert why in pii(p).message
    gate = p.status.pii_gate
    assert gate is not None
    assert gate.override == why
    assert gate.last_override is not None
    assert (gate.last_override.version, gate.last_override.reason) == (str(V2), why)
    assert gate.last_override.gate_reason == reasons.BACKFILL_FAILED
    (event,) = [e for e in p.of(EmitEvent) if e.reason == reasons.PII_GATE_OVERRIDDEN]
    assert event.type == "Warning"
    assert why in event.message
    assert event.once_key
    # The record outlives the move and the annotation.
    after = replace(
        obs,
        status=status_body(p.status),
        deployment=deployed(V2, previous=V1),
    )
    kept = plan.plan(spec(), after, NOW).status.pii_gate
    assert kept is not None
    assert kept.override == ""
    assert kept.last_override == gate.last_override


def test_no_gate_no_requeue() -> None:
    obs = aged(world(entry(V1), deployment=deployed(V1)), backfill_runs=(run(OK),))
    assert plan.plan(spec(), obs, NOW).requeue_after is None


def test_the_backfill_cronjob_reports_through_its_termination_message() -> None:
    lm = spec()
    cronjob = builders.backfill_cronjob(builders.Owner("lm", "ns", "uid-1"), lm)
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["args"][-2:] == ["--termination-log", "/dev/termination-log"]
