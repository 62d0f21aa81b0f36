"""PII detection and redaction: the one detector the scorer and the backfill job share.

`find(text)` returns findings (type, start, end; never the matched text) and
`redact(text)` replaces them with `[REDACTED]` (or `[REDACTED:EMAIL]` with
`typed=True`). The phone regions whose national formats are recognised (numbers written
without a country code) come from LEADOPS_PII_REGIONS, a comma list such as `US,GB,IN`
(else the older one-region LEADOPS_PII_DEFAULT_REGION; default US); use
`Detector(regions=[...])` for others.
"""

from __future__ import annotations

import functools
import os

from leadops.pii.detector import Detector, parse_regions, placeholder, replace
from leadops.pii.types import Finding, PiiType

__all__ = [
    "Detector",
    "Finding",
    "PiiType",
    "default_detector",
    "find",
    "parse_regions",
    "placeholder",
    "redact",
    "replace",
]

REGIONS_ENV = "LEADOPS_PII_REGIONS"
REGION_ENV = "LEADOPS_PII_DEFAULT_REGION"  # before regions were a list: one region


def regions_from_env() -> tuple[str, ...]:
    """LEADOPS_PII_REGIONS, else LEADOPS_PII_DEFAULT_REGION as a one-element list, else US;
    ValueError naming the variable for an unknown region."""
    for name in (REGIONS_ENV, REGION_ENV):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return parse_regions(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    return ("US",)


@functools.cache
def default_detector() -> Detector:
    """The detector configured from the environment, built once per process."""
    return Detector(regions=regions_from_env())


def find(text: str) -> list[Finding]:
    """Every piece of PII in `text`, in order: type and position only."""
    return default_detector().find(text)


def redact(text: str, *, typed: bool = False) -> str:
    """`text` with its PII replaced by `[REDACTED]` (or `[REDACTED:TYPE]` when `typed`)."""
    return default_detector().redact(text, typed=typed)
