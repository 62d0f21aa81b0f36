"""Everything one running scorer holds: the serving model reference, store, writer, metrics.

The serving model is ONE attribute. A reload builds and checks a whole new
ServingModel off the event loop, then rebinds that attribute; a request reads it
once, so it scores and reports with the same model from start to end.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leadops.contract import artifact as contract_artifact
from leadops.scorer import health, matured, metrics, store, writer
from leadops.scorer.auth import IngestKeys, KeyRing
from leadops.scorer.columns import AttributeColumns
from leadops.scorer.model import ServingModel
from leadops.scorer.settings import Settings
from leadops.scorer.variants import ConcludedExperiment, InvalidExperiment, RunningExperiment

if TYPE_CHECKING:
    from leadops.scorer.followup_writer import FollowUpWriter
    from leadops.scorer.replicas import Announcer

logger = logging.getLogger(__name__)

# Health moves with AUC (per model), drift (per window) and age (hours): one second is fresh.
HEALTH_CACHE_SECONDS = 1.0
# Scoring is `error` when at least half of the latest SCORING_WINDOW requests raised (and at
# least SCORING_MIN_FAILURES did): a model that fails every lead is taken out of service after
# a few requests, but one poisoned lead cannot make a healthy scorer unready (or rolled back).
SCORING_WINDOW = 50
SCORING_MIN_FAILURES = 10


@dataclass
class ScorerState:
    settings: Settings
    metrics: metrics.Metrics
    keyring: KeyRing
    ingest_keys: IngestKeys
    store: store.LeadStore
    writer: writer.RecordWriter
    thresholds: health.Thresholds
    columns: AttributeColumns
    verify_keys: contract_artifact.VerifyKeys | None = None
    model: ServingModel | None = None
    # Set by an unexpected exception while loading; cleared by a good load.
    error: bool = False
    # The latest scoring outcomes of the serving model, True where scoring raised.
    scoring_failed: deque[bool] = field(default_factory=lambda: deque(maxlen=SCORING_WINDOW))
    # The experiment with its variant models, its winner, or why it does not run (set before
    # serving).
    experiment: RunningExperiment | ConcludedExperiment | InvalidExperiment | None = None
    started_at: float = field(default_factory=time.time)
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Tells the other replicas about a reload and follows theirs (None without Redis).
    announcer: Announcer | None = None
    # Schedules scored leads' follow-ups (LEADOPS_FOLLOWUPS_CONFIG); None without.
    followups: FollowUpWriter | None = None
    # The matured-AUC guard with the previous model (LEADOPS_MATURED_AUC); None without, or
    # when the previous model was refused (`guard_error` says why).
    guard: matured.Guard | None = None
    guard_error: str = ""
    _health_cache: tuple[float, ServingModel | None, bool, health.Health] | None = field(
        default=None, repr=False
    )

    def serve(self, model: ServingModel) -> ServingModel | None:
        """Swap in a fully built model; return the one it replaces."""
        previous, self.model = self.model, model
        self.error = False
        self.scoring_failed.clear()
        m = self.metrics
        m.model_loaded.set(1)
        m.model_auc.set(model.auc)
        m.model_version.set(model.version)
        m.model_n_train.set(model.n_train)
        m.model_last_reload_ts.set(model.loaded_at)
        m.model_drift_score.set(0)
        m.model_estimated_auc.set(math.nan)
        m.model_estimated_auc_leads.set(0)
        return previous

    @property
    def scoring_broken(self) -> bool:
        failures = sum(self.scoring_failed)
        return failures >= SCORING_MIN_FAILURES and 2 * failures >= len(self.scoring_failed)

    def health_now(self, *, now: float | None = None) -> health.Health:
        """Health now; the scoring path (no `now`) reuses a value up to HEALTH_CACHE_SECONDS old."""
        model, error = self.model, self.error or self.scoring_broken
        if now is None:
            cached = self._health_cache
            if (
                cached is not None
                and cached[0] > time.monotonic()
                and cached[1] is model
                and cached[2] == error
            ):
                return cached[3]
        value = self._decide_health(model, error=error, now=now)
        self._health_cache = (time.monotonic() + HEALTH_CACHE_SECONDS, model, error, value)
        return value

    def _decide_health(
        self, model: ServingModel | None, *, error: bool, now: float | None
    ) -> health.Health:
        if model is None:
            return health.decide(health.Observed(loaded=False), self.thresholds)
        at = time.time() if now is None else now
        observed = health.Observed(
            loaded=True,
            error=error,
            auc=model.auc,
            drift_score=model.drift.score(),
            age_hours=model.age_hours(now=at),
        )
        return health.decide(observed, self.thresholds)

    def refresh_drift_metric(self) -> None:
        """The drift and estimated-AUC gauges, brought up to date (computed on read)."""
        model = self.model
        if model is not None:
            self.metrics.model_drift_score.set(model.drift.score(fresh=True) or 0.0)
            estimate = model.estimate.estimate()
            self.metrics.model_estimated_auc.set(math.nan if estimate is None else estimate.auc)
            self.metrics.model_estimated_auc_leads.set(0 if estimate is None else estimate.leads)
