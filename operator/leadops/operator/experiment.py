"""The A/B experiment of a LeadModel, decided purely from the spec and the world.

The evaluation runs as a CronJob on the scorer/jobs image (`leadops experiment evaluate`,
numpy and scipy: never in the operator image); its Job stores each verdict as a new
ConfigMap (its ServiceAccount may only create ConfigMaps). The operator reads the newest
verdict of the spec's experiment and decides the phase, the Events, what the scorer runs
and whether a winning model variant is rolled out. A person's `leadops experiment
promote|abort` is an annotation on the LeadModel (never the spec). Everything is in the world
(verdict ConfigMaps, annotations, the status' start time), so a restarted operator decides
the same, with the same looks and alpha spent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from leadops.operator import conditions, reasons, registry
from leadops.operator.actions import EmitEvent
from leadops.operator.spec import (
    Condition,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    ExperimentVariantStatus,
    LeadModelSpec,
    Promotion,
)

COMPONENT_VERDICT: Final = "experiment-verdict"
LABEL_EXPERIMENT: Final = "leadops.io/experiment"
VERDICT_KEY: Final = "verdict.json"
# `leadops experiment promote|abort NAME` writes "<action>:<experiment>" here.
ANN_ACTION: Final = "leadops.io/experiment-action"
ACTION_PROMOTE: Final = "promote"
ACTION_ABORT: Final = "abort"
# Verdict ConfigMaps kept per LeadModel (the newest decide; older ones are history).
KEEP_VERDICTS: Final = 3
MAX_VERDICT_BYTES: Final = 64 * 1024
MAX_DETAIL: Final = 512
# Phases in which the scorer buckets leads and the CronJob evaluates.
LIVE: Final = frozenset({ExperimentPhase.RUNNING, ExperimentPhase.AWAITING_PROMOTION})


def verdict_selector(leadmodel: str) -> str:
    return f"{registry.LABEL_LEADMODEL}={leadmodel},{registry.LABEL_COMPONENT}={COMPONENT_VERDICT}"


def verdict_configmap(
    report: Mapping[str, Any], *, experiment: str, leadmodel: str, namespace: str, owner_uid: str
) -> dict[str, Any]:
    """One evaluation's JSON verdict as a ConfigMap, named by its evaluation time."""
    moment = _parse_time(str(report.get("evaluated_at", "")))
    if moment is None:
        raise ValueError("the verdict has no evaluated_at time")
    metadata: dict[str, Any] = {
        "name": f"{leadmodel}-experiment-{int(moment.timestamp())}",
        "namespace": namespace,
        "labels": {
            registry.LABEL_LEADMODEL: leadmodel,
            registry.LABEL_COMPONENT: COMPONENT_VERDICT,
            LABEL_EXPERIMENT: experiment,
            registry.MANAGED_BY: "leadops",
        },
    }
    if owner_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "leadops.io/v1alpha1",
                "kind": "LeadModel",
                "name": leadmodel,
                "uid": owner_uid,
                "blockOwnerDeletion": False,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "data": {VERDICT_KEY: json.dumps(dict(report), sort_keys=True)},
    }


@dataclass(frozen=True)
class Verdict:
    """One stored evaluation of the experiment."""

    name: str  # its ConfigMap
    experiment: str
    evaluated_at: datetime
    verdict: str
    variant: str
    reason: str
    look: int
    looks: int
    alpha_spent: str
    variants: tuple[ExperimentVariantStatus, ...]
    detail: str = ""  # a breached guardrail: which, the variant and the figures


