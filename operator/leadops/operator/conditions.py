"""Status conditions per the Kubernetes API conventions.

`lastTransitionTime` changes only when a condition's status flips; every condition carries
the generation it was computed for. Pure module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadops.operator import reasons


@dataclass(frozen=True)
class Cond:
    """A desired condition before it is stamped with generation and transition time."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    @staticmethod
    def true(type_: str, reason: str, message: str = "") -> Cond:
        return Cond(type_, "True", reason, message)

    @staticmethod
    def false(type_: str, reason: str, message: str = "") -> Cond:
        return Cond(type_, "False", reason, message)

    @staticmethod
    def unknown(type_: str, reason: str, message: str = "") -> Cond:
        return Cond(type_, "Unknown", reason, message)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(
    desired: Iterable[Cond],
    previous: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Conditions as status dicts, in the canonical type order, transitions preserved."""
    before = {str(c.get("type")): c for c in previous}
    by_type = {c.type: c for c in desired}
    order: list[str] = [t for t in reasons.CONDITION_TYPES if t in by_type]
    order += sorted(t for t in by_type if t not in reasons.CONDITION_TYPES)
    out: list[dict[str, Any]] = []
    for type_ in order:
        cond = by_type[type_]
        old = before.get(type_)
        flipped = old is None or old.get("status") != cond.status
        when = rfc3339(now) if flipped or not old else str(old.get("lastTransitionTime", ""))
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": when or rfc3339(now),
            }
        )
    return out


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
