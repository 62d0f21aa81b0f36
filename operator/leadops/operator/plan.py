"""Decide, purely: `plan(spec, observed, now) -> Plan`.

No API client, no clock of its own, no I/O. The plan is a tuple of small action values that
`apply.py` executes idempotently, plus the conditions and status to write. Everything the
decision needs is in the world (registry ConfigMaps and the scorer Deployment's annotations),
so a restarted operator makes the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from leadops.operator import builders, gates, reasons, registry
from leadops.operator.conditions import Cond, rfc3339, stamp
from leadops.operator.observed import Observed
from leadops.operator.registry import Entry
from leadops.operator.spec import LeadModelSpec, Promotion

# How soon to look again while a rollout is in flight.
ROLLOUT_POLL_SECONDS = 3.0


# Actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ensure:
    """Create or patch a child to match `manifest` (by kind and name)."""

    manifest: Mapping[str, Any] = field(compare=False)
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class EnsureCronJob(Ensure):
    pass


@dataclass(frozen=True)
class EnsureDeployment(Ensure):
    pass


@dataclass(frozen=True)
class RollOut:
    """Point the scorer Deployment at `version` (registry ConfigMap), replacing `previous`."""

    version: int
    previous: int | None
    manifest: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class RollBack:
    """Return the scorer to `version` after `failed` went bad (None: back to no model)."""

    version: int | None
    failed: int
    reason: str
    manifest: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class MarkVersion:
    """Add history annotations to a registry ConfigMap (its data stays immutable)."""

    name: str
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class GarbageCollect:
    names: tuple[str, ...]


@dataclass(frozen=True)
class RemoveChild:
    """Delete a child this LeadModel no longer wants (e.g. its PrometheusRule, rules off)."""

    kind: str
    name: str


@dataclass(frozen=True)
class EmitEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


Action = Ensure | RollOut | RollBack | MarkVersion | GarbageCollect | RemoveChild | EmitEvent


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    conditions: tuple[Cond, ...]
    status: Mapping[str, Any] = field(compare=False)
    requeue_after: float | None = None

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


# Decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    version: int | None
    ready: Cond | None = None  # set when the target is blocked


def verdict_of(
    entry: Entry, lm: LeadModelSpec, obs: Observed, now: datetime, *, pinned: bool = False
) -> gates.Verdict:
    facts = entry.facts or gates.ArtifactFacts(
        version=entry.version, load_error=reasons.CORRUPT_ARTIFACT, load_message="not decoded"
    )
    inp = gates.GateInput(
        facts=facts, gates=lm.gates, now=now, signing_key_configured=obs.signing_key_configured
    )
    return gates.evaluate(inp, chain=gates.PINNED_CHAIN if pinned else gates.CHAIN)


def _serving(obs: Observed) -> int | None:
    """The version whose Pods take traffic now (old Pods serve until new ones are ready)."""
    d = obs.deployment
    if d.complete:
        return d.version
    if d.kind == builders.ROLLOUT_BACK:
        return d.version
    return d.previous


def _choose_target(lm: LeadModelSpec, obs: Observed, now: datetime) -> _Target:  # noqa: PLR0911
    current = obs.deployment.version
    pin = lm.pinned_version
    if pin is not None:
        entry = obs.entry(pin)
        if entry is None:
            return _Target(
                current,
                Cond.false(
                    reasons.READY,
                    reasons.UNKNOWN_MODEL_VERSION,
                    f"spec.modelVersion {pin} is not in the registry",
                ),
            )
        if entry.rolled_back and pin != current:
            return _Target(
                current,
                Cond.false(
                    reasons.READY,
                    reasons.PINNED_VERSION_ROLLED_BACK,
                    f"version {pin} was rolled back ({entry.rollback_reason}); pin another version",
                ),
            )
        verdict = verdict_of(entry, lm, obs, now, pinned=True)
        if not verdict.passed and pin != current:
            return _Target(
                current,
                Cond.false(
                    reasons.READY,
                    reasons.PINNED_VERSION_REJECTED,
                    f"version {pin} fails the gates: {verdict.message}",
                ),
            )
        return _Target(pin)
    # A rollout in flight finishes (or fails) before the next candidate is considered.
    if lm.promotion is Promotion.MANUAL or obs.deployment.in_progress:
        return _Target(current)
    passing = [
        e.version for e in obs.registry if not e.rolled_back and verdict_of(e, lm, obs, now).passed
    ]
    newest = max(passing, default=None)
    current_entry = obs.entry(current)
    # Never move backwards on our own: a newer serving version stays unless it was rolled back.
    keeps_current = current_entry is not None and not current_entry.rolled_back
    if keeps_current and current is not None and (newest is None or newest < current):
        return _Target(current)
    return _Target(newest if newest is not None else current)


def plan(lm: LeadModelSpec, obs: Observed, now: datetime) -> Plan:  # noqa: PLR0912, PLR0915
    owner = obs.owner
    d = obs.deployment
    stamp_now = rfc3339(now)
    actions: list[Action] = []
    conds: dict[str, Cond] = {}
    requeue: float | None = None
    current = d.version

    def deployment_for(rollout: builders.Rollout) -> dict[str, Any]:
        return builders.scorer_deployment(owner, lm, rollout)

    steady = builders.Rollout(
        version=current,
        previous=d.previous,
        kind=d.kind,
        started_at=d.started_at,
        digest=d.digest,
        previous_digest=d.previous_digest,
    )

    # Rollout health first: a failed rollout is undone before anything new is tried.
    failure: tuple[str, str] | None = None
    if current is not None and d.kind == builders.ROLLOUT_FORWARD:
        if d.deadline_exceeded:
            failure = (
                reasons.PROGRESS_DEADLINE_EXCEEDED,
                f"version {current} was not Available within "
                f"{lm.scorer.progress_deadline_seconds}s",
            )
        elif (
            obs.scorer is not None
            and obs.scorer.version == current
            and obs.scorer.health in {"critical_low_auc", "error"}
        ):
            failure = (
                reasons.SCORER_UNHEALTHY,
                f"scorer reports {obs.scorer.health} for version {current}",
            )

    target = _Target(current)
    if failure is not None and current is not None:
        reason, message = failure
        back = builders.Rollout(
            version=d.previous,
            previous=current,
            kind=builders.ROLLOUT_BACK,
            started_at=stamp_now,
            digest=d.previous_digest,
            previous_digest=d.digest,
        )
        failed_entry = obs.entry(current)
        if failed_entry is not None:
            actions.append(
                MarkVersion(
                    failed_entry.name,
                    {
                        registry.ANN_ROLLED_BACK_AT: stamp_now,
                        registry.ANN_ROLLBACK_REASON: reason,
                        registry.ANN_RETIRED_AT: stamp_now,
                    },
                )
            )
        actions.append(
            RollBack(
                version=d.previous, failed=current, reason=reason, manifest=deployment_for(back)
            )
        )
        actions.append(
            EmitEvent(
                "Warning",
                reason,
                f"Rolled back Deployment {owner.namespace}/{builders.names(owner.name)['scorer']} "
                f"from version {current} to {d.previous or 'no model'}: {message}",
            )
        )
        conds[reasons.ROLLED_OUT] = Cond.false(
            reasons.ROLLED_OUT, reasons.ROLLED_BACK, f"rolled back from {current}: {message}"
        )
        conds[reasons.DEGRADED] = Cond.true(reasons.DEGRADED, reason, message)
        steady = back
        requeue = ROLLOUT_POLL_SECONDS
    else:
        target = _choose_target(lm, obs, now)
        rolling = d.in_progress and target.version == current
        if target.ready is None and target.version is not None and target.version != current:
            entry = obs.entry(target.version)
            new = builders.Rollout(
                version=target.version,
                previous=current if current is not None else None,
                kind=builders.ROLLOUT_FORWARD,
                started_at=stamp_now,
                # The target passed the gates: these are the bytes the operator validated.
                digest=entry.facts.digest if entry is not None and entry.facts else "",
                previous_digest=d.digest,
            )
            auc = entry.auc if entry else ""
            if entry is not None:
                actions.append(
                    MarkVersion(
                        entry.name,
                        {registry.ANN_PROMOTED_AT: stamp_now, registry.ANN_RETIRED_AT: ""},
                    )
                )
            old_entry = obs.entry(current)
            if old_entry is not None:
                actions.append(MarkVersion(old_entry.name, {registry.ANN_RETIRED_AT: stamp_now}))
            actions.append(
                RollOut(version=target.version, previous=current, manifest=deployment_for(new))
            )
            actions.append(
                EmitEvent(
                    "Normal",
                    reasons.PROMOTED,
                    f"Rolling out version {target.version} (AUC {auc}) to Deployment "
                    f"{owner.namespace}/{builders.names(owner.name)['scorer']}"
                    + (f", replacing {current}" if current is not None else ""),
                )
            )
            conds[reasons.ROLLED_OUT] = Cond.false(
                reasons.ROLLED_OUT,
                reasons.ROLLOUT_IN_PROGRESS,
                f"rolling out version {target.version}",
            )
            steady = new
            requeue = ROLLOUT_POLL_SECONDS
        elif current is None:
            conds[reasons.ROLLED_OUT] = Cond.false(
                reasons.ROLLED_OUT, reasons.NO_MODEL, "no version has been rolled out"
            )
        elif rolling or d.in_progress:
            kind_reason = (
                reasons.ROLLBACK_IN_PROGRESS
                if d.kind == builders.ROLLOUT_BACK
                else reasons.ROLLOUT_IN_PROGRESS
            )
            conds[reasons.ROLLED_OUT] = Cond.false(
                reasons.ROLLED_OUT, kind_reason, f"waiting for version {current} to be Available"
            )
            requeue = ROLLOUT_POLL_SECONDS
        elif d.kind == builders.ROLLOUT_BACK:
            conds[reasons.ROLLED_OUT] = Cond.false(
                reasons.ROLLED_OUT,
                reasons.ROLLED_BACK,
                f"serving {current} after rolling back {d.previous}",
            )
        else:
            conds[reasons.ROLLED_OUT] = Cond.true(
                reasons.ROLLED_OUT, reasons.ROLLOUT_COMPLETE, f"version {current} is Available"
            )
        conds[reasons.DEGRADED] = _degraded(lm, obs, now)

    # Children: desired state every pass; apply skips what already matches. Inserted at the
    # front in reverse so they apply in builders.children() order: a Role must exist before
    # its RoleBinding, or a non-admin operator is refused (RBAC escalation check).
    for manifest in reversed(
        builders.children(
            owner,
            lm,
            steady,
            prometheus_operator=obs.prometheus_operator,
            alert_rules=obs.alert_rules,
        )
    ):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind == "Deployment" and any(isinstance(a, RollOut | RollBack) for a in actions):
            continue
        cls = {"CronJob": EnsureCronJob, "Deployment": EnsureDeployment}.get(kind, Ensure)
        actions.insert(0, cls(manifest=manifest, kind=kind, name=name))
    rule = builders.names(owner.name)["alerts"]
    if not obs.alert_rules and _owned(obs.children.get(("PrometheusRule", rule)), obs.uid):
        actions.append(RemoveChild(kind="PrometheusRule", name=rule))

    # Candidate, gates and events about it.
    newest = obs.registry[-1] if obs.registry else None
    candidate: dict[str, Any] | None = None
    if newest is None:
        conds[reasons.TRAINED] = Cond.false(
            reasons.TRAINED, reasons.NO_ARTIFACT, "no model version in the registry yet"
        )
        conds[reasons.VALIDATED] = Cond.unknown(
            reasons.VALIDATED, reasons.NO_CANDIDATE, "nothing to validate"
        )
    else:
        conds[reasons.TRAINED] = Cond.true(
            reasons.TRAINED,
            reasons.ARTIFACT_PUBLISHED,
            f"version {newest.version} published ({newest.created_at or 'unknown time'})",
        )
        verdict = verdict_of(newest, lm, obs, now, pinned=lm.pinned_version == newest.version)
        conds[reasons.VALIDATED] = (
            Cond.true(reasons.VALIDATED, verdict.reason, verdict.message)
            if verdict.passed
            else Cond.false(reasons.VALIDATED, verdict.reason, verdict.message)
        )
        candidate = {
            "version": str(newest.version),
            "auc": newest.auc,
            "nTrain": newest.n_train,
            "verdict": "Passed" if verdict.passed else "Rejected",
            "reason": verdict.reason,
            "message": verdict.message,
        }
        before = obs.status.get("candidate") or {}
        if (before.get("version"), before.get("reason")) != (
            candidate["version"],
            candidate["reason"],
        ):
            actions.append(
                EmitEvent(
                    "Normal" if verdict.passed else "Warning",
                    verdict.reason,
                    f"Candidate version {newest.version}: {verdict.message}",
                )
            )

    # Ready: serving something, and the spec asks for nothing we refuse.
    serving = _serving(obs) if failure is None else d.previous
    if target.ready is not None:
        conds[reasons.READY] = target.ready
    elif serving is None:
        hint = (
            "set spec.modelVersion to promote a candidate"
            if lm.promotion is Promotion.MANUAL
            else "waiting for a version that passes the gates"
        )
        conds[reasons.READY] = Cond.false(reasons.READY, reasons.NO_MODEL, hint)
    else:
        conds[reasons.READY] = Cond.true(
            reasons.READY, reasons.SERVING, f"serving version {serving}"
        )
    if target.ready is not None and target.ready.reason != reasons.AWAITING_PROMOTION:
        actions.append(EmitEvent("Warning", target.ready.reason, target.ready.message))
        previous_ready = next(
            (c for c in obs.status.get("conditions") or [] if c.get("type") == reasons.READY),
            None,
        )
        if previous_ready is not None and previous_ready.get("reason") == target.ready.reason:
            actions.pop()  # already said; an Event each pass would be noise

    # Registry GC: beyond history.limit, never serving, previous, pinned or rolling out.
    doomed = registry.garbage(
        (e.version for e in obs.registry),
        limit=lm.history.limit,
        keep=(current, d.previous, lm.pinned_version, target.version, steady.version,
              steady.previous),
    )  # fmt: skip
    if doomed:
        gone = tuple(registry.configmap_name(owner.name, v) for v in doomed)
        actions.append(GarbageCollect(gone))
        actions.append(
            EmitEvent(
                "Normal",
                reasons.GARBAGE_COLLECTED,
                f"Deleted {len(gone)} registry version(s) beyond history.limit "
                f"{lm.history.limit}: {', '.join(str(v) for v in doomed)}",
            )
        )

    # Status describes the world after this plan's history marks, not before them.
    marked = _with_marks(obs, [a for a in actions if isinstance(a, MarkVersion)])
    status = _status(lm, marked, now, serving=serving, steady=steady, candidate=candidate)
    status["conditions"] = stamp(
        conds.values(),
        obs.status.get("conditions") or [],
        generation=obs.generation,
        now=now,
    )
    return Plan(
        actions=tuple(actions),
        conditions=tuple(conds.values()),
        status=status,
        requeue_after=requeue,
    )


_MARK_FIELDS = {
    registry.ANN_PROMOTED_AT: "promoted_at",
    registry.ANN_RETIRED_AT: "retired_at",
    registry.ANN_ROLLED_BACK_AT: "rolled_back_at",
    registry.ANN_ROLLBACK_REASON: "rollback_reason",
}


def _owned(child: Mapping[str, Any] | None, uid: str) -> bool:
    """`child` exists and this LeadModel controls it: a same-named object of a user's stays."""
    refs = ((child or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def _with_marks(obs: Observed, marks: list[MarkVersion]) -> Observed:
    by_name = {m.name: m for m in marks}
    entries = []
    for e in obs.registry:
        mark = by_name.get(e.name)
        if mark is not None:
            changes: dict[str, Any] = {
                _MARK_FIELDS[k]: v for k, v in mark.annotations.items() if k in _MARK_FIELDS
            }
            entries.append(replace(e, **changes))
        else:
            entries.append(e)
    return replace(obs, registry=tuple(entries))


def _degraded(lm: LeadModelSpec, obs: Observed, now: datetime) -> Cond:
    d = obs.deployment
    if d.kind == builders.ROLLOUT_BACK and d.previous is not None:
        failed = obs.entry(d.previous)
        why = failed.rollback_reason if failed and failed.rollback_reason else "rollout failed"
        if d.deadline_exceeded:
            return Cond.true(
                reasons.DEGRADED,
                reasons.ROLLBACK_NOT_AVAILABLE,
                f"rollback to {d.version} is not Available either",
            )
        return Cond.true(reasons.DEGRADED, why, f"version {d.previous} was rolled back: {why}")
    report = obs.scorer
    if report is not None and report.health in {"critical_low_auc", "error"}:
        return Cond.true(
            reasons.DEGRADED, reasons.SCORER_UNHEALTHY, f"scorer reports {report.health}"
        )
    if report is not None and report.drift_score:
        drift = registry.decimal_or_none(report.drift_score)
        if drift is not None and drift > lm.gates.max_drift_score_value:
            return Cond.true(
                reasons.DEGRADED,
                reasons.HIGH_DRIFT,
                f"drift score {drift} is above maxDriftScore {lm.gates.max_drift_score}",
            )
    serving = obs.entry(_serving(obs))
    if serving is not None:
        created = registry.parse_time(serving.created_at)
        if created is not None:
            hours = Decimal((now - created).total_seconds()) / 3600
            if hours > lm.gates.max_age_hours:
                return Cond.true(
                    reasons.DEGRADED,
                    reasons.STALE_MODEL,
                    f"serving model is {hours:.0f} h old (maxAgeHours {lm.gates.max_age_hours})",
                )
    return Cond.false(reasons.DEGRADED, reasons.AS_EXPECTED, "")


def derived_health(lm: LeadModelSpec, entry: Entry | None, now: datetime) -> str:
    """The seed's health value from registry facts, for when the scorer cannot be asked."""
    if entry is None:
        return "no_model"
    value = registry.decimal_or_none(entry.auc)
    if value is not None and value < Decimal("0.55"):
        return "critical_low_auc"
    if value is not None and value < Decimal("0.65"):
        return "warning_low_auc"
    created = registry.parse_time(entry.created_at)
    if created is not None and (now - created).total_seconds() > lm.gates.max_age_hours * 3600:
        return "warning_stale"
    return "ok"


def _status(
    lm: LeadModelSpec,
    obs: Observed,
    now: datetime,
    *,
    serving: int | None,
    steady: builders.Rollout,
    candidate: dict[str, Any] | None,
) -> dict[str, Any]:
    entry = obs.entry(serving)
    report = obs.scorer if obs.scorer is not None and obs.scorer.version == serving else None
    promoted = sorted(
        (e for e in obs.registry if e.promoted_at), key=lambda e: e.promoted_at, reverse=True
    )
    history = [
        {
            "version": str(e.version),
            "auc": e.auc,
            "promotedAt": e.promoted_at,
            "retiredAt": e.retired_at,
            "reason": e.rollback_reason or ("Serving" if e.version == serving else "Superseded"),
        }
        for e in promoted[: lm.history.limit]
    ]
    previous = steady.previous
    return {
        "observedGeneration": obs.generation,
        "servingVersion": str(serving) if serving is not None else "",
        "previousVersion": str(previous) if previous is not None else "",
        "candidate": candidate,
        "auc": entry.auc if entry else "",
        "driftScore": report.drift_score if report else "",
        "health": report.health if report else derived_health(lm, entry, now),
        "lastRollout": steady.started_at,
        "history": history,
    }
