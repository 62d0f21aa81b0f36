"""A candidate model against the serving one on the same stored leads with known outcomes.

Both models score every lead, so the AUC difference is paired (DeLong, `paired_auc.compare`):
far tighter than comparing two independent AUCs. The verdict is a non-inferiority test with a
tolerance `max_drop`:

- Pass: the interval's low end of (candidate - baseline) is above -max_drop: with confidence,
  the candidate loses at most max_drop of AUC (equal or better models pass);
- Fail: the candidate is worse beyond doubt (interval entirely below 0) and by more than
  max_drop at the point estimate; or, when max_psi is set, its scores move further from the
  baseline's on the same leads (score PSI: however well it ranks leads, its scores then mean
  something else to whoever routes leads by them). The PSI is always reported;
- Inconclusive: too few leads or conversions to tell (min_leads, min_conversions), or the
  interval is too wide to say either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leadops.stats import paired_auc, psi


class Verdict(enum.StrEnum):
    PASS = "Pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class Reason(enum.StrEnum):
    NOT_WORSE = "NotWorse"
    WORSE = "ReplayWorse"
    SCORE_SHIFT = "ScoreShift"
    TOO_FEW_LEADS = "TooFewLeads"
    UNCERTAIN = "Uncertain"


@dataclass(frozen=True)
class Design:
    max_drop: float = 0.02
    alpha: float = 0.05
    min_leads: int = 200
    min_conversions: int = 20  # of each outcome: converted and not converted
    max_psi: float | None = None  # None: the score PSI is reported, not judged


@dataclass(frozen=True)
class Replay:
    verdict: Verdict
    reason: Reason
    message: str
    leads: int
    conversions: int
    comparison: paired_auc.PairedAuc | None  # b = candidate, a = baseline
    score_psi: float | None


def decide(
    labels: npt.ArrayLike,
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    design: Design,
) -> Replay:
    """The verdict on leads with known outcomes (1/0), scored by both models."""
    y = np.asarray(labels, dtype=np.int64)
    cand = np.asarray(candidate, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if not y.shape == cand.shape == base.shape:
        raise ValueError("one candidate and one baseline score per label")
    leads, conversions = int(y.size), int(y.sum())
    shift = psi.score_psi(base.tolist(), cand.tolist()) if leads else None
    fewest = min(conversions, leads - conversions)
    if leads < design.min_leads or fewest < design.min_conversions:
        return Replay(
            Verdict.INCONCLUSIVE,
            Reason.TOO_FEW_LEADS,
            f"{leads} leads with known outcomes ({conversions} converted); need at least "
            f"{design.min_leads} leads and {design.min_conversions} of each outcome",
            leads,
            conversions,
            None,
            shift,
        )
    found = paired_auc.compare(y, base, cand, level=1 - design.alpha)
    said = (
        f"AUC {found.auc_b:.4f} (candidate) vs {found.auc_a:.4f} (baseline), difference "
        f"{found.difference:+.4f}, {100 * (1 - design.alpha):g} % CI "
        f"[{found.ci_low:+.4f}, {found.ci_high:+.4f}], on {leads} leads"
    )
    if shift is not None and design.max_psi is not None and shift > design.max_psi:
        verdict, reason = Verdict.FAIL, Reason.SCORE_SHIFT
        said += f"; score PSI {shift:.3f} is above {design.max_psi:g}"
    elif found.ci_high < 0 and found.difference < -design.max_drop:
        verdict, reason = Verdict.FAIL, Reason.WORSE
        said += f"; worse by more than {design.max_drop:g}"
    elif found.ci_low > -design.max_drop:
        verdict, reason = Verdict.PASS, Reason.NOT_WORSE
        said += f"; not worse by more than {design.max_drop:g}"
    else:
        verdict, reason = Verdict.INCONCLUSIVE, Reason.UNCERTAIN
        said += f"; cannot tell whether it is worse by more than {design.max_drop:g}"
    return Replay(verdict, reason, said, leads, conversions, found, shift)
