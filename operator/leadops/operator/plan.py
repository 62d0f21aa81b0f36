"""Decide, purely: `plan(spec, observed, now) -> Plan`.

No API client, no clock of its own, no I/O. `plan()` runs named steps in the order a person
would reason about a LeadModel:

    rollout_failure -> (roll_back | target -> pii_hold -> move) -> children -> candidate
    -> readiness -> registry_gc -> status

Each step is a pure function of the spec, the observed world and the clock (plus what the
steps before it decided), returning the actions and conditions it is responsible for.
Everything a decision needs is in the world (registry ConfigMaps and the scorer Deployment's
annotations), so a restarted operator makes the same decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from leadops.contract import health
from leadops.operator import (
    builders,
    conditions,
    early_auc,
    followups_builders,
    gates,
    matured_guard,
    network_policy,
    pii_gate,
    reasons,
    registry,
    replay_gate,
)
from leadops.operator import experiment as experiments
from leadops.operator.actions import (
    Action,
    CreateOnce,
    EmitEvent,
    Ensure,
    EnsureCronJob,
    EnsureDeployment,
    GarbageCollect,
    MarkVersion,
    Plan,
    RemoveChild,
    RollBack,
    RollOut,
)
from leadops.operator.artifact_facts import ArtifactFacts
from leadops.operator.conditions import rfc3339
from leadops.operator.registry import Entry
from leadops.operator.rollout import RolloutState
from leadops.operator.spec import (
    Candidate,
    ColdStart,
    Condition,
    ExperimentStatus,
    HistoryEntry,
    LeadModelSpec,
    LeadModelStatus,
    PiiGateOverride,
    PiiGateStatus,
    Promotion,
    ReplayStatus,
    Verdict,
)
from leadops.operator.world import Observed

# How soon to look again while a rollout is in flight.
ROLLOUT_POLL_SECONDS = 3.0
# Who the history names for an automatic rollback, and how much of its message it keeps.
OPERATOR_NAME = "leadops-operator"
MESSAGE_LIMIT = 512


@dataclass(frozen=True)
class Step:
    """What one step decided: actions to run and conditions it owns."""

    actions: tuple[Action, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Failure:
    """The rollout in flight went bad: why, in a reason and in words."""

    reason: str
    message: str


@dataclass(frozen=True)
class Target:
    """The version the scorer should serve; `blocked` says why the spec's wish is refused."""

    version: int | None
    blocked: Condition | None = None
    # A promotion to this version waits for the PII gate (`version` stays the current one).
    held: int | None = None


@dataclass(frozen=True)
class Move:
    """The scorer Deployment as this plan leaves it, and the step's actions and conditions."""

    step: Step
    steady: builders.Rollout
    requeue_after: float | None = None


def verdict_of(
    entry: Entry, lm: LeadModelSpec, obs: Observed, now: datetime, *, pinned: bool = False
) -> gates.Judgement:
    facts = entry.facts or ArtifactFacts(
        version=entry.version, load_error=reasons.CORRUPT_ARTIFACT, load_message="not decoded"
    )
    inp = gates.GateInput(
        facts=facts, gates=lm.gates, now=now, signing_key_configured=obs.signing_key_configured
    )
    return gates.evaluate(inp, chain=gates.PINNED_CHAIN if pinned else gates.CHAIN)


# Step 1: rollout failure ----------------------------------------------------------------


def rollout_failure(lm: LeadModelSpec, obs: Observed) -> Failure | None:
    """A forward rollout that is the version's fault: stuck with its Pods started on a node
    (they crash, cannot pull, never get ready), or whose scorer reports critical health.

    A rollout stuck because Pods cannot be created or placed is the namespace's fault, and one
    whose Pods no kubelet took up is the control plane's or the node's: it is reported
    (`readiness`) and proceeds by itself once they act, never undone.
    """
    d = obs.deployment
    current = d.version
    if current is None or d.kind != builders.ROLLOUT_FORWARD:
        return None
    deadline = lm.scorer.progress_deadline_seconds
    # This version already served all its Pods once (an image rollout aside): Pods that do not
    # get ready now were added by a scale-up (the autoscaler, a replicas edit), so the version
    # is not to blame and is never rolled back for it; readiness reports them.
    settled = str(obs.status.get("servingVersion") or "") == str(current) and not image_changed(d)
    if d.version_failed and not settled:
        subject = f"version {current}" + (f" on image {d.image}" if image_changed(d) else "")
        said = (
            f"{subject} was not Available within {deadline}s"
            if d.deadline_exceeded
            else f"{subject} made no progress for {deadline}s"
        )
        return Failure(reasons.PROGRESS_DEADLINE_EXCEEDED, said + _why(d.unready_why))
    report = obs.scorer
    if report is not None and report.version == current and report.health in health.CRITICAL:
        return Failure(
            reasons.SCORER_UNHEALTHY, f"scorer reports {report.health} for version {current}"
        )
    # Its matured leads say it is worse than the version it replaced (the outcome guard).
    dropped = matured_guard.drop(lm, obs)
    if dropped is not None:
        return Failure(reasons.MATURED_AUC_DROP, dropped)
    return None


def _why(text: str) -> str:
    return f" ({text})" if text else ""


def image_changed(d: RolloutState) -> bool:
    """The rollout in flight (or undone) moved the scorer to another image."""
    return bool(d.previous_image) and d.previous_image != d.image


def refused_image(lm: LeadModelSpec, d: RolloutState) -> str:
    """An image a rollback undid, kept while spec.scorer.image still names it."""
    return d.rolled_back_image if d.rolled_back_image == lm.scorer.image else ""


def wanted_image(lm: LeadModelSpec, d: RolloutState) -> str:
    """spec.scorer.image, unless a rollback undid it: then the image serving now."""
    return d.image if d.image and refused_image(lm, d) else lm.scorer.image


