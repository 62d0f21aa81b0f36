"""Group-sequential boundaries from the Lan-DeMets O'Brien-Fleming alpha-spending function.

The z statistics of looks k = 1..K at information fractions t_k behave under the null as
Brownian motion on the score scale S_k = Z_k * sqrt(t_k): independent normal increments of
variance t_k - t_{k-1}. Each boundary c_k is the one whose crossing probability, given that
no earlier look crossed, is exactly the alpha spent between t_{k-1} and t_k. That
probability is computed by numerical integration over the continuation region (Armitage,
McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19) on a Simpson grid.

Two-sided throughout: a look crosses when |Z_k| >= c_k.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

Floats = npt.NDArray[np.float64]

GRID_POINTS: Final = 801  # odd, for Simpson; boundaries agree with published tables to 1e-3
MAX_BOUNDARY: Final = 40.0  # a z no data reaches: the boundary when no alpha is spent
SQRT_2PI: Final = math.sqrt(2 * math.pi)


def _sf(x: Floats | float) -> Floats:
    return special.ndtr(-np.asarray(x, dtype=np.float64))  # type: ignore[no-any-return]


def _isf(p: float) -> float:
    return float(-special.ndtri(p))


def _pdf(x: Floats) -> Floats:
    return np.exp(-0.5 * x * x) / SQRT_2PI


def obf_spent(t: float, alpha: float) -> float:
    """Two-sided alpha spent by information fraction t.

    Each side spends alpha/2 along Lan & DeMets' O'Brien-Fleming-type function
    a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t)) with a = alpha/2, as the Lan-DeMets programs
    (Reboussin et al. 2000) do for symmetric two-sided boundaries.
    """
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    z = _isf(alpha / 4)
    return float(4 * _sf(z / math.sqrt(t)))


def _simpson_weights(n: int, width: float) -> Floats:
    weights = np.ones(n)
    weights[1:-1:2] = 4
    weights[2:-1:2] = 2
    return weights * (width / (n - 1) / 3)


def _grid(half_width: float) -> tuple[Floats, Floats]:
    points = np.linspace(-half_width, half_width, GRID_POINTS)
    return points, _simpson_weights(GRID_POINTS, 2 * half_width)


def _exit_probability(
    density: Floats, points: Floats, weights: Floats, *, boundary_s: float, step_sd: float
) -> float:
    """P(|S_k| >= boundary_s and no earlier crossing), from the sub-density at look k-1."""
    upper = _sf((boundary_s - points) / step_sd)
    lower = _sf((boundary_s + points) / step_sd)
    return float(np.sum(weights * density * (upper + lower)))


@dataclass
class _Continuation:
    """Sub-density of S_k on the continuation region after look k (Simpson grid)."""

    points: Floats
    weights: Floats
    density: Floats
    t: float

    @classmethod
    def first(cls, boundary: float, t: float) -> _Continuation:
        sd = math.sqrt(t)
        # Beyond 12 sd the normal density is below double precision: no need to span further.
        points, weights = _grid(min(boundary, 12.0) * sd)
        return cls(points, weights, _pdf(points / sd) / sd, t)

    def exit_probability(self, boundary: float, t: float) -> float:
        """P(|Z| >= boundary at fraction t, and no earlier crossing)."""
        return _exit_probability(
            self.density,
            self.points,
            self.weights,
            boundary_s=boundary * math.sqrt(t),
            step_sd=math.sqrt(t - self.t),
        )

    def advance(self, boundary: float, t: float) -> _Continuation:
        density, points, weights = _advance(
            self.density, self.points, self.weights, boundary * math.sqrt(t), math.sqrt(t - self.t)
        )
        return _Continuation(points, weights, density, t)


def _crossings(bounds: Sequence[float], fractions: Sequence[float]) -> list[float]:
    """Null probability of first crossing at each look, given z boundaries at each fraction."""
    exits = [float(2 * _sf(bounds[0]))]
    region = _Continuation.first(bounds[0], fractions[0])
    for c, t in zip(bounds[1:], fractions[1:], strict=True):
        exits.append(region.exit_probability(c, t))
        region = region.advance(c, t)
    return exits


def _advance(
    density: Floats, points: Floats, weights: Floats, half_width_s: float, step_sd: float
) -> tuple[Floats, Floats, Floats]:
    """Sub-density of S_k on the continuation region |S_k| < half_width_s."""
    # Beyond ~8 step sd from the earlier region the density is below double precision.
    reach = float(np.max(np.abs(points))) + 8 * step_sd
    new_points, new_weights = _grid(min(half_width_s, reach))
    kernel = _pdf((new_points[:, None] - points[None, :]) / step_sd) / step_sd
    return kernel @ (weights * density), new_points, new_weights


def _check_fractions(fractions: Sequence[float]) -> None:
    if not fractions:
        raise ValueError("need at least one look")
    previous = 0.0
    for t in fractions:
        if not previous < t <= 1:
            raise ValueError("information fractions must increase within (0, 1]")
        previous = t


def _solve(region: _Continuation, t: float, target: float) -> float:
    """The boundary at fraction t whose exit probability is `target`."""
    if target <= 0 or region.exit_probability(MAX_BOUNDARY, t) >= target:
        return MAX_BOUNDARY
    return float(
        optimize.brentq(
            lambda c: region.exit_probability(c, t) - target, 0.0, MAX_BOUNDARY, xtol=1e-10
        )
    )


@functools.lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    _check_fractions(fractions)
    spent = [obf_spent(t, alpha) for t in fractions]
    bounds = [_isf(spent[0] / 2) if spent[0] > 0 else MAX_BOUNDARY]
    region = _Continuation.first(bounds[0], fractions[0])
    for k in range(1, len(fractions)):
        bounds.append(_solve(region, fractions[k], spent[k] - spent[k - 1]))
        region = region.advance(bounds[-1], fractions[k])
    return tuple(bounds)


def boundaries(fractions: Sequence[float], alpha: float) -> list[float]:
    """Two-sided z boundaries at each look's information fraction (the last usually 1)."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return list(_boundaries(tuple(float(t) for t in fractions), float(alpha)))


def equally_spaced(looks: int) -> list[float]:
    """Information fractions of `looks` planned, equally spaced looks: 1/K, 2/K, ..., 1."""
    if looks < 1:
        raise ValueError("need at least one look")
    return [k / looks for k in range(1, looks + 1)]


def crossing_probabilities(bounds: Sequence[float], fractions: Sequence[float]) -> list[float]:
    """Null probability that look k is the first whose |Z| reaches its boundary, per look."""
    _check_fractions(fractions)
    if len(bounds) != len(fractions):
        raise ValueError("one boundary per look")
    return _crossings(bounds, fractions)


def obrien_fleming_constant(looks: int, alpha: float) -> float:
    """The classic O'Brien-Fleming C: boundaries C * sqrt(K / k) with overall level alpha."""
    fractions = equally_spaced(looks)

    def excess(c: float) -> float:
        bounds = [c / math.sqrt(t) for t in fractions]
        return sum(crossing_probabilities(bounds, fractions)) - alpha

    return float(optimize.brentq(excess, 1.0, 6.0, xtol=1e-10))
