"""What a backfill run saw and changed: counts per value type and per key pattern, never a value
or a key name (a key name may itself hold PII)."""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any


@dataclasses.dataclass
class PatternStats:
    keys: int = 0
    items: int = 0
    redacted_items: int = 0
    conflicts: int = 0


@dataclasses.dataclass
class Stats:
    """What a run saw and changed; holds counts and key patterns only, never values or keys."""

    scanned_keys: int = 0
    scanned_items: int = 0
    redacted_items: int = 0
    skipped: int = 0
    conflicts: int = 0
    errors: int = 0
    # Chat keys named the old way (chat_id as sent): moved to hashed names, or left.
    renamed_keys: int = 0
    merged_keys: int = 0
    unhashed_keys: int = 0
    by_type: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_pattern: dict[str, PatternStats] = dataclasses.field(default_factory=dict)
    skipped_by_type: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )

    def pattern(self, key: bytes) -> PatternStats:
        return self.by_pattern.setdefault(key_pattern(key), PatternStats())

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanned_keys": self.scanned_keys,
            "scanned_items": self.scanned_items,
            "redacted_items": self.redacted_items,
            "skipped": self.skipped,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "renamed_keys": self.renamed_keys,
            "merged_keys": self.merged_keys,
            "unhashed_keys": self.unhashed_keys,
            "by_type": dict(sorted(self.by_type.items())),
            "by_pattern": {
                name: dataclasses.asdict(counts) for name, counts in sorted(self.by_pattern.items())
            },
            "skipped_by_type": dict(sorted(self.skipped_by_type.items())),
        }


@functools.lru_cache(maxsize=4096)  # a run records many values per key, in key order
def key_pattern(key: bytes) -> str:
    """`mem:tenant1:chat1` -> `mem:*:*`: groups keys in the report without naming any of them."""
    head, *rest = key.split(b":")
    if not rest:
        return "*"
    return ":".join([head.decode("utf-8", "replace"), *("*" for _ in rest)])