def roll_back(lm: LeadModelSpec, obs: Observed, failure: Failure, now: datetime) -> Move:
    """Undo the failed rollout: mark the version (if it moved), point the Deployment back to
    the version and image it served before, say so."""
    d = obs.deployment
    current = d.version
    assert current is not None
    stamp_now = rfc3339(now)
    promotion = d.promotion
    if failure.reason == reasons.MATURED_AUC_DROP and promotion is not None:
        # The model is at fault, not the image: back to the version the guard compared it
        # with, on the image serving now (an image rollout since the promotion stays).
        new_image = False
        version: int | None = promotion.previous
        digest, image = promotion.previous_digest, d.image
    else:
        new_image = image_changed(d)
        version, digest = d.previous, d.previous_digest
        # The image the previous version served on; the new one is refused until the spec
        # names another (a Deployment from before images were recorded keeps its own).
        image = d.previous_image or d.image
    back = builders.Rollout(
        version=version,
        previous=current,
        kind=builders.ROLLOUT_BACK,
        started_at=stamp_now,
        digest=digest,
        previous_digest=d.digest,
        image=image,
        previous_image=d.image,
        rolled_back_image=d.image if new_image else refused_image(lm, d),
        # Undoing an image rollout of a promoted version: the guard watches on.
        carried_promotion=promotion if version == current else None,
    )
    moves = []
    if version != current or not new_image:
        moves.append(f"version {current} to {version or 'no model'}")
    if new_image:
        moves.append(f"image {d.image} to {back.image}")
    actions: list[Action] = []
    # An image-only rollout is the image's fault, not the model version's.
    failed_entry = obs.entry(current) if version != current else None
    if failed_entry is not None:
        actions.append(
            MarkVersion(
                failed_entry.name,
                {
                    registry.ANN_ROLLED_BACK_AT: stamp_now,
                    registry.ANN_ROLLBACK_REASON: failure.reason,
                    registry.ANN_ROLLED_BACK_BY: OPERATOR_NAME,
                    registry.ANN_ROLLBACK_MESSAGE: failure.message[:MESSAGE_LIMIT],
                    registry.ANN_RETIRED_AT: stamp_now,
                },
            )
        )
    actions.append(
        EmitEvent(
            "Warning",
            failure.reason,
            f"Rolled back Deployment {obs.namespace}/{builders.names(obs.name)['scorer']} "
            f"from {' and '.join(moves)}: {failure.message}",
            once_key=_move_key(obs, "rollback", version),
        )
    )
    actions.append(
        RollBack(
            version=version,
            failed=current,
            reason=failure.reason,
            manifest=builders.scorer_deployment(
                obs.owner, lm, back, objects=obs.objects, jobs=obs.jobs_image
            ),
        )
    )
    conds = (
        conditions.false(
            reasons.ROLLED_OUT,
            reasons.ROLLED_BACK,
            f"rolled back from {current}: {failure.message}",
        ),
        # As every later pass says it (`degraded`): the version's reason, or RolledBack for
        # an image the spec still names.
        conditions.true(reasons.DEGRADED, failure.reason, failure.message)
        if version != current or not new_image
        else conditions.true(
            reasons.DEGRADED,
            reasons.ROLLED_BACK,
            f"image {d.image} was rolled back: {failure.message}",
        ),
    )
    return Move(Step(tuple(actions), conds), back, ROLLOUT_POLL_SECONDS)


# Step 2: target -------------------------------------------------------------------------


def target(
    lm: LeadModelSpec,
    obs: Observed,
    now: datetime,
    experiment: experiments.Decision | None = None,
) -> Target:
    """The version to serve: the pin if it is servable, else a promoted experiment winner,
    else (no experiment running) the newest passing version."""
    if lm.pinned_version is not None:
        return _pinned_target(lm, obs, now, lm.pinned_version)
    current = obs.deployment.version
    if experiment is not None and experiment.promote_version is not None:
        # The winner rolls out like a pinned version (gates checked, rollback kept).
        return _pinned_target(lm, obs, now, experiment.promote_version)
    if experiment is not None and experiment.hold_serving and current is not None:
        return Target(current)  # no candidate replaces the control mid-experiment
    # A model rollout in flight finishes (or fails) before the next candidate is considered.
    # Not the no-model Deployment's: the first model rolls out whatever became of it; and not
    # a completed rollout that lost availability: rolling forward may be the fix.
    if lm.promotion is Promotion.MANUAL or (obs.deployment.in_progress and current is not None):
        return Target(current)
    passing = [
        e.version for e in obs.registry if not e.rolled_back and verdict_of(e, lm, obs, now).passed
    ]
    newest = max(passing, default=None)
    current_entry = obs.entry(current)
    # Never move backwards on our own: a newer serving version stays unless it was rolled back.
    keeps_current = current_entry is not None and not current_entry.rolled_back
    if keeps_current and current is not None and (newest is None or newest < current):
        return Target(current)
    return Target(newest if newest is not None else current)


def _pinned_target(lm: LeadModelSpec, obs: Observed, now: datetime, pin: int) -> Target:
    current = obs.deployment.version
    entry = obs.entry(pin)
    if entry is None:
        return Target(
            current,
            conditions.false(
                reasons.READY,
                reasons.UNKNOWN_MODEL_VERSION,
                f"spec.modelVersion {pin} is not in the registry",
            ),
        )
    if entry.rolled_back and pin != current:
        return Target(
            current,
            conditions.false(
                reasons.READY,
                reasons.PINNED_VERSION_ROLLED_BACK,
                f"version {pin} was rolled back ({entry.rollback_reason}); pin another version, "
                f"or allow it again: leadops allow {obs.name} {pin}",
            ),
        )
    verdict = verdict_of(entry, lm, obs, now, pinned=True)
    if not verdict.passed and pin != current:
        return Target(
            current,
            conditions.false(
                reasons.READY,
                reasons.PINNED_VERSION_REJECTED,
                f"version {pin} fails the gates: {verdict.message}",
            ),
        )
    return Target(pin)


# Step 2a: the replay gate ------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayHold:
    """The target after the replay gate (spec.guards.replay), and the gate's decision."""

    goal: Target
    decision: replay_gate.Decision


