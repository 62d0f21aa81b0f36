"""Which variant of an experiment a lead, chat or tenant lands in: a stable hash, no state.

sha256 of "<experiment>\\0<unit id>" read as a 64-bit number: the same unit lands in the same
bucket on every replica and after every restart (Python's own hash() is salted per process),
and a new experiment name reshuffles everyone. 2^64 mod 100 leaves a bias of ~1e-18: none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

BUCKETS = 100  # weights are whole percents


def bucket(experiment: str, unit_id: str) -> int:
    """0..99, uniform over unit ids, fixed for a given experiment name."""
    digest = hashlib.sha256(f"{experiment}\0{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant(experiment: str, unit_id: str, weights: Sequence[tuple[str, int]]) -> str:
    """The variant whose cumulative weight range holds the unit's bucket (weights sum to 100)."""
    if sum(w for _, w in weights) != BUCKETS:
        raise ValueError("variant weights must sum to 100")
    point, edge = bucket(experiment, unit_id), 0
    for name, weight in weights:
        edge += weight
        if point < edge:
            return name
    raise AssertionError("unreachable: weights sum to 100")
