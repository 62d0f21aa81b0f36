"""The world as one LeadModel's reconcile sees it: frozen values, no API client.

`read_world.py` fills these from the cluster; `plan.py` decides from them; tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from leadops.operator import builders
from leadops.operator.registry import Entry
from leadops.operator.rollout import RolloutState
from leadops.operator.spec import PiiBackfillRun


@dataclass(frozen=True)
class MaturedReport:
    """What a scorer's /ops/matured-auc said: the guard's verdict for one promotion (numbers
    as the scorer wrote them, "" when it has none)."""

    state: str
    serving_version: int
    previous_version: int
    leads: int = 0
    conversions: int = 0
    serving_auc: str = ""
    previous_auc: str = ""
    difference: str = ""
    ci_low: str = ""
    ci_high: str = ""
    max_drop: str = ""
    alpha: str = ""


# A final verdict over one still collecting; a drop over the rest (the Pods read one store, so
# they agree once final; one that has not computed it yet says Collecting).
_MATURED_RANK = {"Drop": 0, "NoDrop": 1, "Inconclusive": 1, "Expired": 1}


def _matured(reports: list[ScorerReport]) -> MaturedReport | None:
    found = [r.matured for r in reports if r.matured is not None]
    if not found:
        return None
    return min(found, key=lambda m: (_MATURED_RANK.get(m.state, 2), -m.leads))


@dataclass(frozen=True)
class ScorerReport:
    """What the scorer's /ops/model-status said (None in Observed when unreachable); from
    several Pods, `combine()`d: `pods` answered of `asked` ready ones."""

    version: int | None
    health: str
    auc: str = ""
    drift_score: str = ""
    pods: int = 1
    asked: int = 1
    # The AUC expected from recent leads before outcomes arrive (CBPE) and the leads it rests
    # on; combined: the mean of the Pods' estimates weighted by their leads.
    estimated_auc: str = ""
    estimated_auc_leads: int = 0
    # The matured-AUC guard's verdict (/ops/matured-auc); None: no guard, or not asked.
    matured: MaturedReport | None = None


# Worst first: the precedence of leadops.contract.health (no_model > error > critical > ...).
_SEVERITY = (
    "no_model",
    "error",
    "critical_low_auc",
    "warning_low_auc",
    "warning_high_drift",
    "warning_stale",
    "ok",
)


def _rank(health: str) -> float:
    # A word this operator does not know ranks just above ok: shown, never taken for ok.
    return float(_SEVERITY.index(health)) if health in _SEVERITY else len(_SEVERITY) - 1.5


def _drift(report: ScorerReport) -> float:
    try:
        return float(report.drift_score)
    except ValueError:
        return float("-inf")


def _estimate(reports: list[ScorerReport]) -> tuple[str, int]:
    """The Pods' estimated AUCs as one: their mean weighted by the leads each rests on (every
    Pod sees a share of the same traffic), and the leads in all; ("", 0) when none has one."""
    weighted, leads = Decimal(0), 0
    for report in reports:
        try:
            value = Decimal(report.estimated_auc)
        except InvalidOperation:
            continue
        if report.estimated_auc_leads > 0 and value.is_finite() and 0 <= value <= 1:
            weighted += value * report.estimated_auc_leads
            leads += report.estimated_auc_leads
    if leads == 0:
        return "", 0
    return str((weighted / leads).quantize(Decimal("0.0001"))), leads


def combine(reports: list[ScorerReport], *, asked: int) -> ScorerReport | None:
    """One report for many Pods: the worst health wins (ties: the newest version), with that
    Pod's version and AUC; drift is the highest any Pod serving that version reports (each Pod
    sees its own share of the traffic: one drifting share is enough to say so); the estimated
    AUC is the lead-weighted mean over the Pods serving that version."""
    if not reports:
        return None
    worst = min(reports, key=lambda r: (_rank(r.health), -(r.version or 0)))
    same = [r for r in reports if r.version == worst.version]
    drifting = [r for r in same if r.drift_score]
    estimated_auc, estimated_leads = _estimate(same)
    return ScorerReport(
        version=worst.version,
        health=worst.health,
        auc=worst.auc,
        drift_score=max(drifting, key=_drift).drift_score if drifting else "",
        pods=len(reports),
        asked=asked,
        estimated_auc=estimated_auc,
        estimated_auc_leads=estimated_leads,
        matured=_matured(same),
    )


@dataclass(frozen=True)
class ReplayRun:
    """One replay Job (spec.guards.replay) as the Job and its Pods say: Running, Succeeded
    (`report`: the verdict JSON its Pod left as termination message) or Failed (`message`)."""

    job: str
    uid: str
    candidate: int
    baseline: int
    state: str
    report: Mapping[str, Any] | None = None
    message: str = ""
    finished_at: str = ""


@dataclass(frozen=True)
class Observed:
    name: str
    namespace: str
    uid: str
    generation: int
    registry: tuple[Entry, ...] = ()
    deployment: RolloutState = field(default_factory=RolloutState)
    children: Mapping[tuple[str, str], Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    prometheus_operator: bool = False
    alert_rules: bool = False  # the operator should keep a PrometheusRule for this LeadModel
    alert_for: tuple[tuple[str, str], ...] = ()  # LEADOPS_ALERT_FOR: alerts' `for:` overrides
    scrape_interval: str = builders.DEFAULT_SCRAPE_INTERVAL  # LEADOPS_SCRAPE_INTERVAL
    jobs_image: str = ""  # LEADOPS_JOBS_IMAGE (empty: derived from the scorer image)
    signing_key_configured: bool = False
    scorer: ScorerReport | None = None
    status: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # The experiment evaluations' ConfigMaps (leadops.operator.experiment) and the
    # LeadModel's annotations (a person's `leadops experiment promote|abort`).
    experiment_verdicts: tuple[Mapping[str, Any], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The PII gate's inputs (pii_gate.py): finished real backfill runs from their Pods, the
    # Pods of runs still going, and when the LeadModel was created (None: not known).
    backfill_runs: tuple[PiiBackfillRun, ...] = ()
    backfill_running: tuple[str, ...] = ()
    created: datetime | None = None
    # The replay gate's input (replay_gate.py): the replay Jobs seen, with their Pods' results.
    replay_runs: tuple[ReplayRun, ...] = ()

    @property
    def owner(self) -> builders.Owner:
        return builders.Owner(name=self.name, namespace=self.namespace, uid=self.uid)

    def entry(self, version: int | None) -> Entry | None:
        return next((e for e in self.registry if e.version == version), None)

    @property
    def objects(self) -> Mapping[int, str]:
        """version -> s3:// URL of the registry's versions stored in object storage."""
        return {e.version: e.object_url for e in self.registry if e.object_url}
