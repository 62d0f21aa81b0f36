"""Score bands, quiet hours in the recipient's time zone, the WhatsApp session window."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadops.followups.rules import (
    QuietHours,
    Rule,
    choose_rule,
    decide,
    next_allowed,
    session_open,
    zone_of,
)
from leadops.followups.suppression import normalize_address

RULES = [
    Rule(minScore="0.7", channel="sms", template="hot", delayMinutes=5),
    Rule(minScore="0.0", channel="email", template="warm", delayMinutes=60),
]
DAY = QuietHours()


@pytest.mark.parametrize(
    ("score", "template"), [(0.95, "hot"), (0.7, "hot"), (0.6999, "warm"), (0.0, "warm")]
)
def test_highest_band_reached_wins(score: float, template: str) -> None:
    rule = choose_rule(RULES, score)
    assert rule is not None
    assert rule.template == template


def test_below_every_band_is_no_follow_up() -> None:
    assert choose_rule(RULES[:1], 0.5) is None


def test_quiet_hours_in_local_time_defer_to_the_next_opening() -> None:
    paris = ZoneInfo("Europe/Paris")
    late = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Paris (CEST)
    assert next_allowed(late, paris, DAY) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    early = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 06:00 in Paris: same day's 08:00
    assert next_allowed(early, paris, DAY) == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    inside = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert next_allowed(inside, paris, DAY) == inside


def test_quiet_hours_across_a_dst_change() -> None:
    # 2026-03-29 02:00 Paris clocks go forward: 08:00 local is then 06:00 UTC, not 07:00.
    night = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert next_allowed(night, ZoneInfo("Europe/Paris"), DAY) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )


def test_overnight_window() -> None:
    night_shift = QuietHours(start=time(22, 0), end=time(6, 0))
    utc = ZoneInfo("UTC")
    assert next_allowed(datetime(2026, 1, 1, 23, tzinfo=UTC), utc, night_shift).hour == 23
    assert next_allowed(datetime(2026, 1, 1, 12, tzinfo=UTC), utc, night_shift).hour == 22


def test_decide_honours_the_experiment_delay() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    decision = decide(RULES, score=0.9, now=now, zone=ZoneInfo("UTC"), quiet=DAY,
                      delay_override_minutes=30)  # fmt: skip
    assert decision is not None
    assert decision.due == now + timedelta(minutes=30)


def test_zone_from_lead_then_phone_then_utc() -> None:
    assert zone_of("Asia/Tokyo", "+14155550100") == ZoneInfo("Asia/Tokyo")
    assert zone_of(None, "+14155550100") == ZoneInfo("America/Los_Angeles")
    assert zone_of("Not/AZone", None) == ZoneInfo("UTC")


def test_whatsapp_session_is_24_hours() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert session_open(now - timedelta(hours=23, minutes=59), now)
    assert not session_open(now - timedelta(hours=24), now)
    assert not session_open(None, now)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("whatsapp:+1 (415) 555-0100", "+14155550100"), ("+1.415.555.0100", "+14155550100"),
     (" Ada@Example.ORG ", "ada@example.org")],
)  # fmt: skip
def test_one_spelling_per_address(raw: str, normal: str) -> None:
    assert normalize_address(raw) == normal


def test_min_score_is_a_decimal_string_in_range() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Rule(minScore="1.5", channel="sms", template="x")
    with pytest.raises(ValueError, match="decimal string"):
        Rule(minScore="high", channel="sms", template="x")