def replay_hold(
    lm: LeadModelSpec, obs: Observed, goal: Target, experiment: experiments.Decision | None
) -> ReplayHold:
    """A promotion (a version newer than the serving one) waits for its replay against the
    serving version and is refused by a worse verdict. Skipped: a first model (nothing to
    replay against), an experiment's winner (the experiment is the stronger test) and a
    version a person pinned. Rollbacks never replay."""
    if lm.guards.replay is None:
        return ReplayHold(goal, replay_gate.Decision())
    current = obs.deployment.version
    version = goal.version if goal.blocked is None else None
    if version is None or (current is not None and version <= current):
        return ReplayHold(goal, replay_gate.decide(lm, obs, None))
    skip = ""
    if current is None:
        skip = f"version {version} is the first model: no version serves to replay it against"
    elif experiment is not None and experiment.promote_version == version:
        name = lm.experiment.name if lm.experiment is not None else ""
        skip = f"version {version} won experiment {name}: the experiment is the stronger test"
    elif lm.pinned_version == version:
        skip = f"version {version} is pinned (spec.modelVersion): a person's choice"
    decided = replay_gate.decide(lm, obs, version, skip=skip)
    return ReplayHold(Target(current) if decided.held else goal, decided)


# Step 2b: the PII gate -------------------------------------------------------------------


@dataclass(frozen=True)
class PiiHold:
    """The target after the PII gate, its Events, the PiiCompliant condition and status."""

    goal: Target
    step: Step
    status: PiiGateStatus
    requeue_after: float | None = None


def _last_override(obs: Observed) -> PiiGateOverride | None:
    gate = obs.status.get("piiGate")
    found = gate.get("lastOverride") if isinstance(gate, dict) else None
    if not isinstance(found, dict):
        return None
    try:
        return PiiGateOverride.model_validate(found)
    except ValueError:
        return None


def pii_hold(lm: LeadModelSpec, obs: Observed, goal: Target, now: datetime) -> PiiHold:
    """While PiiCompliant is False a promotion (a version newer than the serving one) waits;
    a rollback (an older version) never does, nor a LeadModel's first promotion (nothing
    serves). `leadops.io/pii-gate-override: <reason>` lets promotions pass; each one that
    passes only by it is recorded in status and a Warning Event."""
    gate = pii_gate.judge(lm, obs, now)
    current = obs.deployment.version
    override = obs.annotations.get(pii_gate.OVERRIDE_ANNOTATION, "").strip()
    before = obs.status.get("piiGate")
    before = before if isinstance(before, dict) else {}
    cond = gate.condition
    if gate.closed and override:
        cond = conditions.false(
            reasons.PII_COMPLIANT,
            reasons.OVERRIDDEN,
            f"{cond.message}; promotions pass anyway ({pii_gate.OVERRIDE_ANNOTATION}: {override})",
        )
    promoting = (
        goal.blocked is None
        and goal.version is not None
        and current is not None
        and goal.version > current
    )
    actions: list[Action] = []
    last_override = _last_override(obs)
    held: int | None = None
    requeue: float | None = None
    if promoting and gate.closed and override:
        assert goal.version is not None
        last_override = PiiGateOverride(
            version=str(goal.version),
            reason=override,
            at=rfc3339(now),
            gate_reason=gate.condition.reason,
        )
        actions.append(
            EmitEvent(
                "Warning",
                reasons.PII_GATE_OVERRIDDEN,
                f"Promoting version {goal.version} although PiiCompliant is False "
                f"({gate.condition.reason}): {pii_gate.OVERRIDE_ANNOTATION}: {override}",
                once_key=_move_key(obs, "pii-override", goal.version),
            )
        )
    elif promoting and gate.closed:
        held, goal = goal.version, Target(current, held=goal.version)
        requeue = pii_gate.HOLD_POLL_SECONDS
        said_before = (str(before.get("heldVersion") or ""), _pii_reason(obs))
        if said_before != (str(held), cond.reason):  # once per held version and reason
            actions.append(
                EmitEvent(
                    "Warning",
                    cond.reason,
                    f"Promotion of version {held} waits for the PII gate: {cond.message}; to "
                    f"promote anyway: kubectl annotate leadmodel {obs.name} "
                    f"{pii_gate.OVERRIDE_ANNOTATION}='<reason>'",
                )
            )
    status = PiiGateStatus(
        last_run=gate.last_run,
        period_seconds=gate.period_seconds,
        stale_at=gate.stale_at,
        held_version=str(held) if held is not None else "",
        override=override,
        last_override=last_override,
    )
    return PiiHold(goal, Step(tuple(actions), (cond,)), status, requeue)


def _pii_reason(obs: Observed) -> str:
    for c in obs.status.get("conditions") or []:
        if c.get("type") == reasons.PII_COMPLIANT:
            return str(c.get("reason") or "")
    return ""


# Step 3: move the scorer towards the target ---------------------------------------------


