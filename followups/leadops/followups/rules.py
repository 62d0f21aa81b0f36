"""Which follow-up a scored lead gets and when: pure functions of the rules and a clock.

A rule applies from its score band's lower bound (`minScore`, a string as in the spec) up to
the next band; the highest band a score reaches wins. A follow-up is due `delayMinutes` after
scoring (or the lead's `followUpDelayMinutes` experiment value), then moved forward out of
quiet hours in the recipient's local time: deferred, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Channel = Literal["sms", "whatsapp", "email"]
WHATSAPP_SESSION = timedelta(hours=24)


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    min_score: str = Field(alias="minScore")
    channel: Channel
    template: str
    delay_minutes: int = Field(default=0, alias="delayMinutes", ge=0, le=60 * 24 * 30)
    # Outside WhatsApp's 24 h session only an approved template may be sent (a Content SID).
    whatsapp_content_sid: str | None = Field(default=None, alias="whatsappContentSid")

    @field_validator("min_score")
    @classmethod
    def _score(cls, value: str) -> str:
        try:
            score = Decimal(value)
        except ArithmeticError:
            raise ValueError('minScore must be a decimal string such as "0.7"') from None
        if not Decimal(0) <= score <= Decimal(1):
            raise ValueError("minScore must be between 0 and 1")
        return value


class QuietHours(BaseModel):
    """Sending is allowed from `start` to `end` local time (default 08:00-21:00)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time = time(8, 0)
    end: time = time(21, 0)


@dataclass(frozen=True, slots=True)
class Decision:
    rule: Rule
    due: datetime  # UTC


def choose_rule(rules: tuple[Rule, ...] | list[Rule], score: float) -> Rule | None:
    """The rule of the highest band `score` reaches; None when it is below every band."""
    reached = [r for r in rules if Decimal(str(score)) >= Decimal(r.min_score)]
    return max(reached, key=lambda r: Decimal(r.min_score), default=None)


def zone_of(timezone: str | None, phone: str | None) -> ZoneInfo:
    """The lead's own time zone, else its phone number's region (first zone), else UTC."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if phone:
        try:
            import phonenumbers  # noqa: PLC0415 (only needed without an explicit zone)
            from phonenumbers import timezone as phone_zones  # noqa: PLC0415

            zones = phone_zones.time_zones_for_number(phonenumbers.parse(phone))
            if zones and zones[0] != "Etc/Unknown":
                return ZoneInfo(zones[0])
        except Exception:  # noqa: S110 (an unparseable number falls back to UTC)
            pass
    return ZoneInfo("UTC")


def next_allowed(when: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """`when` if it is inside sending hours in `zone`, else the next opening (UTC)."""
    local = when.astimezone(zone)
    start, end = quiet.start, quiet.end
    now_t = local.time()
    inside = start <= now_t < end if start <= end else (now_t >= start or now_t < end)
    if inside:
        return when
    opening = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    if opening <= local:
        opening = (local + timedelta(days=1)).replace(
            hour=start.hour, minute=start.minute, second=0, microsecond=0
        )
    # Rebuild through the zone so a DST change between now and the opening is honoured.
    opening = opening.replace(tzinfo=None).replace(tzinfo=zone)
    return opening.astimezone(when.tzinfo)


def decide(
    rules: tuple[Rule, ...] | list[Rule],
    *,
    score: float,
    now: datetime,
    zone: ZoneInfo,
    quiet: QuietHours,
    delay_override_minutes: int | None = None,
) -> Decision | None:
    rule = choose_rule(rules, score)
    if rule is None:
        return None
    delay = rule.delay_minutes if delay_override_minutes is None else delay_override_minutes
    return Decision(rule, next_allowed(now + timedelta(minutes=delay), zone, quiet))


def session_open(last_inbound: datetime | None, now: datetime) -> bool:
    """WhatsApp allows free-form messages for 24 h after the recipient's last message."""
    return last_inbound is not None and now - last_inbound < WHATSAPP_SESSION
