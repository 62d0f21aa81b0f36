"""The experiment's guardrail counts: fixed answer-time buckets, and a flush that fails (Redis
unreachable: a real client on a closed port) keeps the counts for the next one."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from leadops.scorer import guardrails
from tests.fixtures.ports import free_port


def test_answer_times_land_in_fixed_buckets_with_an_overflow() -> None:
    tally = guardrails.Tally()
    for seconds in (0.00001, 0.00005, 0.0000501, 0.001, 100.0):
        tally.answered(seconds)
    tally.failed()
    fields = tally.take()
    assert fields[guardrails.ANSWERS] == 5
    assert fields[guardrails.FAILURES] == 1
    # <= 50 us: bucket 0 (twice); just above: bucket 1; 1 ms: 50 us x 1.25^14 = 0.91 ms < 1 ms
    # <= 1.14 ms: bucket 14; 100 s: above every bound.
    assert {k: v for k, v in fields.items() if k.startswith("le")} == {
        "le0": 2,
        "le1": 1,
        "le14": 1,
        f"le{len(guardrails.BUCKETS)}": 1,
    }
    assert tally.take() == {}  # taken: zero again


def test_a_failed_flush_keeps_the_counts_for_the_next() -> None:
    async def run() -> tuple[bool, dict[str, dict[str, int]]]:
        away = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2)
        counts = guardrails.GuardrailCounts("t", ["control", "b"], guardrails.RedisSink(away))
        counts.tallies["b"].answered(0.002)
        counts.tallies["b"].failed()
        flushed = await counts.flush()
        await away.aclose()
        counts._sink = guardrails.MemorySink()  # the store is back (a dev sink here)
        return flushed, await counts.read()

    flushed, read = asyncio.run(run())
    assert flushed is False
    assert read["control"] == {}
    assert read["b"][guardrails.ANSWERS] == 1
    assert read["b"][guardrails.FAILURES] == 1
    assert sum(v for k, v in read["b"].items() if k.startswith("le")) == 1
