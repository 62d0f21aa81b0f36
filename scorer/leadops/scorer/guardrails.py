"""The running experiment's per-variant answers, failures and answer times, summed over every
replica: the data of the error-rate and p99-latency guardrails.

Each replica counts in process (a lead costs a few integer additions, no Redis call) and adds
its counts to ONE Redis HASH per experiment every FLUSH_SECONDS (one pipelined round trip of
HINCRBYs), and on shutdown. Fields are named by variant (from the configured experiment, at
most 4) and a fixed bucket index: bounded, no lead data. Without Redis (dev) the counts stay
in the process. `GET /ops/experiment/guardrails` flushes this replica's counts, then reads
the hash: the others' are at most FLUSH_SECONDS behind.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

FLUSH_SECONDS: Final = 5.0
KEY_PREFIX: Final = "leadops:experiment-guardrails:"
# Counters outlive any experiment's looks (maxDurationDays <= 365, plus the maturity window).
TTL_SECONDS: Final = 400 * 86_400
# Answer-time bucket upper bounds (seconds): 50 us x 1.25^k up to ~11 s. Fixed, so every
# replica's counts add up; a p99 read from them is within one bucket (25 %) of the true one.
BUCKETS: Final = tuple(round(50e-6 * 1.25**k, 9) for k in range(56))
ANSWERS: Final = "answers"
FAILURES: Final = "failures"


def bucket_field(index: int) -> str:
    """The field of answer-time bucket `index`; len(BUCKETS) is the overflow (+Inf)."""
    return f"le{index}"


class Tally:
    """One variant's counts not yet flushed (the scoring path adds to it)."""

    __slots__ = ("answers", "buckets", "failures")

    def __init__(self) -> None:
        self.answers = 0
        self.failures = 0
        self.buckets: Counter[int] = Counter()

    def answered(self, seconds: float) -> None:
        self.answers += 1
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1

    def failed(self) -> None:
        self.failures += 1

    def take(self) -> dict[str, int]:
        """The counts as hash fields, reset to zero (the scoring path keeps this object)."""
        out = {ANSWERS: self.answers, FAILURES: self.failures}
        out |= {bucket_field(i): n for i, n in self.buckets.items()}
        self.answers = self.failures = 0
        self.buckets = Counter()
        return {name: n for name, n in out.items() if n}

    def give_back(self, field: str, n: int) -> None:
        """Counts a failed flush did not store, added back."""
        if field == ANSWERS:
            self.answers += n
        elif field == FAILURES:
            self.failures += n
        else:
            self.buckets[int(field.removeprefix("le"))] += n


class Sink(Protocol):
    async def add(self, key: str, fields: Mapping[str, int]) -> None: ...

    async def read(self, key: str) -> dict[str, int]: ...


class RedisSink:
    """The shared counts: one HASH per experiment, HINCRBY per field, refreshed TTL."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def add(self, key: str, fields: Mapping[str, int]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for name, n in fields.items():
                pipe.hincrby(key, name, n)
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()

    async def read(self, key: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in (await self._client.hgetall(key)).items()}


class MemorySink:
    """Dev only (no Redis): this process's counts."""

    def __init__(self) -> None:
        self._hashes: dict[str, Counter[str]] = {}

    async def add(self, key: str, fields: Mapping[str, int]) -> None:
        self._hashes.setdefault(key, Counter()).update(fields)

    async def read(self, key: str) -> dict[str, int]:
        return dict(self._hashes.get(key, Counter()))


class GuardrailCounts:
    """The tallies of one experiment's variants and the task that flushes them."""

    def __init__(self, experiment: str, variants: Iterable[str], sink: Sink) -> None:
        self.experiment = experiment
        self.key = KEY_PREFIX + experiment
        self.tallies = {name: Tally() for name in variants}
        self._sink = sink
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> bool:
        """Add the pending counts to the sink; kept for the next try when it fails."""
        async with self._lock:
            fields: dict[str, int] = {}
            for name, tally in self.tallies.items():
                fields |= {f"{name}:{field}": n for field, n in tally.take().items()}
            if not fields:
                return True
            try:
                await self._sink.add(self.key, fields)
            except (RedisError, OSError) as exc:
                logger.warning(
                    "Experiment guardrail counts not flushed yet (%s)", type(exc).__name__
                )
                self._restore(fields)
                return False
            return True

    def _restore(self, fields: Mapping[str, int]) -> None:
        for qualified, n in fields.items():
            name, _, field = qualified.partition(":")
            self.tallies[name].give_back(field, n)

    async def read(self) -> dict[str, dict[str, int]]:
        """Every replica's flushed counts by variant, this one's included (flushed first)."""
        await self.flush()
        raw = await self._sink.read(self.key)
        out: dict[str, dict[str, int]] = {name: {} for name in self.tallies}
        for qualified, n in raw.items():
            name, _, field = qualified.partition(":")
            if name in out:
                out[name][field] = n
        return out

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leadops-guardrail-counts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()
