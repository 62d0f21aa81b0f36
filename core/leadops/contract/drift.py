"""Feature drift: training statistics stored in the artifact, and how far live leads have moved.

The drift score (the seed's `lead_model_drift_score`, "standard deviations from training",
alert at > 3.0) is defined per feature j on its training bins b (deciles, see PSI below):

    ridit r_b    = P_train(bin < b) + P_train(bin = b) / 2        (mean 0.5 under training)
    sd_j         = sqrt( sum_b p_b (r_b - 1/2)^2 ),  at least 0.05
    shift_j      = |mean ridit of the live values - 1/2| / (sd_j / sqrt(min(n_j, N_REF)))
    shift_j      = max(shift_j, the same for the missing rate r: sd = sqrt(r(1-r)),
                       r clipped to [1/N_REF, 1 - 1/N_REF] so a never-missing field has sd > 0)
    score        = sqrt( sum_j w_j * min(shift_j, 100)^2 ),  w_j = gain importance, sum 1

Why this shape:
- A *ridit* (where a live value falls in the training distribution, 0..1) instead of the raw
  value: lead features are skewed (company size, budget) and one-hot; raw means are driven by
  a few huge values, ridits are not. For a 0/1 feature it is exactly the standardised change
  in its rate. The shift is still in "standard deviations from training".
- `|dmu|/sd` alone (an effect size) almost never reaches 3, and `|dmu|/(sd/sqrt(n))` (a z-test)
  reaches 3 for trivial shifts once n is large. Capping the effective sample size at
  N_REF = 100 gives both: below 100 leads it *is* the z-statistic, so 3 means "3 standard
  errors, unlikely by chance"; above 100 it becomes 10 x the effect size, so 3 means the
  feature moved by 0.3 training standard deviations (a real, not a trivial, shift), however
  many leads are in the window.
- Averaging squared shifts with importance weights keeps the null value near 1 whatever the
  number of features (a max over hundreds of one-hot columns would cross 3 by chance), and
  makes drift in the features the model relies on count most: a shift in one feature of
  weight w alone fires when it exceeds 3/sqrt(w).
- Missing rates are features of their own: a form field that stops being filled in is drift.

PSI (population stability index) is computed per feature too, over training-decile bins plus
a missing bin: `sum (q - p) * ln(q / p)` with p, q the training and live shares (smoothed by
1e-4). Read it with care at small n: with few leads PSI is biased upward (about bins/n), which
is why it is reported beside the score, not used as the score.

The pydantic models are pure; the functions that compute import numpy when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

N_REF: Final = 100
MAX_SHIFT: Final = 100.0
PSI_EPSILON: Final = 1e-4
SD_FLOOR: Final = 1e-9
RIDIT_SD_FLOOR: Final = 0.05  # a 0/1 feature at 1 % has ridit sd ~0.05: no feature is surer
BINS: Final = 10


class FeatureStat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    mean: float | None = Field(description="over present values; None if never present")
    std: float | None
    missing_rate: float
    edges: list[float] = Field(description="interior bin edges (training deciles), for PSI")
    fractions: list[float] = Field(description="share per bin, then the missing share last")
    weight: float = Field(description="the model's gain importance, normalised to sum 1")


class FeatureStats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    n: int = Field(description="training rows the statistics come from")
    n_ref: int = Field(default=N_REF, description="effective sample size cap of the drift score")
    features: list[FeatureStat]


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    shift: float
    psi: float
    weight: float


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    score: float
    n: int
    psi_max: float
    features: list[FeatureDrift] = Field(description="most shifted first")


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two share vectors over the same bins."""
    total = 0.0
    for p, q in zip(expected, actual, strict=True):
        p_s, q_s = max(p, PSI_EPSILON), max(q, PSI_EPSILON)
        total += (q_s - p_s) * math.log(q_s / p_s)
    return total


def _shares(values: npt.NDArray[np.float64], edges: Sequence[float]) -> tuple[list[float], int]:
    import numpy as np  # noqa: PLC0415 -- the operator reads these models without numpy

    present = values[~np.isnan(values)]
    n = len(values)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), present, side="right"),
        minlength=len(edges) + 1,
    )
    shares = [float(c) / n for c in counts] if n else [0.0] * (len(edges) + 1)
    shares.append((n - len(present)) / n if n else 0.0)
    return shares, len(present)