def move(lm: LeadModelSpec, obs: Observed, goal: Target, now: datetime) -> Move:
    """Roll out the target if it is not the current version, else report the rollout."""
    d = obs.deployment
    current = d.version
    steady = builders.Rollout(
        version=current,
        previous=d.previous,
        kind=d.kind,
        started_at=d.started_at,
        digest=d.digest,
        previous_digest=d.previous_digest,
        # While a model serves, its image changes only by a rollout (below), never in place.
        image=d.image if current is not None else "",
        previous_image=d.previous_image,
        rolled_back_image=refused_image(lm, d),
        carried_promotion=d.carried_promotion,
    )
    if goal.blocked is None and goal.version is not None and goal.version != current:
        return _roll_forward(lm, obs, goal.version, now)
    image = wanted_image(lm, d)
    if current is not None and d.image and image != d.image and not d.in_progress:
        return _roll_image(lm, obs, image, now)
    image_back = d.kind == builders.ROLLOUT_BACK and d.previous == current
    requeue: float | None = None
    if current is None:
        rolled = conditions.false(
            reasons.ROLLED_OUT, reasons.NO_MODEL, "no version has been rolled out"
        )
    elif d.in_progress or (d.stuck and not d.version_failed):
        kind_reason = (
            reasons.ROLLBACK_IN_PROGRESS
            if d.kind == builders.ROLLOUT_BACK
            else reasons.ROLLOUT_IN_PROGRESS
        )
        waiting = f"waiting for version {current} to be Available"
        if d.blocked is not None:
            waiting += f": {d.blocked.reason}"
        rolled = conditions.false(reasons.ROLLED_OUT, kind_reason, waiting)
        requeue = ROLLOUT_POLL_SECONDS
    elif image_back and refused_image(lm, d):
        rolled = conditions.false(
            reasons.ROLLED_OUT,
            reasons.ROLLED_BACK,
            f"serving {current} on {d.image} after rolling back image {d.rolled_back_image}",
        )
    elif d.kind == builders.ROLLOUT_BACK and not image_back:
        rolled = conditions.false(
            reasons.ROLLED_OUT,
            reasons.ROLLED_BACK,
            f"serving {current} after rolling back {d.previous}",
        )
    else:
        rolled = conditions.true(
            reasons.ROLLED_OUT,
            reasons.ROLLOUT_COMPLETE,
            f"version {current} is Available"
            if d.available
            else f"version {current} rolled out; {d.ready} of {d.desired} Pods ready now",
        )
    return Move(Step((), (rolled, degraded(lm, obs, now))), steady, requeue)


def _roll_forward(lm: LeadModelSpec, obs: Observed, version: int, now: datetime) -> Move:
    d = obs.deployment
    current = d.version
    stamp_now = rfc3339(now)
    entry = obs.entry(version)
    new = builders.Rollout(
        version=version,
        previous=current,
        kind=builders.ROLLOUT_FORWARD,
        started_at=stamp_now,
        # The target passed the gates: these are the bytes the operator validated.
        digest=entry.facts.digest if entry is not None and entry.facts else "",
        previous_digest=d.digest,
        image=wanted_image(lm, d),
        previous_image=d.image,
        rolled_back_image=refused_image(lm, d),
    )
    actions: list[Action] = []
    if entry is not None:
        actions.append(
            MarkVersion(
                entry.name, {registry.ANN_PROMOTED_AT: stamp_now, registry.ANN_RETIRED_AT: ""}
            )
        )
    old_entry = obs.entry(current)
    if old_entry is not None:
        actions.append(MarkVersion(old_entry.name, {registry.ANN_RETIRED_AT: stamp_now}))
    actions.append(
        EmitEvent(
            "Normal",
            reasons.PROMOTED,
            f"Rolling out version {version} (AUC {entry.auc if entry else ''}) to Deployment "
            f"{obs.namespace}/{builders.names(obs.name)['scorer']}"
            + (f", replacing {current}" if current is not None else ""),
            once_key=_move_key(obs, "rollout", version),
        )
    )
    actions.append(
        RollOut(
            version=version,
            previous=current,
            manifest=builders.scorer_deployment(
                obs.owner, lm, new, objects=obs.objects, jobs=obs.jobs_image
            ),
        )
    )
    rolled = conditions.false(
        reasons.ROLLED_OUT, reasons.ROLLOUT_IN_PROGRESS, f"rolling out version {version}"
    )
    return Move(Step(tuple(actions), (rolled, degraded(lm, obs, now))), new, ROLLOUT_POLL_SECONDS)


def _roll_image(lm: LeadModelSpec, obs: Observed, image: str, now: datetime) -> Move:
    """spec.scorer.image changed under a serving version: a rollout of its own, so a failure
    returns to the image that served (and never blames the model version)."""
    d = obs.deployment
    current = d.version
    assert current is not None
    new = builders.Rollout(
        version=current,
        previous=current,
        kind=builders.ROLLOUT_FORWARD,
        started_at=rfc3339(now),
        digest=d.digest,
        previous_digest=d.digest,
        image=image,
        previous_image=d.image,
        rolled_back_image=refused_image(lm, d),
        # The same version on another image: the matured-AUC guard watches its promotion on.
        carried_promotion=d.promotion,
    )
    actions: tuple[Action, ...] = (
        EmitEvent(
            "Normal",
            reasons.IMAGE_ROLLOUT,
            f"Rolling out image {image} to Deployment {obs.namespace}/"
            f"{builders.names(obs.name)['scorer']} (version {current}), replacing {d.image}",
            once_key=_move_key(obs, "image", current),
        ),
        RollOut(
            version=current,
            previous=current,
            manifest=builders.scorer_deployment(
                obs.owner, lm, new, objects=obs.objects, jobs=obs.jobs_image
            ),
        ),
    )
    rolled = conditions.false(
        reasons.ROLLED_OUT, reasons.ROLLOUT_IN_PROGRESS, f"rolling out image {image}"
    )
    return Move(Step(actions, (rolled, degraded(lm, obs, now))), new, ROLLOUT_POLL_SECONDS)


def _move_key(obs: Observed, move: str, to: int | None) -> str:
    """One move from one Deployment state: the same after a crash, new for the next move."""
    d = obs.deployment
    return f"{obs.uid}/{move}/{d.version}->{to}/generation-{d.generation}"


def _rolled_back(lm: LeadModelSpec, obs: Observed) -> Condition | None:
    """Degraded by a rollback: of a version, or of an image the spec still names."""
    d = obs.deployment
    if d.kind == builders.ROLLOUT_BACK and d.previous is not None:
        # Only its own Pods failing on a node makes the rollback "not Available"; a rollback
        # still waiting for the control plane or the namespace reports the version it undid.
        if d.version_failed:
            return conditions.true(
                reasons.DEGRADED,
                reasons.ROLLBACK_NOT_AVAILABLE,
                f"rollback to {d.version} is not Available either",
            )
        if d.previous != d.version:
            failed = obs.entry(d.previous)
            why = failed.rollback_reason if failed and failed.rollback_reason else "rollout failed"
            said = why
            if failed is not None and why == reasons.MATURED_AUC_DROP:
                said = failed.rollback_message or why  # both AUCs and the interval
            return conditions.true(
                reasons.DEGRADED, why, f"version {d.previous} was rolled back: {said}"
            )
        if refused_image(lm, d):
            return conditions.true(
                reasons.DEGRADED,
                reasons.ROLLED_BACK,
                f"image {d.rolled_back_image} was rolled back; version {d.version} serves on "
                f"{d.image} until spec.scorer.image names another image",
            )
    return None


