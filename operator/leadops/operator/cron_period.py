"""The period of a five-field cron schedule: the longest gap between two of its runs.

The PII gate calls a backfill stale when its last result is older than twice this period, and
a LeadModel younger than one period has no result due yet. The longest gap, not the shortest:
a weekdays-only schedule waits three days over a weekend, which is not a missed run. Schedules
run in UTC (the CronJobs set `timeZone: Etc/UTC`), so no daylight-saving gaps. Pure module.

Field syntax as the CronJob controller reads it (robfig/cron): lists, ranges, steps, names,
`?`, day of week 7 = Sunday, the @-macros; when both day fields are restricted a day matches
either (only `*` or `?`, without a step above 1, is unrestricted).
"""

from __future__ import annotations

import functools
import itertools
import re
from datetime import date, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names whose index + offset is the value)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...], int], ...] = (
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day of month", 1, 31, (), 0),
    ("month", 1, 12, MONTHS, 1),
    ("day of week", 0, 7, DAYS, 0),
)
STEP = re.compile(r"^(?P<range>[^/]+)(/(?P<step>[0-9]+))?$")
# Eight years from a leap year: every day-of-month and month combination occurs, Feb 29 twice.
_SPAN_START = date(2024, 1, 1)
_SPAN_DAYS = (date(2032, 1, 1) - _SPAN_START).days


def _number(token: str, names: tuple[str, ...], offset: int) -> int:
    if token.lower() in names:
        return names.index(token.lower()) + offset
    return int(token)


def _values(text: str, low: int, high: int, names: tuple[str, ...], offset: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        match = STEP.match(part)
        if match is None:
            raise ValueError(f"cron field {part!r} is malformed")
        rng, step = match["range"], int(match["step"] or 1)
        if rng in {"*", "?"}:
            first, last = low, high
        elif "-" in rng:
            a, b = rng.split("-", 1)
            first, last = _number(a, names, offset), _number(b, names, offset)
        else:
            first = _number(rng, names, offset)
            last = high if match["step"] else first  # "5/10": from 5 to the end, every 10
        out.update(range(first, last + 1, step))
    return out


@functools.lru_cache(maxsize=256)  # asked every reconcile pass; schedules rarely change
def period_minutes(schedule: str) -> int | None:
    """The longest gap between consecutive runs of `schedule`, in minutes; None if it never
    runs (e.g. `0 0 30 2 *`)."""
    text = MACROS.get(schedule.strip(), schedule.strip())
    fields = text.split()
    sets = [
        _values(f, low, high, names, offset)
        for f, (_, low, high, names, offset) in zip(fields, FIELDS, strict=True)
    ]
    minutes, hours, doms, months, dows = sets
    dows = {d % 7 for d in dows}
    in_day = sorted(h * 60 + m for h in hours for m in minutes)
    dom_any, dow_any = (f in {"*", "?", "*/1", "?/1"} for f in (fields[2], fields[4]))

    def runs_on(day: date) -> bool:
        if day.month not in months:
            return False
        by_dom, by_dow = day.day in doms, (day.weekday() + 1) % 7 in dows
        if dom_any or dow_any:
            return by_dom and by_dow
        return by_dom or by_dow

    days = [offset for offset in range(_SPAN_DAYS) if runs_on(_SPAN_START + timedelta(days=offset))]
    if not days or not in_day:
        return None
    # Within a day, and from a day's last run to the next run day's first.
    longest = max((b - a for a, b in itertools.pairwise(in_day)), default=0)
    for a, b in itertools.pairwise(days):
        longest = max(longest, (b - a) * 1440 + in_day[0] - in_day[-1])
    return longest


def period_seconds(schedule: str) -> float | None:
    """`period_minutes` in seconds."""
    minutes = period_minutes(schedule)
    return None if minutes is None else minutes * 60.0
