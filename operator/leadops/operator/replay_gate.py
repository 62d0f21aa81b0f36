"""The replay gate: is a candidate no worse than the serving version on real leads?

Before a candidate takes any traffic, a Job (`builders.replay_job`, on the jobs image: the
operator image has no numpy or xgboost) replays the leads of the last `spec.guards.replay.days`
with a recorded outcome (the scorer's export) through the candidate and the serving version,
and leaves `leadops replay`'s verdict JSON as its Pod's termination message. `runs_of` reads
those Jobs and Pods; `decide` turns the run of the (candidate, serving) pair into the
`Replayed` condition and whether the promotion waits:

    replay of (candidate, serving)           -> condition, promotion
    its Job runs (or is created now)         -> Unknown ReplayRunning, waits
    Pass                                     -> True  ReplayPassed, proceeds
    Fail (worse beyond maxDrop, or PSI)      -> False ReplayWorse | ScoreShift, refused
    Inconclusive, onInconclusive Promote     -> True  ReplayInconclusive, proceeds
    Inconclusive, onInconclusive Hold        -> False ReplayInconclusive, refused
    Job failed (no verdict)                  -> False ReplayFailed, waits; run again when the
                                                Job goes (its TTL, an hour; or a person)
    a first model, an experiment's winner, a pin -> True ReplaySkipped, no Job

One Job per pair, named by it: a restarted operator finds the same Job, and the verdict is
kept in `status.replay`, so it outlives the Job. A newer candidate, or a new serving version,
is a new pair and gets a Job of its own. Pure module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from leadops.operator import builders, conditions, reasons
from leadops.operator.actions import Action, CreateOnce, EmitEvent
from leadops.operator.spec import Condition, LeadModelSpec, OnInconclusive, ReplayStatus
from leadops.operator.world import Observed, ReplayRun

# How soon to look again while a replay runs or its Job failed: Jobs are not watched.
POLL_SECONDS = 10.0
# How much of a failed run's message (the log's last lines) the status keeps.
MESSAGE_LIMIT = 300
RUNNING, SUCCEEDED, FAILED, SKIPPED = "Running", "Succeeded", "Failed", "Skipped"
PASS, FAIL, INCONCLUSIVE = "Pass", "Fail", "Inconclusive"  # leadops.stats.replay.Verdict


def pair_of(labels: Mapping[str, Any]) -> tuple[int, int] | None:
    try:
        return int(labels[builders.REPLAY_CANDIDATE]), int(labels[builders.REPLAY_BASELINE])
    except (KeyError, TypeError, ValueError):
        return None


def _job_state(job: Mapping[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in {"Complete", "Failed"}:
            return SUCCEEDED if c["type"] == "Complete" else FAILED
    return RUNNING


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    mine = [c for c in statuses if c.get("name") == builders.REPLAY_COMPONENT] or statuses
    ended: Mapping[str, Any] = ((mine[0] if mine else {}).get("state") or {}).get(
        "terminated"
    ) or {}
    return ended


def report_of(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The verdict a succeeded replay Pod left as its termination message."""
    if (pod.get("status") or {}).get("phase") != "Succeeded":
        return None
    try:
        found = json.loads(str(_terminated(pod).get("message") or ""))
    except ValueError:
        return None
    return found if isinstance(found, dict) and found.get("verdict") else None


def _failure(pod: Mapping[str, Any]) -> str:
    ended = _terminated(pod)
    code = ended.get("exitCode")
    why = ", ".join(
        p for p in (str(ended.get("reason") or ""), f"exit code {code}" if code else "") if p
    )
    message = str(ended.get("message") or "").strip()
    if message:
        why += (": " if why else "") + message.splitlines()[-1][-MESSAGE_LIMIT:]
    return why


def runs_of(
    jobs: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]
) -> tuple[ReplayRun, ...]:
    """Each replay Job with its Pods' result (Pods of a Job not given are left out)."""
    out = []
    for job in jobs:
        meta = job.get("metadata") or {}
        pair = pair_of(meta.get("labels") or {})
        if pair is None:
            continue
        name = str(meta.get("name") or "")
        own = [
            p
            for p in pods
            if ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == name
        ]
        own.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
        state = _job_state(job)
        report = next((r for p in own if (r := report_of(p)) is not None), None)
        failed = [p for p in own if (p.get("status") or {}).get("phase") == "Failed"]
        message = _failure(failed[-1]) if failed else ""
        if state == SUCCEEDED and report is None:
            state, message = FAILED, "its Pod left no verdict in its termination message"
        if state == FAILED and not message:
            conds = (job.get("status") or {}).get("conditions") or []
            message = next(
                (str(c.get("message") or c.get("reason") or "") for c in conds
                 if c.get("type") == "Failed"),
                "",
            )  # fmt: skip
        ended = next((str(_terminated(p).get("finishedAt") or "") for p in reversed(own)), "")
        out.append(
            ReplayRun(
                job=name,
                uid=str(meta.get("uid") or ""),
                candidate=pair[0],
                baseline=pair[1],
                state=SUCCEEDED if report is not None else state,
                report=report,
                message=message,
                finished_at=ended,
            )
        )
    return tuple(out)


