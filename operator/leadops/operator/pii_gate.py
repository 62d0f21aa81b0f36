"""The PII gate: is the Redis history scrubbed recently enough to promote a new version?

`run_of(pod)` reads one PII-backfill run from its Pod (phase, exit code, and the JSON summary
the run leaves as its termination message: the Job holds no API rights to report it);
`judge(lm, observed, now)` turns the newest run into the `PiiCompliant` condition:

    newest finished run          -> condition
    Succeeded, fresh             -> True  BackfillSucceeded
    Failed (no summary: killed)  -> False BackfillFailed
    Incomplete (stopped early, or some keys failed) -> False BackfillIncomplete
    older than 2 x the schedule's period            -> False BackfillStale
    none, LeadModel older than one period           -> False NoBackfillResult
    none, LeadModel younger than one period         -> Unknown NotYetDue

Dry runs scrub nothing and count neither way. The newest result is also kept in
`status.piiGate.lastRun`, so it outlives its Job (deleted a day after it ends). The planner
holds promotions while the condition is False (rollbacks never wait); see plan.pii_hold.
Pure module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from leadops.operator import conditions, cron_period, reasons
from leadops.operator.conditions import rfc3339
from leadops.operator.spec import (
    BackfillResult,
    Condition,
    ConditionStatus,
    LeadModelSpec,
    PiiBackfillRun,
)
from leadops.operator.world import Observed

# A person lets promotions pass a closed gate: `leadops.io/pii-gate-override: <reason>`.
OVERRIDE_ANNOTATION = "leadops.io/pii-gate-override"
# The backfill Pods' component label (builders.backfill_cronjob) and container name.
COMPONENT = "pii-backfill"
# How soon to look again while a promotion waits: backfill Pods are not watched.
HOLD_POLL_SECONDS = 15.0
# How much of a failed run's message (the log's last lines) the status keeps.
MESSAGE_LIMIT = 300


def _time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary(message: str) -> Mapping[str, Any] | None:
    try:
        found = json.loads(message)
    except ValueError:
        return None
    return found if isinstance(found, dict) and "complete" in found else None


def _count(summary: Mapping[str, Any], key: str) -> int:
    value = summary.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


def is_dry_run(pod: Mapping[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    return any("--dry-run" in (c.get("args") or []) for c in containers)


def is_job_pod(pod: Mapping[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("kind") == "Job" for ref in refs)


def run_of(pod: Mapping[str, Any]) -> PiiBackfillRun | None:
    """The finished, real (not dry) run a backfill Pod records; None while it runs."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase not in {"Succeeded", "Failed"} or is_dry_run(pod) or not is_job_pod(pod):
        return None
    meta = pod.get("metadata") or {}
    statuses = status.get("containerStatuses") or []
    fallback: Mapping[str, Any] = statuses[0] if statuses else {}
    container = next((c for c in statuses if c.get("name") == COMPONENT), fallback)
    ended = (container.get("state") or {}).get("terminated") or {}
    message = str(ended.get("message") or "").strip()
    summary = _summary(message)
    if summary is not None and summary.get("dry_run") is True:
        return None
    finished = str(ended.get("finishedAt") or (summary or {}).get("finished_at") or "")
    if _time(finished) is None:
        finished = str(meta.get("creationTimestamp") or "")
    exit_code = ended.get("exitCode")
    code = exit_code if isinstance(exit_code, int) else (0 if phase == "Succeeded" else 1)
    if summary is not None:
        errors = _count(summary, "errors")
        result = (
            BackfillResult.INCOMPLETE
            if summary.get("complete") is not True or errors > 0
            else BackfillResult.SUCCEEDED
            if phase == "Succeeded"
            else BackfillResult.FAILED
        )
        said = (
            "it stopped before the end"
            if summary.get("complete") is not True
            else f"{errors} keys failed"
            if errors
            else ""
        )
        return PiiBackfillRun(
            pod=str(meta.get("name") or ""),
            result=result,
            finished_at=finished,
            exit_code=code,
            scanned_keys=_count(summary, "scanned_keys"),
            redacted_items=_count(summary, "redacted_items"),
            errors=errors,
            message=said,
        )
    # No summary: a run that never got to write one (killed, crashed, Redis unreachable), or
    # one that ended well before summaries went to the termination message (exit 0: done).
    why = ", ".join(p for p in (str(ended.get("reason") or ""), f"exit code {code}") if p)
    if message:
        why += ": " + message.splitlines()[-1][-MESSAGE_LIMIT:]
    return PiiBackfillRun(
        pod=str(meta.get("name") or ""),
        result=BackfillResult.SUCCEEDED if phase == "Succeeded" else BackfillResult.FAILED,
        finished_at=finished,
        exit_code=code,
        message="" if phase == "Succeeded" else why,
    )


def is_running(pod: Mapping[str, Any]) -> bool:
    """A real (not dry) backfill run that has not ended."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in {"Pending", "Running"} and not is_dry_run(pod) and is_job_pod(pod)


def span(seconds: float) -> str:
    """7d, 1d12h, 1h, 15m: a period in words a person reads at a glance."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return "".join(parts) or "0m"


