"""Which LeadModels this operator acts on, by label (`--selector` / LEADOPS_SELECTOR).

Several operators split a large fleet by giving each a selector (e.g. `leadops.io/shard=a`
and `leadops.io/shard=b`, or `tier in ...` spelled as one operator per value). The syntax is
Kubernetes' equality-based selector, comma-separated requirements that must all hold:
`key=value` (or `==`), `key!=value`, `key` (present), `!key` (absent). Pure module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """The selector text is not an equality-based label selector."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    text: str = ""

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        found = labels or {}
        return all(r.holds(found) for r in self.requirements)


def _requirement(part: str) -> Requirement:
    for op, name in (("!=", "!="), ("==", "="), ("=", "=")):
        if op in part:
            key, _, value = (s.strip() for s in part.partition(op))
            if not _VALUE.match(value) or len(value) > 63:
                raise SelectorError(f"{value!r} is not a label value")
            return Requirement(_key(key), name, value)
    if part.startswith("!"):
        return Requirement(_key(part[1:].strip()), "!exists")
    if any(c in part for c in " ()"):
        raise SelectorError(
            f"{part!r}: only equality-based requirements (k=v, k!=v, k, !k) are supported"
        )
    return Requirement(_key(part), "exists")


def _key(key: str) -> str:
    if not key or len(key) > 317 or not _KEY.match(key):
        raise SelectorError(f"{key!r} is not a label key")
    return key


def parse(text: str) -> Selector:
    """The selector `text`; empty selects every LeadModel."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if any(not p for p in parts):
        raise SelectorError(f"{text!r}: an empty requirement between commas")
    return Selector(tuple(_requirement(p) for p in parts), text.strip())
