"""The backfill schedule's period: the longest gap between two runs, as a table."""

from __future__ import annotations

import pytest

from leadops.operator.cron_period import period_minutes, period_seconds

DAY = 1440


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [
        ("0 2 * * 0", 7 * DAY),  # the default weekly backfill
        ("17 3 * * *", DAY),
        ("* * * * *", 1),
        ("*/15 * * * *", 15),
        ("5/20 * * * *", 20),  # 5, 25, 45: from 5 to the end of the hour
        ("0 9,17 * * *", 16 * 60),  # 17:00 to 09:00 the next day
        ("0 2 * * 1-5", 3 * DAY),  # Friday to Monday
        ("0 2 * * mon-fri", 3 * DAY),
        ("0 0 * * 7", 7 * DAY),  # 7 is Sunday too
        ("0 0 1 * mon", 7 * DAY),  # both day fields restricted: the 1st or a Monday
        ("0 0 */2 * 1", 2 * DAY),  # a step restricts: odd days or Mondays
        ("0 0 1 */3 *", 92 * DAY),  # quarterly: Jul 1 to Oct 1
        ("0 0 29 2 *", 1461 * DAY),  # leap days only
        ("@hourly", 60),
        ("@daily", DAY),
        ("@weekly", 7 * DAY),
        ("@monthly", 31 * DAY),
        ("@yearly", 366 * DAY),
        ("0 0 30 2 *", None),  # never runs
    ],
)
def test_period(schedule: str, minutes: int | None) -> None:
    assert period_minutes(schedule) == minutes
    assert period_seconds(schedule) == (None if minutes is None else minutes * 60.0)


def test_a_malformed_field_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        period_minutes("0 0 1/ * *")
