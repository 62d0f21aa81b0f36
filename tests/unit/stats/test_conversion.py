"""The z statistic and the fixed-horizon sample size the sequential design is measured by."""

from __future__ import annotations

import numpy as np
import pytest

from leadops.stats import conversion
from leadops.stats.conversion import Rate


def test_z_of_a_textbook_example() -> None:
    # 120/400 vs 150/400: pooled 0.3375, se = sqrt(.3375 * .6625 * 2 / 400) = 0.0334361
    z = conversion.z_statistic(Rate(400, 150), Rate(400, 120))
    assert z == pytest.approx(0.075 / 0.0334361, rel=1e-5)
    assert conversion.two_sided_p(z) == pytest.approx(0.02474, abs=2e-4)


def test_no_data_or_no_variance_is_no_evidence() -> None:
    assert conversion.z_statistic(Rate(0, 0), Rate(10, 3)) == 0.0
    assert conversion.z_statistic(Rate(10, 0), Rate(10, 0)) == 0.0


def test_fixed_horizon_leads_reach_their_power_in_simulation() -> None:
    n = conversion.fixed_horizon_leads(0.30, 0.36, alpha=0.05, power=0.8)
    assert 900 < n < 1050
    rng = np.random.default_rng(9)
    c, t = rng.binomial(n, 0.30, 20_000), rng.binomial(n, 0.36, 20_000)
    pooled = (c + t) / (2 * n)
    z = (t - c) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert abs(float((z >= 1.959964).mean()) - 0.8) < 0.015


def test_conversions_cannot_exceed_leads() -> None:
    with pytest.raises(ValueError, match="conversions"):
        Rate(3, 4)
