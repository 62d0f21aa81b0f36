"""Which leads an evaluation counts, and whether each converted.

Outcomes arrive late: a lead scored an hour ago has had no time to convert, so counting it
as a "no" would bias every variant towards zero and favour whichever got fewer recent leads.
A lead counts only once it is `window_days` old; a counted lead converted if a conversion
was recorded within the window after it was scored, and otherwise is "not converted". The
answer for a lead never changes after it matures, so late-arriving records cannot flip an
earlier look.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

DAY: Final = 86_400.0


@dataclass(frozen=True)
class LeadOutcome:
    """One bucketed lead: its variant, when it was scored, and when it converted (if it did)."""

    variant: str
    scored_at: float  # unix seconds
    converted_at: float | None = None


@dataclass(frozen=True)
class VariantTally:
    name: str
    assigned: int  # every lead bucketed into the variant so far (what the split is checked on)
    matured: int  # leads at least window_days old
    conversions: int  # matured leads converted within the window


def is_matured(lead: LeadOutcome, *, now: float, window_days: float) -> bool:
    return now - lead.scored_at >= window_days * DAY


def converted(lead: LeadOutcome, *, window_days: float) -> bool:
    """Converted within the window after scoring (a later conversion is not this lead's)."""
    return (
        lead.converted_at is not None
        and lead.scored_at <= lead.converted_at <= lead.scored_at + window_days * DAY
    )


def tally(
    leads: Iterable[LeadOutcome], variants: Sequence[str], *, now: float, window_days: float
) -> list[VariantTally]:
    """Per-variant counts at `now`, in the order of `variants`; a lead of another is an error."""
    if window_days < 0:
        raise ValueError("window_days must not be negative")
    counts = {name: [0, 0, 0] for name in variants}
    for lead in leads:
        if lead.scored_at > now:
            continue  # not yet scored at this (possibly simulated) time
        row = counts.get(lead.variant)
        if row is None:
            raise ValueError(f"lead of undeclared variant {lead.variant!r}")
        row[0] += 1
        if is_matured(lead, now=now, window_days=window_days):
            row[1] += 1
            row[2] += converted(lead, window_days=window_days)
    return [VariantTally(name, *counts[name]) for name in variants]
