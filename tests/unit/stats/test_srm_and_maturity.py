"""Sample-ratio mismatch and which leads count."""

from __future__ import annotations

import pytest

from leadops.stats import maturity, srm
from leadops.stats.maturity import DAY, LeadOutcome


def test_a_split_that_fits_its_weights_is_no_mismatch() -> None:
    assert not srm.mismatch([5050, 4950], [50, 50])  # chi2 = 2: p = 0.157
    assert srm.p_value([9000, 1000], [90, 10]) == pytest.approx(1.0)


def test_a_four_percent_skew_over_ten_thousand_leads_is_a_mismatch() -> None:
    p = srm.p_value([5200, 4800], [50, 50])  # chi2 = 16
    assert p == pytest.approx(6.334e-5, rel=1e-3)
    assert srm.mismatch([5200, 4800], [50, 50])


def test_weights_are_shares_on_any_scale() -> None:
    assert srm.p_value([300, 100], [3, 1]) == srm.p_value([300, 100], [75, 25])


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        srm.p_value([10, 10], [100, 0])


NOW = 100 * DAY


def test_only_leads_older_than_the_window_count() -> None:
    leads = [
        LeadOutcome("a", NOW - 15 * DAY, None),  # matured, no conversion: a "no"
        LeadOutcome("a", NOW - 20 * DAY, NOW - 19 * DAY),  # matured, converted
        LeadOutcome("a", NOW - 2 * DAY, NOW - DAY),  # converted but immature: not counted yet
        LeadOutcome("b", NOW - 3 * DAY, None),  # immature: never a "no"
        LeadOutcome("b", NOW + DAY, None),  # after `now` on a fake clock: not there yet
    ]
    a, b = maturity.tally(leads, ["a", "b"], now=NOW, window_days=14)
    assert (a.assigned, a.matured, a.conversions) == (3, 2, 1)
    assert (b.assigned, b.matured, b.conversions) == (1, 0, 0)


def test_a_conversion_after_the_window_is_not_the_leads() -> None:
    late = LeadOutcome("a", 0.0, 20 * DAY)
    assert not maturity.converted(late, window_days=14)
    assert maturity.converted(LeadOutcome("a", 0.0, 14 * DAY), window_days=14)


def test_a_lead_of_an_undeclared_variant_is_an_error() -> None:
    with pytest.raises(ValueError, match="undeclared"):
        maturity.tally([LeadOutcome("z", 0.0)], ["a", "b"], now=NOW, window_days=1)
