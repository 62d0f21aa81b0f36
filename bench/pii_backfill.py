"""Benchmark `leadops pii-backfill`: 1,000,000 list elements in 10,000 keys, 5 % with PII.

Run: .venv/bin/python -m bench.pii_backfill [--keys 10000] [--per-key 100]

Starts its own redis-server on a free loopback port (data in a temp dir, no
persistence), seeds it, measures `redis-benchmark` LRANGE (lrange_100) and LSET
on the same server in the same run, then times the backfill CLI: a dry run and a
real run (with the default `--workers`, and a dry run with `--workers 1`). Goals:
>= 100,000 elements/s scanned and >= 25 % of the raw one-client LRANGE element rate
(best of three measurements in the run). Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from leadops import pii
from leadops.jobs.pii_backfill.cpu_quota import default_workers
from leadops.pii import screen

CLEAN = [
    "Hi, I'm interested in the {n}-week data science course, is there a weekend option?",
    "We are a team of {n} people looking at the MBA programme for next year.",
    "Can you send me the brochure? Budget is around ${n},000 per person.",
    "Thanks! The session on 2025-03-{d:02d} at 10:30 works for me.",
    "What is the difference between the online and the campus version {n}.2?",
    "ok thanks",
    "Is financial aid available? I already finished {n} modules elsewhere.",
    "Order #{order} arrived, thank you very much for the quick help.",
    "Thanks, that answers my question about the admission requirements.",
    "Does the certificate count towards a master's degree later on?",
    "Could someone from admissions call me back this week?",
    "I prefer evening classes because I work full time.",
]
PII = [
    "sure, my email is student{n}@example.com",
    "call me back on (415) 555-{p:04d} after 5pm please",
    "my card is 4111 1111 1111 1111, can you charge the deposit?",
    "you can text +44 20 7946 {p:04d} as well",
]
PII_EVERY = 20  # 5 %


def _message(rng: random.Random, index: int) -> str:
    fields = {
        "n": rng.randrange(2, 400),
        "d": rng.randrange(1, 29),
        "p": rng.randrange(10000),
        "order": rng.randrange(10**6, 10**9),
    }
    pool = PII if index % PII_EVERY == 7 else CLEAN
    return rng.choice(pool).format(**fields)


@contextmanager
def redis_server() -> Iterator[int]:
    """The test harness's redis-server (tests/fixtures) in a temp dir; yields its port."""
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        sys.exit(
            "bench.pii_backfill: needs redis-server and redis-benchmark (hack/ensure-system.sh)"
        )
    with tempfile.TemporaryDirectory(prefix="leadops-bench-redis-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            yield server.port
        finally:
            server.stop()


def seed(client: redis.Redis, *, keys: int, per_key: int) -> int:
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    for k in range(keys):
        values = [_message(rng, k * per_key + i) for i in range(per_key)]
        pipe.rpush(f"mem:tenant{k % 50}:chat{k}", *values)
        if k % 200 == 199:
            pipe.execute()
    pipe.execute()
    return keys * per_key // PII_EVERY


def redis_benchmark(port: int, *args: str, clients: int, requests: int) -> dict[str, float]:
    """Requests/s per test, from redis-benchmark's CSV output."""
    output = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(port),
            "-c",
            str(clients),
            "-n",
            str(requests),
            "--csv",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    rows = list(csv.reader(io.StringIO(output)))
    return {row[0]: float(row[1]) for row in rows[1:] if len(row) > 1}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def backfill(url: str, *args: str) -> dict[str, Any]:
    started, cpu = time.monotonic(), _children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "pii-backfill", "--redis-url", url, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    summary["wall_seconds"] = time.monotonic() - started
    summary["cpu_seconds"] = _children_cpu() - cpu  # includes start-up: imports, connect
    return summary


def stages(url: str) -> dict[str, float]:
    """CPU seconds of each stage of a dry run, measured apart in this process without a
    profiler: pipelined LRANGE reads, the byte screen, the detector on what the screen passed
    (split into values where it found a phone number and the rest)."""
    client = redis.Redis.from_url(url)
    detector = pii.Detector(region="US")
    screen.prepare()
    keys = sorted(client.scan_iter(match="mem:*", count=1000))
    spent = dict.fromkeys(("read", "screen", "detector, phone found", "detector, other"), 0.0)
    spent["values"] = spent["passed"] = 0
    for first in range(0, len(keys), 500):
        started = time.process_time()
        pipe = client.pipeline(transaction=False)
        for key in keys[first : first + 500]:
            pipe.lrange(key, 0, -1)
        values = [value for chunk in pipe.execute() for value in chunk]
        read = time.process_time()
        passed = screen.may_hold_pii(values)
        screened = time.process_time()
        spent["read"] += read - started
        spent["screen"] += screened - read
        spent["values"] += len(values)
        spent["passed"] += len(passed)
        for index in passed:
            before = time.process_time()
            findings = detector.find(values[index].decode("utf-8", "surrogateescape"))
            kind = "phone found" if any(f.type is pii.PiiType.PHONE for f in findings) else "other"
            spent[f"detector, {kind}"] += time.process_time() - before
    client.close()
    return spent


def message_costs() -> dict[str, float]:
    """CPU microseconds of one `Detector.find` per kind of benchmark message (best of 5)."""
    detector = pii.Detector(region="US")
    fields = {"n": 123, "d": 5, "p": 4321, "order": 123456789}
    kinds = {
        "clean": CLEAN,
        "email": PII[:1],
        "phone": PII[1:2] + PII[3:],
        "card": PII[2:3],
    }
    costs = {}
    for kind, templates in kinds.items():
        texts = [template.format(**fields) for template in templates]
        for text in texts:
            detector.find(text)
        best = min(
            timeit.repeat(
                lambda: [detector.find(t) for t in texts],  # noqa: B023
                number=200,
                repeat=5,
                timer=time.process_time,
            )
        )
        costs[kind] = best / 200 / len(texts) * 1e6
    return costs


def lrange_rate(port: int, *, requests: int) -> float:
    """LRANGE elements/s, one client: `redis-benchmark -t lrange_100` requests/s x 100."""
    figures = redis_benchmark(port, "-t", "lrange_100", clients=1, requests=requests)
    return figures["LRANGE_100 (first 100 elements)"] * 100


def measure(*, keys: int, per_key: int, requests: int) -> dict[str, Any]:
    """Seeds a fresh redis-server, measures redis-benchmark and the backfill runs on it."""
    with redis_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        started = time.monotonic()
        expected_pii = seed(client, keys=keys, per_key=per_key)
        print(f"seeded {keys * per_key} elements in {time.monotonic() - started:.1f}s")

        raw: dict[int, dict[str, float]] = {}
        for clients in (1, 50):
            figures = redis_benchmark(
                port, "-t", "lpush,lrange_100", clients=clients, requests=requests
            )
            figures |= redis_benchmark(
                port, "LSET", "mylist", "0", "hello", clients=clients, requests=requests
            )
            raw[clients] = figures
            print(f"redis-benchmark -c {clients}: {figures}")
        client.delete("mylist")

        # An empty run (no key matches) measures the CLI's start-up CPU, subtracted below.
        startup = float(backfill(url, "--pattern", "nothing-matches:*")["cpu_seconds"])
        dry = backfill(url, "--dry-run")
        print(f"dry run: {dry}")
        single = backfill(url, "--dry-run", "--workers", "1")
        print(f"dry run, one process: {single}")
        # LRANGE again between the runs: the one-client rate moves by a third from run to
        # run on this shared machine, so the goal is judged against the best of three.
        lrange_again = [lrange_rate(port, requests=requests)]
        # Measured before the real run, while the PII is still there.
        spent = stages(url)
        real = backfill(url)
        print(f"real run: {real}")
        again = backfill(url)
        print(f"second run: {again}")
        lrange_again.append(lrange_rate(port, requests=requests))
        client.close()
    return {
        "raw": raw,
        "startup": startup,
        "dry": dry,
        "single": single,
        "real": real,
        "again": again,
        "spent": spent,
        "lrange_again": lrange_again,
        "expected_pii": expected_pii,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--per-key", type=int, default=100)
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    workers = default_workers()

    m = measure(keys=args.keys, per_key=args.per_key, requests=args.requests)
    raw: dict[int, dict[str, float]] = m["raw"]
    startup = float(m["startup"])
    dry, single, real, again = m["dry"], m["single"], m["real"], m["again"]
    spent: dict[str, float] = m["spent"]
    lrange_again: list[float] = m["lrange_again"]
    expected_pii = int(m["expected_pii"])
    costs = message_costs()

    elements = args.keys * args.per_key
    for summary in (dry, single, real):
        assert summary["scanned_items"] == elements, "scan missed elements"
        assert summary["redacted_items"] == expected_pii, "wrong PII count"
    assert again["redacted_items"] == 0

    def rate(summary: dict[str, Any]) -> float:
        return float(summary["scanned_items"]) / float(summary["seconds"])

    lrange = {c: raw[c]["LRANGE_100 (first 100 elements)"] * 100 for c in raw}
    lrange_1 = [lrange[1], *lrange_again]
    baseline = max(lrange_1)
    lset = {c: next(v for k, v in raw[c].items() if k.startswith("LSET")) for c in raw}
    rows = [
        (f"dry run (`--workers {workers}`, the default here)", dry),
        ("dry run, `--workers 1` (one process)", single),
        (f"real run (`--workers {workers}`)", real),
        ("second run (nothing left to redact)", again),
    ]

    def per_cpu(summary: dict[str, Any]) -> float:
        return float(summary["scanned_items"]) / max(float(summary["cpu_seconds"]) - startup, 1e-9)

    def verdict(met: bool) -> str:
        return "**met**" if met else "**NOT met**"

    def row(name: str, s: dict[str, Any]) -> str:
        return (
            f"| {name} | {s['seconds']:.2f} | {rate(s):,.0f} | {per_cpu(s):,.0f} "
            f"| {s['redacted_items']:,} | {rate(s) / baseline:.0%} | {rate(s) / lrange[50]:.0%} |"
        )

    table = "\n".join(row(name, s) for name, s in rows)
    single_cpu = float(single["cpu_seconds"]) - startup
    parts = [(name, spent[name]) for name in ("read", "screen")]
    parts += [(name, spent[name]) for name in ("detector, phone found", "detector, other")]
    parts.append(
        ("the rest (Redis commands, loops, bookkeeping)", single_cpu - sum(s for _, s in parts))
    )
    breakdown = "\n".join(
        f"| {name} | {seconds:.2f} | {seconds / elements * 1e6:.2f} | {seconds / single_cpu:.0%} |"
        for name, seconds in parts
    )
    goal_rate = 0.25 * baseline
    passed_share = spent["passed"] / spent["values"]
    body = f"""
## PII backfill (`bench/pii_backfill.py`)

Machine: {machine()}; redis-server {_redis_version()} on loopback, started by the benchmark.
Command: `.venv/bin/python -m bench.pii_backfill` ({elements:,} list elements in
{args.keys:,} keys `mem:tenant*:chat*`, {args.per_key} per key, 5 % containing PII:
emails, phones, a card). Defaults: `--batch 500`, no `--max-ops-per-sec` cap, `--workers`
one per CPU ({workers} here). Elements/s = scanned elements / the run's own `seconds`
(process start-up excluded); elements per CPU second divides by the user+system CPU time of
the process and its detection workers, less start-up (measured by a run that matches no
key: {startup:.2f} s).

Baseline, same server, same run: `redis-benchmark -t lrange_100` (LRANGE of 100
elements; elements/s = requests/s x 100) and `redis-benchmark LSET mylist 0 hello`.
The one-client LRANGE rate was measured three times (before the backfill runs, between
them, after them: {", ".join(f"{r:,.0f}" for r in lrange_1)} elements/s); the goal is judged
against the best, {baseline:,.0f}.

| redis-benchmark | 1 client | 50 clients |
|---|---|---|
| LRANGE_100, elements/s | {baseline:,.0f} (best of 3) | {lrange[50]:,.0f} |
| LSET, requests/s | {lset[1]:,.0f} | {lset[50]:,.0f} |

| run | s | elements/s | elements/CPU s | redacted | vs LRANGE, 1 client | vs LRANGE, 50 |
|---|---|---|---|---|---|---|
{table}

Goal 1, >= 100,000 elements/s scanned: dry run {verdict(rate(dry) >= 100_000)}, real run
{verdict(rate(real) >= 100_000)}. Goal 2, >= 25 % of the raw one-client LRANGE element
rate ({goal_rate:,.0f} elements/s): dry run {verdict(rate(dry) >= goal_rate)}
({rate(dry) / baseline:.0%}), real run {verdict(rate(real) >= goal_rate)}
({rate(real) / baseline:.0%}); in one process (`--workers 1`) the dry run reaches
{rate(single) / baseline:.0%}. The dry runs predicted exactly the real run's
{real["redacted_items"]:,} rewrites, and the second run rewrote nothing.

How the scan is built: each round pipelines the next LRANGE (a whole list up to 1,000
elements, else a chunk) of up to `--batch` lists in
one round trip (raw bytes, hiredis parser); a byte screen (`leadops.pii.screen`) then looks
at every value of the round at once with `bytes.translate`, substring searches and regexes
that start at one literal byte, all in C, and names the values that may hold PII (an `@`, a
bracketed "at", 7+ digits joined only by separators, a dotted quad, two colons around hex, two
capitals and two digits; Unicode digits and spaces are handled exactly). Before the 7-digit
test it blanks the digit runs the detector itself calls harmless, with the detector's own
patterns: a real calendar date standing alone and 7-12 digits right after a reference word
("Order #123456789"). Here it passes {passed_share:.1%} of the values
({spent["passed"]:,.0f}; {expected_pii:,} hold PII). Only those are decoded and run
through the detector, in {workers} worker processes while the main one reads and screens the
next round and writes (compare-and-set) the previous one. Each round's LRANGE pipeline is
sent before the previous round is screened, detected and written, and its replies are read
only after that, so Redis serves the next round on the other CPU instead of the backfill
waiting for it (also with `--workers 1`). Rewrites are counted per key and round, not per
value. The screen passes a superset of what the detector can find
(`tests/unit/test_pii_screen.py`).

Where the CPU goes: each stage of a dry run timed apart in one process (CPU seconds,
`time.process_time`, no profiler), against the one-process dry run's CPU time less start-up
({single_cpu:.2f} s); the screen passed {spent["passed"]:,.0f} of {spent["values"]:,.0f} values:

| stage | CPU s | us per element | share of the one-process dry run |
|---|---|---|---|
{breakdown}

One `Detector.find` costs (CPU, best of 5): {costs["clean"]:.1f} us for the average clean
template (none reaches the detector in the backfill now), {costs["email"]:.1f} us with an
email, {costs["card"]:.1f} us with a card, {costs["phone"]:.1f} us with a phone number. Phone
numbers dominate: `phonenumbers` is pure Python. A number written plainly (one digit run
alone, optional "+country" and "(area)") is parsed as it stands, without the matcher's
search over its window (the same findings as `PhoneNumberMatcher` on both corpora and all
of this benchmark's messages; a unit test compares the two on every such number); other
numbers still go through the matcher. The 2.5 % of elements holding a phone number cost
{0.025 * costs["phone"]:.2f} us per element on average, against a whole budget for goal 2 of
{1e6 / goal_rate:.2f} us of wall time per element. The worker processes take the
detector's share off the reading process; on this 2-core machine, shared with the other
jobs, the runs are then bound by total CPU (elements per CPU second above): the rest of the
main process (Redis commands, loops, bookkeeping) and the screen are what is left to cut.
"""
    write_section("pii_backfill", body)
    print(body)


def _redis_version() -> str:
    output = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=True
    ).stdout
    return output.split("v=", 1)[1].split()[0] if "v=" in output else output.strip()


if __name__ == "__main__":
    main()