def remembered(status: Mapping[str, Any]) -> ReplayStatus | None:
    """The replay a previous pass recorded (its Job may be gone by now)."""
    found = status.get("replay")
    if not isinstance(found, Mapping):
        return None
    try:
        return ReplayStatus.model_validate(found)
    except ValidationError:
        return None


def _text(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else ""


def record_of(run: ReplayRun) -> ReplayStatus:
    """What status.replay keeps of a run."""
    base = ReplayStatus(
        candidate=str(run.candidate),
        baseline=str(run.baseline),
        job=run.job,
        state=run.state,
        finished_at=run.finished_at,
    )
    if run.state == FAILED:
        return base.model_copy(update={"reason": "JobFailed", "message": run.message})
    report = run.report
    if report is None:
        return base
    said_c = (report.get("candidate") or {}).get("version")
    said_b = (report.get("baseline") or {}).get("version")
    if (said_c, said_b) != (run.candidate, run.baseline):
        return base.model_copy(
            update={
                "state": FAILED,
                "reason": "JobFailed",
                "message": f"it replayed versions {said_c} and {said_b}, not "
                f"{run.candidate} and {run.baseline}",
            }
        )
    ci = report.get("ci") or []
    return base.model_copy(
        update={
            "verdict": str(report.get("verdict") or ""),
            "reason": str(report.get("reason") or ""),
            "message": str(report.get("message") or "")[:1024],
            "candidate_auc": _text((report.get("candidate") or {}).get("auc")),
            "baseline_auc": _text((report.get("baseline") or {}).get("auc")),
            "difference": _text(report.get("difference")),
            "ci": [_text(v) for v in ci] if len(ci) == 2 else [],
            "confidence": _text(report.get("confidence"), 2),
            "leads": int(report.get("leads") or 0),
            "conversions": int(report.get("conversions") or 0),
            "score_psi": _text(report.get("score_psi")),
        }
    )


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one pass: hold the promotion or not, and what to say."""

    held: bool = False
    condition: Condition | None = None
    actions: tuple[Action, ...] = ()
    status: ReplayStatus | None = None
    requeue_after: float | None = None
    # Ready's message gains this while the promotion waits or is refused.
    said: str = field(default="", compare=False)


def _pair(rec: ReplayStatus) -> str:
    return f"version {rec.candidate} against serving version {rec.baseline}"


def _no_verdict(rec: ReplayStatus) -> tuple[Condition, bool] | None:
    """The condition of a record without a verdict: skipped, running or failed."""
    replayed = reasons.REPLAYED
    if rec.state == SKIPPED:
        return conditions.true(replayed, reasons.REPLAY_SKIPPED, rec.message), False
    if rec.state == RUNNING:
        return conditions.unknown(
            replayed,
            reasons.REPLAY_RUNNING,
            f"Job {rec.job} replays {_pair(rec)}; the promotion waits for its verdict",
        ), True
    if rec.state == FAILED:
        return conditions.false(
            replayed,
            reasons.REPLAY_FAILED,
            f"Job {rec.job} replaying {_pair(rec)} failed ({rec.message or 'see its Pod'}): "
            f"kubectl logs job/{rec.job}; the promotion waits; it runs again once the Job is "
            f"gone (an hour after it failed, or now: kubectl delete job {rec.job})",
        ), True
    return None


def condition_of(rec: ReplayStatus, on_inconclusive: OnInconclusive) -> tuple[Condition, bool]:
    """The Replayed condition a record means, and whether it holds the promotion."""
    replayed = reasons.REPLAYED
    early = _no_verdict(rec)
    if early is not None:
        return early
    said = f"replay of {_pair(rec)}: {rec.message}"
    if rec.verdict == PASS:
        return conditions.true(replayed, reasons.REPLAY_PASSED, said), False
    if rec.verdict == FAIL:
        why = reasons.SCORE_SHIFT if rec.reason == reasons.SCORE_SHIFT else reasons.REPLAY_WORSE
        return conditions.false(replayed, why, f"{said}; not promoted"), True
    if on_inconclusive is OnInconclusive.PROMOTE:
        return conditions.true(
            replayed,
            reasons.REPLAY_INCONCLUSIVE,
            f"{said} ({rec.reason}); promoted anyway: spec.guards.replay.onInconclusive is "
            "Promote (the static gates passed)",
        ), False
    return conditions.false(
        replayed,
        reasons.REPLAY_INCONCLUSIVE,
        f"{said} ({rec.reason}); held: spec.guards.replay.onInconclusive is Hold (a newer "
        "candidate is replayed again; Promote lets this one pass)",
    ), True


def _events(
    obs: Observed, rec: ReplayStatus, cond: Condition, run: ReplayRun | None
) -> list[Action]:
    """One Event per verdict of a pair (named by it, so a restart never says it twice)."""
    key = f"{obs.uid}/replay/{rec.candidate}-{rec.baseline}"
    if rec.state == RUNNING:
        return []
    if rec.state == FAILED:
        return [
            EmitEvent(
                "Warning",
                reasons.REPLAY_FAILED,
                cond.message,
                once_key=f"{key}/failed/{run.uid if run is not None else rec.job}",
            )
        ]
    if cond.reason in {reasons.REPLAY_WORSE, reasons.SCORE_SHIFT}:
        ci = f"[{', '.join(rec.ci)}]" if rec.ci else "(none)"
        return [
            EmitEvent(
                "Warning",
                cond.reason,
                f"Version {rec.candidate} is not promoted: on {rec.leads} replayed leads its "
                f"AUC is {rec.candidate_auc} against {rec.baseline_auc} for serving version "
                f"{rec.baseline} (difference {rec.difference}, {rec.confidence} CI {ci}; "
                f"score PSI {rec.score_psi or 'n/a'}): {rec.message}",
                once_key=f"{key}/{rec.verdict}",
            )
        ]
    return [
        EmitEvent(
            "Normal" if cond.status.value == "True" else "Warning",
            cond.reason,
            cond.message,
            once_key=f"{key}/{rec.verdict}/{cond.status.value}",
        )
    ]


def decide(lm: LeadModelSpec, obs: Observed, candidate: int | None, *, skip: str = "") -> Decision:
    """The gate for a promotion to `candidate` (None: nothing is being promoted; `skip`: why
    this promotion needs no replay)."""
    guard = lm.guards.replay
    if guard is None:
        return Decision()
    before = remembered(obs.status)
    current = obs.deployment.version
    if candidate is not None and skip:
        rec = ReplayStatus(
            candidate=str(candidate), baseline=str(current or ""), state=SKIPPED, message=skip
        )
        return Decision(condition=condition_of(rec, guard.on_inconclusive)[0], status=rec)
    if candidate is None or current is None:
        # Nothing is promoted now: the last replay is still what the condition says.
        status = before.model_copy(update={"held": False}) if before is not None else None
        if before is None or before.state == RUNNING:
            return Decision(status=status)
        return Decision(condition=condition_of(before, guard.on_inconclusive)[0], status=status)
    pair = (candidate, current)
    run = next((r for r in obs.replay_runs if (r.candidate, r.baseline) == pair), None)
    mine = before is not None and (before.candidate, before.baseline) == tuple(map(str, pair))
    known = before if mine else None
    actions: list[Action] = []
    if run is not None and run.state != RUNNING:
        rec = record_of(run)
    elif known is not None and known.state == SUCCEEDED:
        rec = known  # its Job is gone; the verdict stays
    elif run is not None:
        rec = record_of(run)
    else:  # no Job for the pair (none yet, or a failed one deleted): run one
        manifest = builders.replay_job(
            obs.owner,
            lm,
            candidate=(candidate, _digest(obs, candidate)),
            baseline=(current, _digest(obs, current) or obs.deployment.digest),
            objects=obs.objects,
            jobs=obs.jobs_image,
        )
        name = manifest["metadata"]["name"]
        again = known.finished_at if known is not None and known.state == FAILED else ""
        actions += [
            CreateOnce(manifest=manifest, kind="Job", name=name),
            EmitEvent(
                "Normal",
                reasons.REPLAYING,
                f"Created Job {name}: replaying version {candidate} against serving version "
                f"{current} on the leads of the last {guard.days} days with a known outcome"
                + (" (again: the last run failed)" if again else ""),
                once_key=f"{obs.uid}/replaying/{name}/{again}",
            ),
        ]
        rec = ReplayStatus(candidate=str(candidate), baseline=str(current), job=name, state=RUNNING)
    cond, held = condition_of(rec, guard.on_inconclusive)
    actions += _events(obs, rec, cond, run)
    waits = rec.state in {RUNNING, FAILED}
    said = (
        f"version {candidate} waits for its replay (Replayed {cond.reason})"
        if waits
        else f"version {candidate} is not promoted: Replayed {cond.reason}"
        if held
        else ""
    )
    return Decision(
        held=held,
        condition=cond,
        actions=tuple(actions),
        status=rec.model_copy(update={"held": held}),
        requeue_after=POLL_SECONDS if waits else None,
        said=said,
    )


def _digest(obs: Observed, version: int) -> str:
    entry = obs.entry(version)
    return entry.facts.digest if entry is not None and entry.facts is not None else ""
