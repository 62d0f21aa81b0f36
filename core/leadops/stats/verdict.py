"""An experiment's decision at one look, from per-variant counts: the evaluation's core.

Order of checks: a broken split (sample-ratio mismatch) makes everything else meaningless,
so it wins (`invalid`). Then each non-control variant is compared with the control on
matured leads with a group-sequential z test; with several variants the alpha is split
equally (Bonferroni), so the chance of promoting any loser stays within alpha. A variant
significantly better is promoted (the best such); if every variant is significantly worse
the experiment is aborted; at the last planned look without either it is inconclusive and
the control keeps serving; otherwise it continues.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from leadops.stats import conversion, sequential, srm
from leadops.stats.maturity import VariantTally
from leadops.stats.paired_auc import PairedAuc

DEFAULT_ALPHA: Final = 0.05


class Verdict(enum.StrEnum):
    PROMOTE = "promote"
    ABORT = "abort"
    CONTINUE = "continue"
    INCONCLUSIVE = "inconclusive"
    INVALID = "invalid"


class Reason(enum.StrEnum):
    """Why, in CamelCase as Kubernetes condition reasons are."""

    SAMPLE_RATIO_MISMATCH = "SampleRatioMismatch"
    SIGNIFICANTLY_BETTER = "SignificantlyBetter"
    SIGNIFICANTLY_WORSE = "SignificantlyWorse"
    NOT_YET_SIGNIFICANT = "NotYetSignificant"
    TOO_FEW_OUTCOMES = "TooFewOutcomes"
    OUT_OF_LOOKS = "OutOfLooks"
    SCORE_PSI_GUARDRAIL = "ScorePsiGuardrail"
    ERROR_RATE_GUARDRAIL = "ErrorRateGuardrail"
    P99_LATENCY_GUARDRAIL = "P99LatencyGuardrail"


@dataclass(frozen=True)
class Design:
    """What is fixed before the experiment starts (changing it mid-way voids the guarantee)."""

    control: str
    weights: Mapping[str, float]  # variant -> declared share (percent or any scale)
    looks: int  # planned looks; the last one at information fraction 1
    alpha: float = DEFAULT_ALPHA
    min_leads_per_variant: int = 0
    min_conversions_per_variant: int = 0

    def __post_init__(self) -> None:
        if self.control not in self.weights:
            raise ValueError(f"control {self.control!r} is not a declared variant")
        if not 2 <= len(self.weights) <= 4:
            raise ValueError("an experiment has 2 to 4 variants")
        if self.looks < 1:
            raise ValueError("need at least one planned look")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")

    @property
    def comparisons(self) -> int:
        return len(self.weights) - 1

    @property
    def alpha_per_comparison(self) -> float:
        return self.alpha / self.comparisons

    def boundary(self, look: int) -> float:
        """The z a comparison must reach at `look` (1-based)."""
        fractions = sequential.equally_spaced(self.looks)[:look]
        return sequential.boundaries(fractions, self.alpha_per_comparison)[-1]

    def alpha_spent(self, look: int) -> float:
        """Alpha spent over all comparisons by the end of `look`."""
        t = look / self.looks
        return self.comparisons * sequential.obf_spent(t, self.alpha_per_comparison)


@dataclass(frozen=True)
class Comparison:
    variant: str
    rate: float
    control_rate: float
    z: float
    p_value: float  # nominal, two-sided: compare z with the boundary, not p with alpha
    boundary: float
    quality: PairedAuc | None = None

    @property
    def better(self) -> bool:
        return self.z >= self.boundary

    @property
    def worse(self) -> bool:
        return self.z <= -self.boundary


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    reason: Reason
    variant: str | None  # the winner (promote) or None
    look: int
    looks: int
    alpha: float
    alpha_spent: float
    boundary: float
    srm_p_value: float
    tallies: tuple[VariantTally, ...]
    comparisons: tuple[Comparison, ...] = field(default=())


def _check(design: Design, tallies: Sequence[VariantTally], look: int) -> None:
    if not 1 <= look <= design.looks:
        raise ValueError(f"look must be between 1 and {design.looks}")
    names = [t.name for t in tallies]
    if sorted(names) != sorted(design.weights):
        raise ValueError("tallies must cover exactly the declared variants")


def _enough(design: Design, tallies: Sequence[VariantTally]) -> bool:
    return all(
        t.matured >= design.min_leads_per_variant
        and t.conversions >= design.min_conversions_per_variant
        for t in tallies
    )


def evaluate(
    design: Design,
    tallies: Sequence[VariantTally],
    *,
    look: int,
    quality: Mapping[str, PairedAuc] | None = None,
    guardrail: Reason | None = None,
) -> Evaluation:
    """The decision at `look` of `design.looks`, given each variant's counts at that look.
    `guardrail`: a breached guardrail, which aborts unless the split itself is broken (the
    error-rate guardrail aborts either way: failed leads are what breaks the split)."""
    _check(design, tallies, look)
    by_name = {t.name: t for t in tallies}
    srm_p = srm.p_value([t.assigned for t in tallies], [design.weights[t.name] for t in tallies])
    boundary = design.boundary(look)
    control = by_name[design.control]
    control_rate = conversion.Rate(control.matured, control.conversions)
    comparisons = []
    for tally in tallies:
        if tally.name == design.control:
            continue
        rate = conversion.Rate(tally.matured, tally.conversions)
        z = conversion.z_statistic(rate, control_rate)
        comparisons.append(
            Comparison(
                variant=tally.name,
                rate=rate.value,
                control_rate=control_rate.value,
                z=z,
                p_value=conversion.two_sided_p(z),
                boundary=boundary,
                quality=(quality or {}).get(tally.name),
            )
        )
    verdict, reason, winner = _decide(design, tallies, comparisons, srm_p=srm_p, look=look)
    # A variant whose leads fail is never stored as often as its weight says: its error rate
    # is the cause of the split's mismatch, so that guardrail is the reason given.
    if guardrail is not None and (
        verdict is not Verdict.INVALID or guardrail is Reason.ERROR_RATE_GUARDRAIL
    ):
        verdict, reason, winner = Verdict.ABORT, guardrail, None
    return Evaluation(
        verdict=verdict,
        reason=reason,
        variant=winner,
        look=look,
        looks=design.looks,
        alpha=design.alpha,
        alpha_spent=design.alpha_spent(look),
        boundary=boundary,
        srm_p_value=srm_p,
        tallies=tuple(tallies),
        comparisons=tuple(comparisons),
    )


def _decide(
    design: Design,
    tallies: Sequence[VariantTally],
    comparisons: Sequence[Comparison],
    *,
    srm_p: float,
    look: int,
) -> tuple[Verdict, Reason, str | None]:
    last = look == design.looks
    if srm_p < srm.THRESHOLD:
        return Verdict.INVALID, Reason.SAMPLE_RATIO_MISMATCH, None
    if not _enough(design, tallies):
        # Too little data is never evidence: wait, or give up at the last look.
        return (Verdict.INCONCLUSIVE if last else Verdict.CONTINUE), Reason.TOO_FEW_OUTCOMES, None
    winners = [c for c in comparisons if c.better]
    if winners:
        best = max(winners, key=lambda c: (c.rate, c.z))
        return Verdict.PROMOTE, Reason.SIGNIFICANTLY_BETTER, best.variant
    if all(c.worse for c in comparisons):
        return Verdict.ABORT, Reason.SIGNIFICANTLY_WORSE, None
    if last:
        return Verdict.INCONCLUSIVE, Reason.OUT_OF_LOOKS, None
    return Verdict.CONTINUE, Reason.NOT_YET_SIGNIFICANT, None