@dataclass(frozen=True)
class Gate:
    """The gate's verdict: the condition, the run it rests on, the schedule's period."""

    condition: Condition
    last_run: PiiBackfillRun | None
    period_seconds: int
    stale_at: str = ""

    @property
    def closed(self) -> bool:
        return self.condition.status is ConditionStatus.FALSE


def remembered(status: Mapping[str, Any]) -> PiiBackfillRun | None:
    """The last run a previous pass recorded (its Pod may be gone by now)."""
    gate = status.get("piiGate")
    found = gate.get("lastRun") if isinstance(gate, Mapping) else None
    if not isinstance(found, Mapping):
        return None
    try:
        return PiiBackfillRun.model_validate(found)
    except ValidationError:
        return None


def newest(runs: tuple[PiiBackfillRun, ...]) -> PiiBackfillRun | None:
    """The run that ended last; on a tie (same second) a failure, the safe reading."""
    dated = [
        (t, r.result is not BackfillResult.SUCCEEDED, r)
        for r in runs
        if (t := _time(r.finished_at)) is not None
    ]
    return max(dated, key=lambda d: d[:2])[2] if dated else None


def judge(lm: LeadModelSpec, obs: Observed, now: datetime) -> Gate:
    """PiiCompliant from the newest finished backfill run (Pods, else the status' record)."""
    period = cron_period.period_seconds(lm.pii_backfill.schedule)
    period_s = int(period or 0)
    before = remembered(obs.status)
    last = newest(obs.backfill_runs + ((before,) if before is not None else ()))
    running = f"; backfill {obs.backfill_running[0]} is running now" if obs.backfill_running else ""
    rerun = f"leadops backfill {obs.name}"
    if last is None:
        return _no_result(lm, obs, now, period, running)
    finished = _time(last.finished_at)
    assert finished is not None  # newest() keeps only dated runs
    stale = finished + timedelta(seconds=2 * period) if period else None
    stale_at = rfc3339(stale) if stale is not None else ""
    where = f"backfill {last.pod} ({last.finished_at})"
    if last.result is BackfillResult.FAILED:
        cond = conditions.false(
            reasons.PII_COMPLIANT,
            reasons.BACKFILL_FAILED,
            f"{where} failed ({last.message}): kubectl logs {last.pod}; a successful run "
            f"opens the gate ({rerun}){running}",
        )
    elif last.result is BackfillResult.INCOMPLETE:
        cond = conditions.false(
            reasons.PII_COMPLIANT,
            reasons.BACKFILL_INCOMPLETE,
            f"{where} is incomplete: {last.message}; a complete run opens the gate "
            f"({rerun}){running}",
        )
    elif stale is not None and now > stale:
        cond = conditions.false(
            reasons.PII_COMPLIANT,
            reasons.BACKFILL_STALE,
            f"the last successful {where} is older than twice the schedule's period "
            f"({span(2 * period_s)} of {lm.pii_backfill.schedule!r}){_paused(lm)}: {rerun}"
            f"{running}",
        )
    else:
        cond = conditions.true(
            reasons.PII_COMPLIANT,
            reasons.BACKFILL_SUCCEEDED,
            f"{where} succeeded: {last.scanned_keys} keys scanned, {last.redacted_items} "
            f"values redacted" + (f"; stale after {stale_at}" if stale_at else ""),
        )
    return Gate(cond, last, period_s, stale_at)


def _paused(lm: LeadModelSpec) -> str:
    said = []
    if lm.pii_backfill.suspend:
        said.append("spec.piiBackfill.suspend is true")
    if lm.pii_backfill.dry_run:
        said.append("spec.piiBackfill.dryRun: its runs scrub nothing")
    return f" ({'; '.join(said)})" if said else ""


def _no_result(
    lm: LeadModelSpec, obs: Observed, now: datetime, period: float | None, running: str
) -> Gate:
    period_s = int(period or 0)
    # No creation time only in hand-built worlds (the API server always sets one): as young.
    due = obs.created + timedelta(seconds=period) if obs.created and period else None
    if obs.created is None or (due is not None and now < due):
        when = f" by {rfc3339(due)}" if due is not None else ""
        cond = conditions.unknown(
            reasons.PII_COMPLIANT,
            reasons.NOT_YET_DUE,
            f"no PII backfill has finished yet; the first is due{when} (one period of "
            f"{lm.pii_backfill.schedule!r} after the LeadModel was created){running}",
        )
        return Gate(cond, None, period_s)
    never = " (the schedule never runs)" if period is None else ""
    cond = conditions.false(
        reasons.PII_COMPLIANT,
        reasons.NO_BACKFILL_RESULT,
        f"no PII backfill result is known and one was due{never}{_paused(lm)}: run one: "
        f"leadops backfill {obs.name}{running}",
    )
    return Gate(cond, None, period_s)
