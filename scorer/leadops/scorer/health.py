"""Model health: the operations guide's status values, decided by one pure function.

Precedence, first match wins (the worst problem is the one reported):

    no_model > error > critical_low_auc > warning_low_auc
             > warning_high_drift > warning_stale > ok

- no_model:            no model is loaded.
- error:               the last load/reload failed with an unexpected exception, or
                       scoring raised; cleared by the next successful load.
- critical_low_auc:    auc < auc_critical (default 0.55).
- warning_low_auc:     auc_critical <= auc < auc_warning (default 0.65).
- warning_high_drift:  drift_score > drift_warning (default 3.0 sigma).
- warning_stale:       model age > stale_hours (default 48 h).
- ok:                  none of the above.

A *rejected* reload (missing file, bad digest, AUC gate...) is not `error`: the
old model keeps serving and its own health stands.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class Health(enum.StrEnum):
    OK = "ok"
    WARNING_LOW_AUC = "warning_low_auc"
    CRITICAL_LOW_AUC = "critical_low_auc"
    WARNING_HIGH_DRIFT = "warning_high_drift"
    WARNING_STALE = "warning_stale"
    NO_MODEL = "no_model"
    ERROR = "error"


NOT_READY = frozenset({Health.NO_MODEL, Health.ERROR, Health.CRITICAL_LOW_AUC})


@dataclass(frozen=True, slots=True)
class Thresholds:
    auc_warning: float = 0.65
    auc_critical: float = 0.55
    drift_warning: float = 3.0
    stale_hours: float = 48.0


@dataclass(frozen=True, slots=True)
class Observed:
    """What health is decided from; None = unknown (not yet measured)."""

    loaded: bool
    error: bool = False
    auc: float | None = None
    drift_score: float | None = None
    age_hours: float | None = None


# The precedence table: first rule that applies wins, so order IS the documented precedence.
RULES: tuple[tuple[Health, Callable[[Observed, Thresholds], bool]], ...] = (
    (Health.NO_MODEL, lambda o, t: not o.loaded),
    (Health.ERROR, lambda o, t: o.error),
    (Health.CRITICAL_LOW_AUC, lambda o, t: o.auc is not None and o.auc < t.auc_critical),
    (Health.WARNING_LOW_AUC, lambda o, t: o.auc is not None and o.auc < t.auc_warning),
    (
        Health.WARNING_HIGH_DRIFT,
        lambda o, t: o.drift_score is not None and o.drift_score > t.drift_warning,
    ),
    (Health.WARNING_STALE, lambda o, t: o.age_hours is not None and o.age_hours > t.stale_hours),
)


def decide(observed: Observed, thresholds: Thresholds) -> Health:
    """The model's health per the precedence in this module's docstring."""
    return next((h for h, applies in RULES if applies(observed, thresholds)), Health.OK)