def compute_feature_stats(
    matrix: npt.NDArray[np.float32],
    names: Sequence[str],
    *,
    importance: Sequence[float] | None = None,
) -> FeatureStats:
    """Training-time statistics of each feature column (rows x features matrix)."""
    import numpy as np  # noqa: PLC0415 -- the operator reads these models without numpy

    weights = np.ones(len(names)) if importance is None else np.asarray(importance, dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(names), 1 / len(names))
    features = []
    for j, name in enumerate(names):
        column = matrix[:, j].astype(np.float64)
        present = column[~np.isnan(column)]
        edges: list[float] = []
        if len(present):
            quantiles = np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1])
            edges = sorted({float(q) for q in quantiles})
        fractions, _ = _shares(column, edges)
        features.append(
            FeatureStat(
                name=name,
                mean=float(present.mean()) if len(present) else None,
                std=float(present.std()) if len(present) else None,
                missing_rate=1.0 - len(present) / len(column) if len(column) else 0.0,
                edges=edges,
                fractions=fractions,
                weight=float(weights[j]),
            )
        )
    return FeatureStats(n=int(matrix.shape[0]), features=features)


def _z(delta: float, sd: float, n: int, n_ref: int) -> float:
    if n == 0:
        return 0.0
    return min(abs(delta) / (max(sd, SD_FLOOR) / math.sqrt(min(n, n_ref))), MAX_SHIFT)


def _ridits(fractions: Sequence[float]) -> tuple[list[float], float]:
    """Each training bin's ridit and the ridits' standard deviation, over present values."""
    total = sum(fractions)
    if total <= 0:
        return [], 0.0
    shares = [f / total for f in fractions]
    ridits, below = [], 0.0
    for p in shares:
        ridits.append(below + p / 2)
        below += p
    sd = math.sqrt(sum(p * (r - 0.5) ** 2 for p, r in zip(shares, ridits, strict=True)))
    return ridits, max(sd, RIDIT_SD_FLOOR)


def drift_report(stats: FeatureStats, live: npt.NDArray[np.float32]) -> DriftReport:
    """Score live feature vectors (rows x features, same order as training) against training."""
    import numpy as np  # noqa: PLC0415 -- the operator reads these models without numpy

    if live.ndim != 2 or live.shape[1] != len(stats.features):
        raise ValueError(
            f"live matrix has shape {live.shape}, expected (n, {len(stats.features)}) features"
        )
    n = int(live.shape[0])
    per_feature: list[FeatureDrift] = []
    total = 0.0
    for j, stat in enumerate(stats.features):
        column = live[:, j].astype(np.float64)
        shares, n_present = _shares(column, stat.edges)
        shift = 0.0
        ridits, ridit_sd = _ridits(stat.fractions[:-1])
        if n_present and ridits:
            live_present = [q * n / n_present for q in shares[:-1]]
            mean = sum(q * r for q, r in zip(live_present, ridits, strict=True))
            shift = _z(mean - 0.5, ridit_sd, n_present, stats.n_ref)
        rate = stat.missing_rate
        # A never-missing field would otherwise have sd 0: one blank cell must not read as 100.
        clipped = min(max(rate, 1 / stats.n_ref), 1 - 1 / stats.n_ref)
        miss_sd = math.sqrt(clipped * (1 - clipped))
        shift = max(shift, _z(shares[-1] - rate, miss_sd, n, stats.n_ref))
        total += stat.weight * shift**2
        per_feature.append(
            FeatureDrift(
                name=stat.name,
                shift=round(shift, 4),
                psi=round(psi(stat.fractions, shares), 4) if n else 0.0,
                weight=stat.weight,
            )
        )
    per_feature.sort(key=lambda f: -f.weight * f.shift**2)
    return DriftReport(
        score=math.sqrt(total) if n else 0.0,
        n=n,
        psi_max=max((f.psi for f in per_feature), default=0.0),
        features=per_feature,
    )


def drift_score(stats: FeatureStats, live: npt.NDArray[np.float32]) -> float:
    """The single drift number the scorer exports as `lead_model_drift_score`."""
    return drift_report(stats, live).score