def degraded(lm: LeadModelSpec, obs: Observed, now: datetime) -> Condition:
    """Degraded: a rollback, a critical scorer, a low estimated AUC, high drift or a stale
    model, worst first."""
    back = _rolled_back(lm, obs)
    if back is not None:
        return back
    report = obs.scorer
    if report is not None and report.health in health.CRITICAL:
        return conditions.true(
            reasons.DEGRADED, reasons.SCORER_UNHEALTHY, f"scorer reports {report.health}"
        )
    if report is not None and report.version == serving_version(obs):
        low = early_auc.low(lm, report)
        if low is not None:
            return low
    if report is not None and report.drift_score:
        drift = registry.decimal_or_none(report.drift_score)
        if drift is not None and drift > lm.gates.max_drift_score_value:
            return conditions.true(
                reasons.DEGRADED,
                reasons.HIGH_DRIFT,
                f"drift score {drift} is above maxDriftScore {lm.gates.max_drift_score}",
            )
    serving = obs.entry(serving_version(obs))
    if serving is not None:
        created = registry.parse_time(serving.created_at)
        if created is not None:
            hours = Decimal((now - created).total_seconds()) / 3600
            if hours > lm.gates.max_age_hours:
                return conditions.true(
                    reasons.DEGRADED,
                    reasons.STALE_MODEL,
                    f"serving model is {hours:.0f} h old (maxAgeHours {lm.gates.max_age_hours})",
                )
    return conditions.false(reasons.DEGRADED, reasons.AS_EXPECTED, "")


def serving_version(obs: Observed) -> int | None:
    """The version of the updated ReplicaSet once the rollout completed, whatever its Pods'
    availability now; before that the previous one (old Pods serve until new ones are ready).
    A rollback returns to Pods that served before, so it names its target at once."""
    d = obs.deployment
    if d.complete or d.kind == builders.ROLLOUT_BACK:
        return d.version
    if d.version is not None and str(obs.status.get("servingVersion") or "") == str(d.version):
        # A spec edit (resources, say) rolls the serving version again: its old Pods serve it.
        return d.version
    return d.previous


# Step 4: children -----------------------------------------------------------------------


def children(
    lm: LeadModelSpec,
    obs: Observed,
    steady: builders.Rollout,
    *,
    moving: bool,
    experiment: experiments.Decision | None = None,
) -> Step:
    """Every child's desired state each pass (apply skips what matches), and removals.

    In `builders.children()` order: a Role must exist before its RoleBinding, or a non-admin
    operator is refused (RBAC escalation check). The Deployment is left to RollOut/RollBack
    when this plan moves the scorer.
    """
    ensures: list[Action] = []
    for manifest in builders.children(
        obs.owner,
        lm,
        steady,
        prometheus_operator=obs.prometheus_operator,
        alert_rules=obs.alert_rules,
        experiment=experiment,
        jobs=obs.jobs_image,
        objects=obs.objects,
        alert_for=obs.alert_for,
        scrape_interval=obs.scrape_interval,
    ) + followups_builders.children(
        obs.owner, lm, prometheus_operator=obs.prometheus_operator, jobs=obs.jobs_image
    ):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind == "Deployment" and moving and name == builders.names(obs.name)["scorer"]:
            continue
        cls = {"CronJob": EnsureCronJob, "Deployment": EnsureDeployment}.get(kind, Ensure)
        ensures.append(cls(manifest=manifest, kind=kind, name=name))
    removals: list[Action] = []
    rule = builders.names(obs.name)["alerts"]
    if not obs.alert_rules and _owned(obs.children.get(("PrometheusRule", rule)), obs.uid):
        removals.append(RemoveChild(kind="PrometheusRule", name=rule))
    evaluation = builders.names(obs.name)["experiment"]
    if lm.experiment is None and _owned(obs.children.get(("CronJob", evaluation)), obs.uid):
        removals.append(RemoveChild(kind="CronJob", name=evaluation))
    if lm.follow_ups is None:  # spec.followUps removed: its worker goes (Deployment first)
        wanted = followups_builders.child_keys(obs.name, prometheus_operator=True)
        for kind, name in reversed(wanted):
            if _owned(obs.children.get((kind, name)), obs.uid):
                removals.append(RemoveChild(kind=kind, name=name))
    autoscaler = ("HorizontalPodAutoscaler", builders.names(obs.name)["scorer"])
    if lm.scorer.autoscaling is None and _owned(obs.children.get(autoscaler), obs.uid):
        # spec.scorer.replicas is back in the Deployment's patch: the autoscaler must go.
        removals.append(RemoveChild(kind=autoscaler[0], name=autoscaler[1]))
    fenced = set(
        network_policy.keys(obs.name, lm.network_policy, replays=lm.guards.replay is not None)
    )
    for kind, name in network_policy.all_keys(obs.name):
        if (kind, name) not in fenced and _owned(obs.children.get((kind, name)), obs.uid):
            removals.append(RemoveChild(kind=kind, name=name))
    return Step(tuple(ensures + removals))


