"""The matured-AUC guard in the scorer: shadow-score with the previous version, then judge.

After a promotion the operator gives the scorer the version it replaced (LEADOPS_PREVIOUS_MODEL,
loaded through the serving path: digest, AUC floor, tree parity) and the guard's settings
(LEADOPS_MATURED_AUC: spec.guards.maturedAuc, spec.outcomes.windowDays and when the rollout
started). Until the verdict is reached or maxDays have passed, every lead the serving model
answers is scored by the previous model too; its score goes into the lead's record beside the
serving one (`previous_score`, `previous_version`, `scored_at`: numbers, no PII) and the lead
into the guard index.

The verdict (`leadops.stats.matured_auc`: the first matured leads that reach minLeads and
minConversions, DeLong's paired interval of serving - previous) is computed when someone asks
(GET /ops/matured-auc, what the operator reads; a metrics scrape) at most once per
`refresh_seconds`, from the store, so every replica computes the same one; once final it is
kept. The operator decides what to do with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from leadops.scorer import metrics, store
from leadops.scorer.model import ServingModel
from leadops.stats import matured_auc
from leadops.stats.maturity import DAY

logger = logging.getLogger(__name__)

# Verdict states beyond the statistics': no guard configured, or maxDays (plus the window)
# passed before enough leads matured.
OFF = "Off"
EXPIRED = "Expired"


class GuardConfig(BaseModel):
    """LEADOPS_MATURED_AUC: what the operator asks of the guard for this rollout."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    serving_version: int = Field(ge=0, description="The promoted version the guard watches.")
    previous_version: int = Field(ge=0, description="The version it replaced (in shadow).")
    since: float = Field(ge=0, description="When the promotion started (unix seconds).")
    min_leads: int = Field(default=1000, ge=2)
    min_conversions: int = Field(default=50, ge=1)
    max_drop: Decimal = Field(default=Decimal("0.02"), ge=0, le=1)
    alpha: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)
    max_days: int = Field(default=30, ge=1, le=365)
    window_days: int = Field(default=14, ge=1, le=365)


@dataclass(frozen=True, slots=True)
class Report:
    """The guard's state as /ops/matured-auc says it."""

    state: str
    verdict: matured_auc.Verdict | None = None


@dataclass
class Guard:
    """One rollout's guard: the previous model, the settings, the verdict once reached."""

    config: GuardConfig
    previous: ServingModel
    window_seconds: float
    max_seconds: float
    refresh_seconds: float = 30.0
    _final: Report | None = None
    _last: tuple[float, Report] | None = None
    _failed_logged: bool = field(default=False, repr=False)

    @property
    def stats(self) -> matured_auc.Settings:
        c = self.config
        return matured_auc.Settings(
            min_leads=c.min_leads,
            min_conversions=c.min_conversions,
            max_drop=float(c.max_drop),
            alpha=float(c.alpha),
            window_seconds=self.window_seconds,
        )

    def shadowing(self, serving: ServingModel, *, now: float) -> bool:
        """Whether a lead answered by `serving` now is scored by the previous model too."""
        return (
            serving.version == self.config.serving_version
            and self._final is None
            and now < self.config.since + self.max_seconds
        )

    def shadow_fields(self, row: dict[str, str], *, now: float) -> dict[str, str] | None:
        """The record fields of the previous model's score of `row`; None when it raised (the
        lead is answered all the same, and left out of the guard)."""
        try:
            score = self.previous.score_row(row)[0]
        except Exception:
            if not self._failed_logged:  # once, not once per lead
                self._failed_logged = True
                logger.exception(
                    "Shadow scoring failed with previous version %d", self.previous.version
                )
            return None
        return {
            "scored_at": f"{now:.3f}",
            "previous_version": str(self.config.previous_version),
            "previous_score": repr(score),
        }

    async def report(self, lead_store: store.LeadStore, *, now: float | None = None) -> Report:
        """The verdict now (computed at most once per refresh_seconds; kept once final)."""
        if self._final is not None:
            return self._final
        at = time.time() if now is None else now
        last = self._last
        if last is not None and at - last[0] < self.refresh_seconds:
            return last[1]
        found = await self._evaluate(lead_store, now=at)
        if found.state != matured_auc.Outcome.COLLECTING:
            self._final = found
            logger.info(
                "Matured-AUC verdict for version %d against %d: %s",
                self.config.serving_version,
                self.config.previous_version,
                found.state,
            )
        self._last = (at, found)
        return found

    async def _evaluate(self, lead_store: store.LeadStore, *, now: float) -> Report:
        c = self.config
        settings = self.stats
        leads: list[matured_auc.GuardLead] = []
        # Only leads old enough to have matured are read, oldest first (the index is scored by
        # when each lead was stored, a moment after it was scored).
        async for record in lead_store.guard_leads(since=c.since, until=now - self.window_seconds):
            lead = _lead(record, c)
            if lead is not None:
                leads.append(lead)
        verdict = matured_auc.evaluate(leads, settings, now=now)
        if verdict.final:
            return Report(str(verdict.outcome), verdict)
        if now >= c.since + self.max_seconds + self.window_seconds:
            return Report(EXPIRED, verdict)  # every lead it could judge matured: too few
        return Report(str(verdict.outcome), verdict)

    def publish(self, m: metrics.Metrics, report: Report) -> None:
        """lead_model_matured_auc{version} for both versions once there are AUCs."""
        verdict = report.verdict
        if verdict is None or verdict.serving_auc is None or verdict.previous_auc is None:
            return
        m.model_matured_auc.labels(str(self.config.serving_version)).set(verdict.serving_auc)
        m.model_matured_auc.labels(str(self.config.previous_version)).set(verdict.previous_auc)


def _number(record: dict[str, str], name: str) -> float | None:
    try:
        value = float(record[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _lead(record: dict[str, str], config: GuardConfig) -> matured_auc.GuardLead | None:
    """A stored lead as the guard counts it; None when it is another rollout's or incomplete."""
    if record.get("model_version") != str(config.serving_version):
        return None
    if record.get("previous_version") != str(config.previous_version):
        return None
    scored_at = _number(record, "scored_at")
    serving = _number(record, "score")
    previous = _number(record, "previous_score")
    if scored_at is None or serving is None or previous is None:
        return None
    converted_at = _number(record, "outcome_at") if record.get("converted") == "1" else None
    return matured_auc.GuardLead(
        scored_at=scored_at,
        serving_score=serving,
        previous_score=previous,
        converted_at=converted_at,
    )


def window_seconds(config: GuardConfig, override: int | None) -> float:
    return float(override) if override is not None else config.window_days * DAY


def max_seconds(config: GuardConfig, override: int | None) -> float:
    return float(override) if override is not None else config.max_days * DAY
