"""Group-sequential boundaries against published tables and against simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from leadops.stats import sequential

# Lan-DeMets O'Brien-Fleming-type spending, two-sided alpha = 0.05 (alpha/2 per side),
# equally spaced looks: the boundaries the Lan-DeMets program ld98 computes (described in
# Reboussin, DeMets, Kim & Lan (2000), "Computations for group sequential boundaries using
# the Lan-DeMets spending function method", Controlled Clinical Trials 21:190-207; ported to
# R as ldbounds). Cited for the program, not for a printed table of these cases.
LAN_DEMETS_OBF = {
    3: [3.7103, 2.5114, 1.9930],
    4: [4.3326, 2.9631, 2.3590, 2.0141],
    5: [4.8769, 3.3569, 2.6803, 2.2898, 2.0310],
}
# The classic O'Brien & Fleming (1979) constant C_B(K, alpha = 0.05), boundaries
# C_B * sqrt(K / k): Jennison & Turnbull (2000), Group Sequential Methods with Applications
# to Clinical Trials, Table 2.3. Checks the same integrator through a different shape.
OBRIEN_FLEMING_C = {2: 1.977, 5: 2.040}


@pytest.mark.parametrize(("looks", "published"), sorted(LAN_DEMETS_OBF.items()))
def test_boundaries_match_the_published_lan_demets_table(
    looks: int, published: list[float]
) -> None:
    computed = sequential.boundaries(sequential.equally_spaced(looks), 0.05)
    assert computed == pytest.approx(published, abs=6e-4)


@pytest.mark.parametrize(("looks", "published"), sorted(OBRIEN_FLEMING_C.items()))
def test_classic_obrien_fleming_constant_matches_jennison_turnbull(
    looks: int, published: float
) -> None:
    assert sequential.obrien_fleming_constant(looks, 0.05) == pytest.approx(published, abs=6e-4)


def test_one_look_is_the_fixed_horizon_test() -> None:
    assert sequential.boundaries([1.0], 0.05) == pytest.approx([1.959964], abs=1e-6)


def test_each_look_spends_exactly_the_alpha_the_function_allots() -> None:
    fractions = [0.15, 0.4, 0.55, 0.9, 1.0]  # unequal: looks land on whatever data matured
    bounds = sequential.boundaries(fractions, 0.05)
    exits = sequential.crossing_probabilities(bounds, fractions)
    spent = [sequential.obf_spent(t, 0.05) for t in fractions]
    increments = np.diff([0.0, *spent])
    assert exits == pytest.approx(list(increments), rel=1e-6, abs=1e-12)
    assert sum(exits) == pytest.approx(0.05, abs=1e-9)
    assert all(a > b for a, b in itertools.pairwise(bounds))


def test_simulated_brownian_motion_crosses_at_rate_alpha() -> None:
    rng = np.random.default_rng(7)
    looks, paths = 5, 40_000
    bounds = np.array(sequential.boundaries(sequential.equally_spaced(looks), 0.05))
    increments = rng.standard_normal((paths, looks)) * np.sqrt(1 / looks)
    z = np.cumsum(increments, axis=1) / np.sqrt(np.arange(1, looks + 1) / looks)
    rate = float((np.abs(z) >= bounds).any(axis=1).mean())
    se = np.sqrt(0.05 * 0.95 / paths)
    assert abs(rate - 0.05) < 4 * se


@pytest.mark.parametrize("fractions", [[], [0.5, 0.5], [0.0, 1.0], [0.5, 1.2]])
def test_fractions_must_increase_within_zero_one(fractions: list[float]) -> None:
    with pytest.raises(ValueError, match=r"fraction|look"):
        sequential.boundaries(fractions, 0.05)


def test_spending_is_zero_at_start_and_alpha_at_the_end() -> None:
    assert sequential.obf_spent(0.0, 0.05) == 0.0
    assert sequential.obf_spent(1.0, 0.05) == 0.05
    assert 0 < sequential.obf_spent(0.5, 0.05) < sequential.obf_spent(0.8, 0.05) < 0.05
