"""Status conditions per the Kubernetes API conventions, as the status' own `Condition`.

`true()/false()/unknown()` build a desired condition; `stamp()` adds the generation it was
computed for and keeps `lastTransitionTime` unless the status flipped. Pure module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from leadops.operator import reasons
from leadops.operator.spec import Condition, ConditionStatus


def true(type_: str, reason: str, message: str = "") -> Condition:
    return Condition(type=type_, status=ConditionStatus.TRUE, reason=reason, message=message)


def false(type_: str, reason: str, message: str = "") -> Condition:
    return Condition(type=type_, status=ConditionStatus.FALSE, reason=reason, message=message)


def unknown(type_: str, reason: str, message: str = "") -> Condition:
    return Condition(type=type_, status=ConditionStatus.UNKNOWN, reason=reason, message=message)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def from_status(conditions: Sequence[Mapping[str, Any]]) -> list[Condition]:
    """Conditions as read back from a LeadModel's status."""
    return [Condition.model_validate(c) for c in conditions]


def stamp(
    desired: Iterable[Condition],
    previous: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Conditions in the canonical type order, generation set, transitions preserved."""
    before = {str(c.get("type")): c for c in previous}
    by_type = {c.type: c for c in desired}
    order: list[str] = [t for t in reasons.CONDITION_TYPES if t in by_type]
    order += sorted(t for t in by_type if t not in reasons.CONDITION_TYPES)
    out: list[Condition] = []
    for type_ in order:
        cond = by_type[type_]
        old = before.get(type_)
        flipped = old is None or old.get("status") != cond.status
        when = rfc3339(now) if flipped or not old else str(old.get("lastTransitionTime", ""))
        out.append(
            cond.model_copy(
                update={
                    "observed_generation": generation,
                    "last_transition_time": when or rfc3339(now),
                }
            )
        )
    return out


def as_status(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    """The wire form (camelCase keys), as `status.conditions` holds them."""
    return [c.model_dump(by_alias=True, mode="json") for c in conditions]
