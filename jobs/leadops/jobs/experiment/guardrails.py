"""The error-rate and p99-latency guardrails, from the scorer's per-variant counts.

Input: the JSON of the scorer's `GET /ops/experiment/guardrails` (every replica's answers,
failures and answer-time histogram per variant), from a file or URL. A variant breaches
`maxErrorRate` when its share of failed leads is larger; `maxP99LatencyRatio` when its p99
answer time is more than that many times the control's. A variant with fewer than
`min_answers` leads (answered or failed) is not judged yet: too few to say.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from leadops.cliutil import UsageError
from leadops.jobs.training.outcomes_csv import API_KEY_ENV, public_source

MAX_BYTES: Final = 1 << 20
DEFAULT_MIN_ANSWERS: Final = 200
ERROR_RATE: Final = "maxErrorRate"
P99_LATENCY_RATIO: Final = "maxP99LatencyRatio"


@dataclass(frozen=True)
class VariantCounts:
    name: str
    answers: int
    failures: int
    histogram: tuple[int, ...]  # per bucket, the last above every bound

    @property
    def leads(self) -> int:
        return self.answers + self.failures

    @property
    def error_rate(self) -> float:
        return self.failures / self.leads if self.leads else 0.0


@dataclass(frozen=True)
class Counts:
    bounds: tuple[float, ...]
    variants: Mapping[str, VariantCounts]


@dataclass(frozen=True)
class Breach:
    guardrail: str  # ERROR_RATE or P99_LATENCY_RATIO
    variant: str
    value: float
    limit: float
    message: str


def quantile(counts: Sequence[int], bounds: Sequence[float], q: float) -> float | None:
    """The q-quantile of a fixed-bucket histogram, linear within its bucket (as Prometheus'
    histogram_quantile); past the last bound, the last bound. None without observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return bounds[-1]
            low = bounds[i - 1] if i > 0 else 0.0
            return low + (bounds[i] - low) * (rank - seen) / n
        seen += n
    return bounds[-1]


def p99(v: VariantCounts, bounds: Sequence[float]) -> float | None:
    return quantile(v.histogram, bounds, 0.99)


def read(source: str, *, api_key: str | None, timeout: float = 60.0) -> Counts:
    """The counts from a file or an http(s) URL (x-api-key sent when given)."""
    if source.startswith(("http://", "https://")):
        text = _fetch(source, api_key=api_key, timeout=timeout)
        where = public_source(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"--guardrails {source} is not a file")
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"--guardrails {source} is over {MAX_BYTES >> 20} MiB")
        text, where = path.read_text(encoding="utf-8"), source
    try:
        return _parse(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"--guardrails {where}: not the scorer's guardrail counts ({exc})"
        ) from None


def _fetch(url: str, *, api_key: str | None, timeout: float) -> str:
    import httpx  # noqa: PLC0415 -- only URL inputs need an HTTP client

    where = public_source(url)
    try:
        response = httpx.get(
            url, headers={"x-api-key": api_key} if api_key else {}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot read {where}: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 401:
        sent = "was refused" if api_key else "is not set"
        raise UsageError(f"GET {where} answered HTTP 401: the API key from ${API_KEY_ENV} {sent}")
    if response.status_code != 200:
        raise UsageError(f"GET {where} answered HTTP {response.status_code}")
    if len(response.content) > MAX_BYTES:
        raise UsageError(f"GET {where} answered over {MAX_BYTES >> 20} MiB")
    return response.text


def _parse(body: Any) -> Counts:
    bounds = tuple(float(b) for b in body["bounds"])
    if not bounds or any(not math.isfinite(b) or b <= 0 for b in bounds):
        raise ValueError("bounds must be positive numbers")
    if list(bounds) != sorted(bounds):
        raise ValueError("bounds must be increasing")
    variants: dict[str, VariantCounts] = {}
    for v in body["variants"]:
        histogram = tuple(int(n) for n in v["answer_seconds"])
        if len(histogram) != len(bounds) + 1 or min(histogram, default=0) < 0:
            raise ValueError(f"variant {str(v['name'])[:63]!r}: answer_seconds does not fit bounds")
        answers, failures = int(v["answers"]), int(v["failures"])
        if answers < 0 or failures < 0:
            raise ValueError("negative counts")
        name = str(v["name"])
        variants[name] = VariantCounts(name, answers, failures, histogram)
    return Counts(bounds=bounds, variants=variants)


def check(
    counts: Counts,
    *,
    control: str,
    variants: Sequence[str],
    max_error_rate: float | None,
    max_p99_latency_ratio: float | None,
    min_answers: int = DEFAULT_MIN_ANSWERS,
) -> Breach | None:
    """The first breach, error rate before latency, in variant order; None when none."""
    judged = [
        counts.variants[name]
        for name in variants
        if name != control
        and name in counts.variants
        and counts.variants[name].leads >= min_answers
    ]
    if max_error_rate is not None:
        for v in judged:
            if v.error_rate > max_error_rate:
                return Breach(
                    ERROR_RATE,
                    v.name,
                    v.error_rate,
                    max_error_rate,
                    f"variant {v.name}: error rate {v.error_rate:.4f} ({v.failures} of "
                    f"{v.leads} leads failed) above {ERROR_RATE} {max_error_rate:g}",
                )
    base = counts.variants.get(control)
    base_p99 = (
        p99(base, counts.bounds) if base is not None and base.answers >= min_answers else None
    )
    if max_p99_latency_ratio is not None and base_p99:
        for v in judged:
            mine = p99(v, counts.bounds) if v.answers >= min_answers else None
            if mine is not None and mine > max_p99_latency_ratio * base_p99:
                ratio = mine / base_p99
                return Breach(
                    P99_LATENCY_RATIO,
                    v.name,
                    ratio,
                    max_p99_latency_ratio,
                    f"variant {v.name}: p99 answer time {mine * 1000:.3g} ms is {ratio:.2f}x "
                    f"the control's {base_p99 * 1000:.3g} ms, above {P99_LATENCY_RATIO} "
                    f"{max_p99_latency_ratio:g}",
                )
    return None


def summary(counts: Counts, variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant: leads, failures, error rate and p99 answer time (the report's figures)."""
    out = []
    for name in variants:
        v = counts.variants.get(name)
        if v is None:
            continue
        p = p99(v, counts.bounds)
        out.append(
            {
                "variant": name,
                "answers": v.answers,
                "failures": v.failures,
                "error_rate": round(v.error_rate, 6),
                "p99_seconds": None if p is None else round(p, 6),
            }
        )
    return out
