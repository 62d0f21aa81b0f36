"""Experiment rows of a CSV (the scorer's export) as lead outcomes and shadow scores.

Columns: `variant` and `scored_at` (ISO-8601 or unix seconds) are required. A conversion is
read from `outcome_at` (when it was recorded) and/or `converted` (1/true/yes): with both, a
row converted when `converted` says so, at `outcome_at`; with `converted` alone, a
conversion counts from the scoring time. `shadow_<variant>` columns hold every variant's
model score of the same lead, for the paired AUC comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from leadops.cliutil import UsageError
from leadops.jobs.training.outcomes_csv import Table
from leadops.stats.maturity import LeadOutcome

REQUIRED: Final = ("variant", "scored_at")
SHADOW_PREFIX: Final = "shadow_"
YES: Final = frozenset({"1", "true", "yes"})
NO: Final = frozenset({"0", "false", "no", ""})


@dataclass(frozen=True)
class Records:
    leads: list[LeadOutcome]
    variants: list[str]  # in order of first appearance
    shadow: dict[str, list[float | None]]  # variant -> its model's score of every row


def parse_time(text: str, *, what: str) -> float:
    """Unix seconds from ISO-8601 (a zone, or UTC when none) or a number of seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"{what}: {value[:40]!r} is not an ISO-8601 time or unix seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"{what}: {value[:40]!r} is not a time")
    return seconds


def _score(text: str, *, what: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{what}: {text[:40]!r} is not a finite number")
    return value


def _converted_at(
    row: int, scored: float, outcome: str | None, flag: str | None, where: str
) -> float | None:
    recorded = (
        parse_time(outcome, what=f"{where} row {row} outcome_at") if outcome and outcome.strip()
        else None
    )  # fmt: skip
    if flag is None:
        return recorded
    answer = flag.strip().lower()
    if answer in YES:
        return scored if recorded is None else recorded
    if answer in NO:
        return None
    raise UsageError(f"{where} row {row} converted: {flag[:20]!r} is not 1/0, true/false or yes/no")


def from_table(table: Table, *, metric: str = "conversion") -> Records:
    """The leads and their outcomes: a conversion (`outcome_at`, `converted`), or with metric
    "reply" the lead's first reply to a follow-up (`replied_at`, as the scorer exports it)."""
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UsageError(f"input {table.source} has no {missing[0]!r} column")
    flags: Sequence[str | None] = [None] * table.n_rows
    if metric == "reply":
        if "replied_at" not in table.columns:
            raise UsageError(f"input {table.source} has no 'replied_at' column (--metric reply)")
        outcomes: Sequence[str | None] = table.columns["replied_at"]
    else:
        if "outcome_at" not in table.columns and "converted" not in table.columns:
            raise UsageError(
                f"input {table.source} has neither an 'outcome_at' nor 'converted' column"
            )
        outcomes = table.columns.get("outcome_at") or [None] * table.n_rows
        flags = table.columns.get("converted") or flags
    variants: list[str] = []
    leads: list[LeadOutcome] = []
    for i, (variant, scored_text) in enumerate(
        zip(table.columns["variant"], table.columns["scored_at"], strict=True)
    ):
        row = i + 1
        name = variant.strip()
        if not name:
            raise UsageError(f"input {table.source} row {row}: empty variant")
        if name not in variants:
            variants.append(name)
        scored = parse_time(scored_text, what=f"input {table.source} row {row} scored_at")
        converted_at = _converted_at(row, scored, outcomes[i], flags[i], f"input {table.source}")
        leads.append(LeadOutcome(name, scored, converted_at))
    shadow = {
        column.removeprefix(SHADOW_PREFIX): [
            _score(cell, what=f"input {table.source} row {i + 1} {column}")
            for i, cell in enumerate(cells)
        ]
        for column, cells in table.columns.items()
        if column.startswith(SHADOW_PREFIX)
    }
    return Records(leads=leads, variants=variants, shadow=shadow)