def _owned(child: Any, uid: str) -> bool:
    """`child` exists and this LeadModel controls it: a same-named object of a user's stays."""
    refs = ((child or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


# Step 5: candidate ----------------------------------------------------------------------


def candidate(lm: LeadModelSpec, obs: Observed, now: datetime) -> tuple[Step, Candidate | None]:
    """The newest registry version, its gate verdict, and an Event when that verdict is new."""
    newest = obs.registry[-1] if obs.registry else None
    if newest is None:
        return Step(
            conditions=(
                conditions.false(
                    reasons.TRAINED, reasons.NO_ARTIFACT, "no model version in the registry yet"
                ),
                conditions.unknown(reasons.VALIDATED, reasons.NO_CANDIDATE, "nothing to validate"),
            )
        ), None
    trained = conditions.true(
        reasons.TRAINED,
        reasons.ARTIFACT_PUBLISHED,
        f"version {newest.version} published ({newest.created_at or 'unknown time'})",
    )
    judged = verdict_of(newest, lm, obs, now, pinned=lm.pinned_version == newest.version)
    validated = (conditions.true if judged.passed else conditions.false)(
        reasons.VALIDATED, judged.reason, judged.message
    )
    found = Candidate(
        version=str(newest.version),
        auc=newest.auc,
        n_train=newest.n_train,
        verdict=judged.verdict,
        reason=judged.reason,
        message=judged.message,
    )
    before = obs.status.get("candidate") or {}
    events: tuple[Action, ...] = ()
    if (before.get("version"), before.get("reason")) != (found.version, found.reason):
        events = (
            EmitEvent(
                "Normal" if judged.passed else "Warning",
                judged.reason,
                f"Candidate version {newest.version}: {judged.message}",
            ),
        )
    return Step(events, (trained, validated)), found


# Step 5b: bootstrap ----------------------------------------------------------------------


def _job_state(job: Any) -> tuple[str, str]:
    """("Failed" | "Complete" | "", message) of a Job from its conditions."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in {"Failed", "Complete"} and c.get("status") == "True":
            return str(c["type"]), str(c.get("message") or c.get("reason") or "")
    return "", ""


def bootstrap(lm: LeadModelSpec, obs: Observed) -> Step:
    """While the registry is empty, the bootstrap Job (once) and the Trained condition it sets.

    The Job is kept after it finishes: it is the record that the bootstrap ran. A failed one
    stays failed until a person deletes it (then it runs again).
    """
    manifest = builders.bootstrap_job(obs.owner, lm, jobs=obs.jobs_image)
    if manifest is None or obs.registry or lm.training.bootstrap is None:
        return Step()
    name = manifest["metadata"]["name"]
    source = lm.training.bootstrap.sources()[0]
    job = obs.children.get(("Job", name))
    if job is None:
        return Step(
            (
                CreateOnce(manifest=manifest, kind="Job", name=name),
                EmitEvent(
                    "Normal",
                    reasons.BOOTSTRAPPING,
                    f"Created Job {name}: training the first model from spec.training.bootstrap",
                    once_key=f"bootstrap-{obs.uid}",
                ),
            ),
            (
                conditions.false(
                    reasons.TRAINED,
                    reasons.BOOTSTRAPPING,
                    f"Job {name} trains the first model from bootstrap.{source}",
                ),
            ),
        )
    state, detail = _job_state(job)
    if state == "Failed":
        failed = conditions.false(
            reasons.TRAINED,
            reasons.BOOTSTRAP_FAILED,
            f"Job {name} failed ({detail or 'see its Pod'}): kubectl logs job/{name}; fix "
            f"bootstrap.{source}, then kubectl delete job {name} to run it again",
        )
        before: dict[str, Any] = next(
            (c for c in obs.status.get("conditions") or [] if c.get("type") == reasons.TRAINED),
            {},
        )
        events: tuple[Action, ...] = ()
        if before.get("reason") != reasons.BOOTSTRAP_FAILED:
            events = (EmitEvent("Warning", reasons.BOOTSTRAP_FAILED, failed.message),)
        return Step(events, (failed,))
    message = (
        f"Job {name} finished; waiting for the version it published"
        if state == "Complete"
        else f"Job {name} trains the first model from bootstrap.{source}"
    )
    return Step(conditions=(conditions.false(reasons.TRAINED, reasons.BOOTSTRAPPING, message),))


# Step 6: readiness ----------------------------------------------------------------------


def readiness(
    lm: LeadModelSpec, obs: Observed, goal: Target, serving: int | None, found: Candidate | None
) -> Step:
    """Ready: serving something, and the spec asks for nothing we refuse.

    Under Manual promotion a passing candidate that is not served waits for a person:
    Ready=False/AwaitingPromotion while nothing is served, else said in Ready's message.
    """
    waiting = awaiting_promotion(lm, obs, serving, found)
    d = obs.deployment
    if goal.blocked is not None:
        ready = goal.blocked
    elif d.blocked is not None and d.version is not None:
        ready = conditions.false(
            reasons.READY,
            d.blocked.reason,
            f"scorer Pods for version {d.version} cannot start: {d.blocked.message}",
        )
    elif d.blocked is not None and serving is None:
        ready = conditions.false(
            reasons.READY, d.blocked.reason, f"scorer Pods cannot start: {d.blocked.message}"
        )
    elif serving is not None and d.unavailable:
        ready = conditions.false(
            reasons.READY,
            reasons.SCORER_UNAVAILABLE,
            f"version {serving}: {d.ready} of {d.desired} scorer Pods ready{_why(d.unready_why)}",
        )
    elif serving is None and waiting is not None:
        ready = conditions.false(
            reasons.READY,
            reasons.AWAITING_PROMOTION,
            f"version {waiting} passed the gates; set spec.modelVersion to {waiting} to promote it",
        )
    elif serving is None and lm.scorer.cold_start is ColdStart.ACCEPT_UNSCORED:
        ready = conditions.false(
            reasons.READY,
            reasons.COLD_START,
            "no model yet: the scorer stores leads unscored (spec.scorer.coldStart) until a "
            "version passes the gates",
        )
    elif serving is None:
        hint = (
            "set spec.modelVersion to promote a candidate"
            if lm.promotion is Promotion.MANUAL
            else "waiting for a version that passes the gates"
        )
        ready = conditions.false(reasons.READY, reasons.NO_MODEL, hint)
    else:
        ready = conditions.true(
            reasons.READY,
            reasons.SERVING,
            f"serving version {serving}"
            + (f"; version {waiting} passed the gates and awaits promotion" if waiting else ""),
        )
    events: tuple[Action, ...] = ()
    if goal.blocked is not None or ready.reason in _WARN_ONCE:
        previous = next(
            (c for c in obs.status.get("conditions") or [] if c.get("type") == reasons.READY),
            None,
        )
        # Said once per change: an Event each pass would be noise.
        if previous is None or previous.get("reason") != ready.reason:
            events = (EmitEvent("Warning", ready.reason, ready.message),)
    return Step(events, (ready,))


def awaiting_promotion(
    lm: LeadModelSpec, obs: Observed, serving: int | None, found: Candidate | None
) -> str | None:
    """Under Manual promotion, the passing candidate that is not served and was not rolled
    back (a person decides)."""
    if (
        lm.promotion is Promotion.MANUAL
        and lm.pinned_version is None
        and found is not None
        and found.verdict is Verdict.PASSED
        and found.version != str(serving)
    ):
        entry = obs.entry(int(found.version))
        return None if entry is not None and entry.rolled_back else found.version
    return None


# Ready reasons that a Warning Event accompanies (besides a refused spec).
_WARN_ONCE = reasons.NAMESPACE_FAULTS | {reasons.SCORER_UNAVAILABLE, reasons.PODS_NOT_STARTED}


# Step 7: registry GC --------------------------------------------------------------------


def registry_gc(lm: LeadModelSpec, obs: Observed, keep: Iterable[int | None]) -> Step:
    """Versions beyond history.limit, never serving, previous, pinned or rolling out."""
    doomed = registry.garbage(
        (e.version for e in obs.registry), limit=lm.history.limit, keep=tuple(keep)
    )
    if not doomed:
        return Step()
    gone = tuple(registry.configmap_name(obs.name, v) for v in doomed)
    return Step(
        (
            GarbageCollect(gone, s3=lm.artifacts.s3),
            EmitEvent(
                "Normal",
                reasons.GARBAGE_COLLECTED,
                f"Deleted {len(gone)} registry version(s) beyond history.limit "
                f"{lm.history.limit}: {', '.join(str(v) for v in doomed)}",
            ),
        )
    )


# Status ---------------------------------------------------------------------------------


_MARK_FIELDS = {
    registry.ANN_PROMOTED_AT: "promoted_at",
    registry.ANN_RETIRED_AT: "retired_at",
    registry.ANN_ROLLED_BACK_AT: "rolled_back_at",
    registry.ANN_ROLLBACK_REASON: "rollback_reason",
    registry.ANN_ROLLED_BACK_BY: "rolled_back_by",
    registry.ANN_ROLLBACK_MESSAGE: "rollback_message",
}


def with_marks(obs: Observed, marks: Iterable[MarkVersion]) -> Observed:
    """The world after these history marks: the status describes it, not the one before."""
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


def derived_health(lm: LeadModelSpec, entry: Entry | None, now: datetime) -> str:
    """The seed's health from registry facts (the shared table), when the scorer is not asked.

    Stale means older than the LeadModel's own gates.maxAgeHours.
    """
    if entry is None:
        return health.decide(health.Signals(loaded=False)).value
    auc = registry.decimal_or_none(entry.auc)
    created = registry.parse_time(entry.created_at)
    signals = health.Signals(
        loaded=True,
        auc=float(auc) if auc is not None else None,
        age_hours=(now - created).total_seconds() / 3600 if created is not None else None,
    )
    thresholds = replace(health.DEFAULT_THRESHOLDS, stale_hours=float(lm.gates.max_age_hours))
    return health.decide(signals, thresholds).value


def previous_version(obs: Observed, steady: builders.Rollout) -> int | None:
    """The version served before this one. An image rollout (or its rollback) moves no
    version, so then it is the newest other version promoted, as the registry's history
    says: what `leadops rollback` returns to."""
    if steady.previous is None or steady.previous != steady.version:
        return steady.previous
    earlier = sorted(
        (e for e in obs.registry if e.promoted_at and e.version != steady.version),
        key=lambda e: e.promoted_at,
    )
    return earlier[-1].version if earlier else None


def status(
    lm: LeadModelSpec,
    obs: Observed,
    now: datetime,
    *,
    serving: int | None,
    steady: builders.Rollout,
    found: Candidate | None,
    conds: Iterable[Condition],
    experiment: ExperimentStatus | None = None,
    pii: PiiGateStatus | None = None,
    replay: ReplayStatus | None = None,
) -> LeadModelStatus:
    entry = obs.entry(serving)
    report = obs.scorer if obs.scorer is not None and obs.scorer.version == serving else None
    promoted = sorted(
        (e for e in obs.registry if e.promoted_at), key=lambda e: e.promoted_at, reverse=True
    )
    history = [
        HistoryEntry(
            version=str(e.version),
            auc=e.auc,
            promoted_at=e.promoted_at,
            retired_at=e.retired_at,
            reason=e.rollback_reason
            or (reasons.SERVING if e.version == serving else reasons.HISTORY_SUPERSEDED),
            rolled_back_at=e.rolled_back_at,
            rolled_back_by=e.rolled_back_by,
            message=e.rollback_message,
        )
        for e in promoted[: lm.history.limit]
    ]
    previous = previous_version(obs, steady)
    return LeadModelStatus(
        observed_generation=obs.generation,
        serving_version=str(serving) if serving is not None else "",
        previous_version=str(previous) if previous is not None else "",
        candidate=found,
        auc=entry.auc if entry else "",
        drift_score=report.drift_score if report else "",
        estimated_auc=report.estimated_auc if report else "",
        estimated_auc_leads=report.estimated_auc_leads if report else 0,
        health=report.health if report else derived_health(lm, entry, now),
        scorer_pods_reported=obs.scorer.pods if obs.scorer is not None else 0,
        scorer_pods_asked=obs.scorer.asked if obs.scorer is not None else 0,
        last_rollout=steady.started_at,
        awaiting_promotion=awaiting_promotion(lm, obs, serving, found) or "",
        history=history,
        conditions=conditions.stamp(
            conds, obs.status.get("conditions") or [], generation=obs.generation, now=now
        ),
        experiment=experiment,
        pii_gate=pii,
        replay=replay,
        matured_auc=matured_guard.status(lm, obs, obs.status.get("maturedAuc") or []),
    )


# The plan -------------------------------------------------------------------------------


def experiment(lm: LeadModelSpec, obs: Observed, now: datetime) -> experiments.Decision:
    """The experiment's decision; its variant models must be registry versions that pass the
    gates (as a pinned version: an experiment outlasts maxAgeHours)."""
    digests = {
        e.version: e.facts.digest
        for e in obs.registry
        if e.facts is not None
        and not e.rolled_back
        and verdict_of(e, lm, obs, now, pinned=True).passed
    }
    previous = obs.status.get("experiment")
    return experiments.decide(
        lm,
        verdict_configmaps=obs.experiment_verdicts,
        annotations=obs.annotations,
        previous=previous if isinstance(previous, dict) else None,
        digests=digests,
        now=now,
    )


def with_experiment(
    lm: LeadModelSpec, obs: Observed, moved: Move, served: experiments.Served | None
) -> Move:
    """A rollout or rollback's Deployment runs the experiment as the steady one does: without
    it the move would drop LEADOPS_EXPERIMENT, and the next pass roll the Pods again to add
    it back (a winning model variant and its flags arrive in one rollout)."""
    if served is None:
        return moved
    actions = tuple(
        replace(
            a, manifest=builders.scorer_deployment(obs.owner, lm, moved.steady, experiment=served)
        )
        if isinstance(a, RollOut | RollBack)
        else a
        for a in moved.step.actions
    )
    return replace(moved, step=replace(moved.step, actions=actions))


def plan(lm: LeadModelSpec, obs: Observed, now: datetime) -> Plan:
    trial = experiment(lm, obs, now)
    # A failed rollout is undone before anything new is tried.
    failure = rollout_failure(lm, obs)
    if failure is not None:
        goal = Target(obs.deployment.version)
        replayed = replay_hold(lm, obs, goal, trial)
        # Rollbacks never wait for the PII gate: it is judged, not applied.
        gated = pii_hold(lm, obs, goal, now)
        moved = roll_back(lm, obs, failure, now)
        serving = obs.deployment.previous
    else:
        goal = target(lm, obs, now, trial)
        replayed = replay_hold(lm, obs, goal, trial)
        gated = pii_hold(lm, obs, replayed.goal, now)
        goal = gated.goal
        moved = move(lm, obs, goal, now)
        serving = serving_version(obs)
    moved = with_experiment(lm, obs, moved, trial.served)
    moving = any(isinstance(a, RollOut | RollBack) for a in moved.step.actions)
    kids = children(lm, obs, moved.steady, moving=moving, experiment=trial)
    ensures = tuple(a for a in kids.actions if isinstance(a, Ensure))
    removals = tuple(a for a in kids.actions if not isinstance(a, Ensure))
    judged, found = candidate(lm, obs, now)
    boot = bootstrap(lm, obs)
    if boot.conditions:  # says more than "no model version in the registry yet"
        said = {c.type for c in boot.conditions}
        judged = Step(judged.actions, tuple(c for c in judged.conditions if c.type not in said))
    ready = readiness(lm, obs, goal, serving, found)
    if goal.held is not None:
        ready = Step(ready.actions, tuple(_held_said(c, goal.held) for c in ready.conditions))
    if replayed.decision.said:
        ready = Step(
            ready.actions,
            tuple(_replay_said(c, replayed.decision.said) for c in ready.conditions),
        )
    d = obs.deployment
    gc = registry_gc(
        lm,
        obs,
        (d.version, d.previous, lm.pinned_version, goal.version, moved.steady.version,
         moved.steady.previous, previous_version(obs, moved.steady)),
    )  # fmt: skip
    actions = (
        ensures
        + boot.actions
        + replayed.decision.actions
        + gated.step.actions
        + moved.step.actions
        + removals
        + judged.actions
        + ready.actions
        + gc.actions
        + trial.events
    )
    if trial.stale:
        actions += (GarbageCollect(trial.stale),)
    conds = (
        moved.step.conditions
        + boot.conditions
        + judged.conditions
        + ready.conditions
        + gated.step.conditions
    )
    if replayed.decision.condition is not None:
        conds += (replayed.decision.condition,)
    if trial.condition is not None:
        conds += (trial.condition,)
    actions += early_auc.events(conds, obs.status.get("conditions") or [])
    marked = with_marks(obs, (a for a in actions if isinstance(a, MarkVersion)))
    return Plan(
        actions=actions,
        conditions=conds,
        status=status(
            lm,
            marked,
            now,
            serving=serving,
            steady=moved.steady,
            found=found,
            conds=conds,
            experiment=trial.status,
            pii=gated.status,
            replay=replayed.decision.status,
        ),
        requeue_after=_sooner(
            _sooner(moved.requeue_after, gated.requeue_after), replayed.decision.requeue_after
        ),
    )


def _sooner(a: float | None, b: float | None) -> float | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _held_said(cond: Condition, held: int) -> Condition:
    """Ready's message names the promotion the PII gate holds (Ready itself is unchanged:
    the serving version still serves)."""
    if cond.type != reasons.READY:
        return cond
    said = f"version {held} waits for the PII gate (PiiCompliant)"
    return cond.model_copy(update={"message": f"{cond.message}; {said}" if cond.message else said})


def _replay_said(cond: Condition, said: str) -> Condition:
    """Ready's message names the promotion the replay gate holds (the serving version serves)."""
    if cond.type != reasons.READY:
        return cond
    return cond.model_copy(update={"message": f"{cond.message}; {said}" if cond.message else said})
