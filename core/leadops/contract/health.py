"""Model health: the operations guide's status values, decided by one table (pure).

The scorer decides health from what it measures; the operator derives the same values from
registry facts when it cannot ask the scorer. Both use `decide()` with these thresholds, so
the two never disagree about what "warning_low_auc" means.

Precedence, first match wins (the worst problem is the one reported):

    no_model > error > critical_low_auc > warning_low_auc
             > warning_high_drift > warning_stale > ok

- no_model:            no model is loaded.
- error:               the last load/reload failed with an unexpected exception, or
                       most recent scoring requests raised; cleared by the next good load.
- critical_low_auc:    auc < auc_critical (default 0.55).
- warning_low_auc:     auc_critical <= auc < auc_warning (default 0.65).
- warning_high_drift:  drift_score > drift_warning (default 3.0 sigma).
- warning_stale:       model age > stale_hours (default 48 h).
- ok:                  none of the above.
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


# A scorer in one of these states is not ready for traffic; the operator rolls back from them.
NOT_READY = frozenset({Health.NO_MODEL, Health.ERROR, Health.CRITICAL_LOW_AUC})
CRITICAL = frozenset({Health.ERROR, Health.CRITICAL_LOW_AUC})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The seed's defaults; the scorer's LEADOPS_* settings may tighten them."""

    auc_warning: float = 0.65
    auc_critical: float = 0.55
    drift_warning: float = 3.0
    stale_hours: float = 48.0


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class Signals:
    """What health is decided from; None = unknown (not yet measured)."""

    loaded: bool
    error: bool = False
    auc: float | None = None
    drift_score: float | None = None
    age_hours: float | None = None


# The precedence table: first rule that applies wins, so order IS the documented precedence.
RULES: tuple[tuple[Health, Callable[[Signals, Thresholds], bool]], ...] = (
    (Health.NO_MODEL, lambda s, t: not s.loaded),
    (Health.ERROR, lambda s, t: s.error),
    (Health.CRITICAL_LOW_AUC, lambda s, t: s.auc is not None and s.auc < t.auc_critical),
    (Health.WARNING_LOW_AUC, lambda s, t: s.auc is not None and s.auc < t.auc_warning),
    (
        Health.WARNING_HIGH_DRIFT,
        lambda s, t: s.drift_score is not None and s.drift_score > t.drift_warning,
    ),
    (Health.WARNING_STALE, lambda s, t: s.age_hours is not None and s.age_hours > t.stale_hours),
)


def decide(signals: Signals, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Health:
    """The model's health per the precedence in this module's docstring."""
    return next((h for h, applies in RULES if applies(signals, thresholds)), Health.OK)
