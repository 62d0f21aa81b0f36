"""Conversion of two variants compared: the pooled two-proportion z statistic."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class Rate:
    """Matured leads of one variant and how many of them converted."""

    leads: int
    conversions: int

    def __post_init__(self) -> None:
        if not 0 <= self.conversions <= self.leads:
            raise ValueError("conversions must be between 0 and the number of leads")

    @property
    def value(self) -> float:
        return self.conversions / self.leads if self.leads else 0.0


def z_statistic(treatment: Rate, control: Rate) -> float:
    """(p_t - p_c) / its standard error under 'no difference' (pooled); 0 when undefined."""
    if treatment.leads == 0 or control.leads == 0:
        return 0.0
    pooled = (treatment.conversions + control.conversions) / (treatment.leads + control.leads)
    variance = pooled * (1 - pooled) * (1 / treatment.leads + 1 / control.leads)
    if variance <= 0:
        return 0.0
    return (treatment.value - control.value) / math.sqrt(variance)


def two_sided_p(z: float) -> float:
    """Nominal two-sided p-value of a z statistic (not adjusted for earlier looks)."""
    return float(2 * special.ndtr(-abs(z)))


def fixed_horizon_leads(control: float, treatment: float, *, alpha: float, power: float) -> int:
    """Leads per variant a single two-sided test needs to detect control -> treatment rates.

    The usual normal-approximation formula (pooled variance under the null, unpooled under
    the alternative); the baseline a sequential design's sample size is compared with.
    """
    if not (0 < control < 1 and 0 < treatment < 1) or control == treatment:
        raise ValueError("rates must be different and within (0, 1)")
    z_alpha, z_beta = -special.ndtri(alpha / 2), -special.ndtri(1 - power)
    pooled = (control + treatment) / 2
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_beta * math.sqrt(
        control * (1 - control) + treatment * (1 - treatment)
    )
    return math.ceil(float(spread**2) / (treatment - control) ** 2)
