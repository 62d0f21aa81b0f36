"""The matured-AUC guard's verdict: is the serving model worse than the one it replaced?

After a promotion the scorer scores every lead with both the serving version and its
predecessor (the predecessor in shadow), so the comparison is paired on the same leads. Once
leads are older than the maturity window (`maturity`), a lead converted if a conversion was
recorded within the window, and otherwise did not.

One look, on a fixed set: the verdict is computed on the FIRST matured leads (in the order they
were scored) that reach both `min_leads` and `min_conversions`, never on more. So the verdict
does not move as later leads mature, every replica computing it from the same store agrees,
and the chance of rolling back a model equal to its predecessor is that of one test: the
upper bound of the two-sided (1 - alpha) DeLong interval of (serving - previous) falls below
-max_drop nominally alpha / 2 of the time with max_drop 0, less above 0 (bench/matured_auc.py
measures it). Pure module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from leadops.stats import maturity, paired_auc

Floats = npt.NDArray[np.float64]


class Outcome(StrEnum):
    """Where the guard stands for one serving version."""

    COLLECTING = "Collecting"  # too few matured leads or conversions yet
    DROP = "Drop"  # serving is worse than previous by more than max_drop: roll back
    NO_DROP = "NoDrop"  # the one look found no such drop: the guard is done
    INCONCLUSIVE = "Inconclusive"  # the matured leads cannot give an AUC (one class only)


@dataclass(frozen=True, slots=True)
class GuardLead:
    """One lead scored by both versions: when, the two scores, and when it converted."""

    scored_at: float  # unix seconds
    serving_score: float
    previous_score: float
    converted_at: float | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    min_leads: int
    min_conversions: int
    max_drop: float
    alpha: float = 0.05
    window_seconds: float = 14 * maturity.DAY

    def __post_init__(self) -> None:
        if self.min_leads < 2 or self.min_conversions < 1:
            raise ValueError("min_leads must be at least 2 and min_conversions at least 1")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if self.max_drop < 0:
            raise ValueError("max_drop must not be negative")
        if self.window_seconds < 0:
            raise ValueError("window_seconds must not be negative")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    leads: int  # matured leads the verdict rests on (so far, while collecting)
    conversions: int
    serving_auc: float | None = None
    previous_auc: float | None = None
    difference: float | None = None  # serving - previous
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def final(self) -> bool:
        return self.outcome is not Outcome.COLLECTING


def converted(lead: GuardLead, *, window_seconds: float) -> bool:
    """Converted within the window after scoring (a later conversion is not this lead's)."""
    at = lead.converted_at
    return at is not None and lead.scored_at <= at <= lead.scored_at + window_seconds


def evaluate(leads: Iterable[GuardLead], settings: Settings, *, now: float) -> Verdict:
    """The verdict at `now` on the first matured leads reaching both minimums."""
    taken = list(leads)
    return evaluate_arrays(
        np.array([x.scored_at for x in taken], dtype=np.float64),
        np.array([x.serving_score for x in taken], dtype=np.float64),
        np.array([x.previous_score for x in taken], dtype=np.float64),
        np.array(
            [np.nan if x.converted_at is None else x.converted_at for x in taken],
            dtype=np.float64,
        ),
        settings,
        now=now,
    )


def evaluate_arrays(
    scored_at: Floats,
    serving: Floats,
    previous: Floats,
    converted_at: Floats,
    settings: Settings,
    *,
    now: float,
) -> Verdict:
    """`evaluate` on one array per field (NaN in `converted_at`: no conversion recorded)."""
    window = settings.window_seconds
    order = np.argsort(scored_at, kind="stable")
    at = scored_at[order]
    matured = int(np.count_nonzero(now - at >= window))  # sorted: the first `matured` leads
    at = at[:matured]
    when = converted_at[order][:matured]
    with np.errstate(invalid="ignore"):  # NaN compares False: not converted
        labels = (at <= when) & (when <= at + window)
    conversions = np.cumsum(labels)
    enough = (np.arange(1, matured + 1) >= settings.min_leads) & (
        conversions >= settings.min_conversions
    )
    if not enough.any():
        total = int(conversions[-1]) if matured else 0
        return Verdict(Outcome.COLLECTING, leads=matured, conversions=total)
    n = int(np.argmax(enough)) + 1
    picked = order[:n]
    return decide(labels[:n], serving[picked], previous[picked], settings)


def decide(
    labels: npt.ArrayLike,
    serving: npt.ArrayLike,
    previous: npt.ArrayLike,
    settings: Settings,
) -> Verdict:
    """The one look: DeLong's paired interval of (serving - previous) against -max_drop."""
    y = np.asarray(labels, dtype=bool)
    conversions = int(np.count_nonzero(y))
    if conversions in (0, y.size):
        return Verdict(Outcome.INCONCLUSIVE, leads=int(y.size), conversions=conversions)
    found = paired_auc.compare(y, previous, serving, level=1 - settings.alpha)
    outcome = Outcome.DROP if found.ci_high < -settings.max_drop else Outcome.NO_DROP
    return Verdict(
        outcome,
        leads=int(y.size),
        conversions=conversions,
        serving_auc=found.auc_b,
        previous_auc=found.auc_a,
        difference=found.difference,
        ci_low=found.ci_low,
        ci_high=found.ci_high,
    )
