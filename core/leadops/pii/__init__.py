"""PII detection and redaction: the one detector the scorer and the backfill job share.

`find(text)` returns findings (type, start, end; never the matched text) and
`redact(text)` replaces them with `[REDACTED]` (or `[REDACTED:EMAIL]` with
`typed=True`). The phone region for numbers written without a country code comes
from LEADOPS_PII_DEFAULT_REGION (default US); use `Detector(region=...)` for another.
"""

from __future__ import annotations

import functools
import os

from leadops.pii.detector import Detector, placeholder, replace
from leadops.pii.types import Finding, PiiType

__all__ = [
    "Detector",
    "Finding",
    "PiiType",
    "default_detector",
    "find",
    "placeholder",
    "redact",
    "replace",
]

REGION_ENV = "LEADOPS_PII_DEFAULT_REGION"


@functools.cache
def default_detector() -> Detector:
    """The detector configured from the environment, built once per process."""
    return Detector(region=os.environ.get(REGION_ENV, "US") or "US")


def find(text: str) -> list[Finding]:
    """Every piece of PII in `text`, in order: type and position only."""
    return default_detector().find(text)


def redact(text: str, *, typed: bool = False) -> str:
    """`text` with its PII replaced by `[REDACTED]` (or `[REDACTED:TYPE]` when `typed`)."""
    return default_detector().redact(text, typed=typed)