def parse_verdict(cm: Mapping[str, Any]) -> Verdict | None:
    """A verdict ConfigMap's contents; None for one that is not readable as a verdict."""
    meta = cm.get("metadata") or {}
    text = (cm.get("data") or {}).get(VERDICT_KEY)
    if not isinstance(text, str) or len(text) > MAX_VERDICT_BYTES:
        return None
    try:
        body = json.loads(text)
        moment = _parse_time(str(body["evaluated_at"]))
        if moment is None or not isinstance(body.get("variants"), list):
            return None
        variants = tuple(
            ExperimentVariantStatus(
                name=str(v["name"]),
                assigned=int(v.get("assigned") or 0),
                leads=int(v.get("leads") or 0),
                conversions=int(v.get("conversions") or 0),
            )
            for v in body["variants"]
        )
        return Verdict(
            name=str(meta.get("name", "")),
            experiment=str((meta.get("labels") or {}).get(LABEL_EXPERIMENT, "")),
            evaluated_at=moment,
            verdict=str(body["verdict"]),
            variant=str(body.get("variant") or ""),
            reason=str(body.get("reason") or ""),
            look=int(body.get("look") or 0),
            looks=int(body.get("looks") or 0),
            alpha_spent=str(body.get("alpha_spent", "")),
            variants=variants,
            detail=str(body.get("message") or "")[:MAX_DETAIL],
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class Served:
    """The experiment as the scorer runs it: LEADOPS_EXPERIMENT and its variant models."""

    config: str  # JSON
    models: tuple[tuple[int, str], ...]  # (version, validated digest)


@dataclass(frozen=True)
class Decision:
    status: ExperimentStatus | None = None
    condition: Condition | None = None
    events: tuple[EmitEvent, ...] = ()
    served: Served | None = None
    evaluate: bool = False  # the evaluation CronJob runs (else it is suspended)
    started_at: str = ""
    promote_version: int | None = None  # a winning model variant to serve
    # No candidate replaces the control while the experiment is in the spec and not promoted:
    # an aborted, invalid or inconclusive challenger is never rolled out by the back door.
    hold_serving: bool = False
    stale: tuple[str, ...] = ()  # verdict ConfigMaps to delete


def decide(
    lm: LeadModelSpec,
    *,
    verdict_configmaps: Iterable[Mapping[str, Any]],
    annotations: Mapping[str, str],
    previous: Mapping[str, Any] | None,
    digests: Mapping[int, str],
    now: datetime,
) -> Decision:
    """The experiment's phase, Events and effects. `digests`: registry versions that pass the
    gates, with their validated digest; `previous`: status.experiment as last written."""
    exp = lm.experiment
    parsed = [v for cm in verdict_configmaps if (v := parse_verdict(cm)) is not None]
    stale = _stale(parsed, exp)
    if exp is None:
        return Decision(stale=stale)
    mine = sorted((v for v in parsed if v.experiment == exp.name), key=lambda v: v.evaluated_at)
    latest = mine[-1] if mine else None
    same = previous is not None and previous.get("name") == exp.name
    started_at = str(previous.get("startedAt") or "") if same and previous else ""
    started_at = started_at or conditions.rfc3339(now)
    action = _action(annotations, exp.name)
    phase, reason, message, winner = _phase(lm, exp, latest, action, digests)
    served = _served(exp, digests) if phase in LIVE else None
    served_variant, served_flags = "", {}
    if phase is ExperimentPhase.PROMOTED and latest is not None:
        won = _winner_flags(exp, latest.variant, previous if same else None)
        if won is not None:
            served_variant, served_flags = latest.variant, won
            served = _concluded(exp, served_variant, served_flags)
    status = ExperimentStatus(
        name=exp.name,
        phase=phase,
        reason=reason,
        message=message,
        started_at=started_at,
        verdict=latest.verdict if latest else "",
        variant=latest.variant if latest else "",
        evaluated_at=conditions.rfc3339(latest.evaluated_at) if latest else "",
        look=latest.look if latest else 0,
        looks=latest.looks if latest else exp.max_duration_days,
        alpha_spent=latest.alpha_spent if latest else "",
        variants=list(latest.variants) if latest else [],
        served_variant=served_variant,
        served_flags=served_flags,
    )
    running = phase in LIVE
    condition = (
        conditions.true(reasons.EXPERIMENT, reason, message)
        if running
        else conditions.false(reasons.EXPERIMENT, reason, message)
    )
    return Decision(
        status=status,
        condition=condition,
        events=_events(status, previous if same else None),
        served=served,
        evaluate=running,
        started_at=started_at,
        promote_version=winner,
        hold_serving=phase is not ExperimentPhase.PROMOTED,
        stale=stale,
    )


Phase = tuple[ExperimentPhase, str, str, int | None]


def _phase(
    lm: LeadModelSpec,
    exp: Experiment,
    latest: Verdict | None,
    action: str,
    digests: Mapping[int, str],
) -> Phase:
    """(phase, reason, message, model version to roll out)."""
    before = _before_verdict(lm, exp, latest, action, digests)
    if before is not None:
        return before
    assert latest is not None
    return _from_verdict(exp, latest, action)


def _before_verdict(
    lm: LeadModelSpec,
    exp: Experiment,
    latest: Verdict | None,
    action: str,
    digests: Mapping[int, str],
) -> Phase | None:
    """What holds whatever the evaluation says: a person's abort, a pin, a missing model."""
    if action == ACTION_ABORT:
        return (
            ExperimentPhase.ABORTED,
            reasons.EXPERIMENT_ABORTED_BY_USER,
            "aborted with `leadops experiment abort`; the control keeps serving",
            None,
        )
    if lm.pinned_version is not None:
        return (
            ExperimentPhase.PAUSED,
            reasons.EXPERIMENT_PINNED,
            f"spec.modelVersion pins {lm.pinned_version}: the experiment waits until unpinned",
            None,
        )
    for v in exp.variants:
        if v.model_version and int(v.model_version) not in digests:
            return (
                ExperimentPhase.INVALID,
                reasons.EXPERIMENT_UNKNOWN_VARIANT_MODEL,
                f"variant {v.name}: model version {v.model_version} is not in the registry "
                "or fails the gates; the control serves every lead",
                None,
            )
    if latest is None:
        return (
            ExperimentPhase.RUNNING,
            reasons.EXPERIMENT_NOT_YET_EVALUATED,
            "bucketing leads; the first look comes with the first evaluation",
            None,
        )
    return None


def _from_verdict(exp: Experiment, latest: Verdict, action: str) -> Phase:
    said = f"look {latest.look} of {latest.looks}: {latest.verdict} ({latest.reason})"
    if latest.detail:
        said += f", {latest.detail}"
    if latest.verdict == "invalid":
        return ExperimentPhase.INVALID, latest.reason, f"{said}; nothing is promoted", None
    if latest.verdict == "abort":
        return ExperimentPhase.ABORTED, latest.reason, f"{said}; the control keeps serving", None
    if latest.verdict == "inconclusive":
        return (
            ExperimentPhase.INCONCLUSIVE,
            latest.reason,
            f"{said}; the control keeps serving and is never replaced",
            None,
        )
    if latest.verdict == "promote":
        winner = next((v for v in exp.variants if v.name == latest.variant), None)
        version = int(winner.model_version) if winner and winner.model_version else None
        approved = exp.promotion is Promotion.AUTOMATIC or action == ACTION_PROMOTE
        if not approved:
            return (
                ExperimentPhase.AWAITING_PROMOTION,
                latest.reason,
                f"{said}: variant {latest.variant} won; promote it with "
                "`leadops experiment promote`",
                None,
            )
        how = (
            f"model version {version} rolls out; its flags are served to every lead"
            if version
            else "its flags are served to every lead"
        )
        reason = latest.reason if action != ACTION_PROMOTE else reasons.EXPERIMENT_PROMOTED_BY_USER
        return ExperimentPhase.PROMOTED, reason, f"{said}: variant {latest.variant}, {how}", version
    return ExperimentPhase.RUNNING, latest.reason, said, None


def _served(exp: Experiment, digests: Mapping[int, str]) -> Served:
    config = {
        "name": exp.name,
        "unit": str(exp.unit),
        "variants": [
            {"name": v.name, "weight": v.weight, "flags": dict(v.flags)}
            | ({"modelVersion": v.model_version} if v.model_version else {})
            for v in exp.variants
        ],
    }
    versions = sorted({int(v.model_version) for v in exp.variants if v.model_version})
    return Served(
        config=json.dumps(config, sort_keys=True, separators=(",", ":")),
        models=tuple((version, digests[version]) for version in versions),
    )


def _winner_flags(
    exp: Experiment, winner: str, previous: Mapping[str, Any] | None
) -> dict[str, str] | None:
    """The flags the winner is served with: as first recorded in status (what won is what is
    served, whatever later edits of the spec say), else its flags in the spec; None when it
    is in neither (renamed or removed before it was recorded)."""
    recorded = previous.get("servedFlags") if previous is not None else None
    if (
        previous is not None
        and previous.get("servedVariant") == winner
        and isinstance(recorded, dict)
    ):
        return {str(k): str(v) for k, v in recorded.items()}
    variant = next((v for v in exp.variants if v.name == winner), None)
    return dict(variant.flags) if variant is not None else None


def _concluded(exp: Experiment, winner: str, flags: Mapping[str, str]) -> Served | None:
    """The scorer's experiment once concluded: every lead answered with the winner's flags, no
    bucketing, no variant model (a winning model is the serving model by then). None when the
    winner is no longer a variant of the spec (the scorer names variants it knows)."""
    if all(v.name != winner for v in exp.variants):
        return None
    config = {
        "name": exp.name,
        "unit": str(exp.unit),
        "variants": [
            {"name": v.name, "weight": v.weight, "flags": dict(flags if v.name == winner else {})}
            for v in exp.variants
        ],
        "winner": winner,
    }
    return Served(config=json.dumps(config, sort_keys=True, separators=(",", ":")), models=())


def _events(status: ExperimentStatus, previous: Mapping[str, Any] | None) -> tuple[EmitEvent, ...]:
    """One Event per new verdict or phase change (not one per pass)."""
    if previous is not None and (
        previous.get("phase") == status.phase
        and previous.get("evaluatedAt", "") == status.evaluated_at
    ):
        return ()
    kind = "Normal" if status.phase in LIVE | {ExperimentPhase.PROMOTED} else "Warning"
    return (EmitEvent(kind, f"Experiment{status.phase}", f"{status.name}: {status.message}"),)


def _action(annotations: Mapping[str, str], experiment: str) -> str:
    value = annotations.get(ANN_ACTION, "")
    action, _, name = value.partition(":")
    return action if name == experiment and action in {ACTION_PROMOTE, ACTION_ABORT} else ""


def _stale(parsed: list[Verdict], exp: Experiment | None) -> tuple[str, ...]:
    """Verdicts of other (earlier) experiments, and all but the newest KEEP_VERDICTS."""
    name = exp.name if exp is not None else None
    mine = sorted((v for v in parsed if v.experiment == name), key=lambda v: v.evaluated_at)
    old = [v.name for v in parsed if v.experiment != name]
    return tuple(sorted(old + [v.name for v in mine[:-KEEP_VERDICTS]]))


def _parse_time(text: str) -> datetime | None:
    return registry.parse_time(text)
