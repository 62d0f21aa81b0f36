"""Follow-ups: one worker process against the provider twin in its own process.

Two figures, rate limits off, SMS through the Twilio SDK, real redis-server:
- throughput: a burst of follow-ups due now, sends/s as the twin saw them arrive;
- enqueue-to-send latency: follow-ups due now, enqueued at a steady pace, from enqueue to the
  twin receiving the request (p50, p99).
Baselines in the same run: for throughput, the same Twilio SDK calls from a bare thread pool
of the same size (no Redis, no vault, no claim, no templates), against the same twin; for
latency, the same worker with `--no-gc-freeze`, paced the same way just before.

    .venv/bin/python -m bench.followups [--burst 3000] [--paced 600] [--rate 100] [--threads 32]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import redis
from tests.fixtures.followups import SALT, config_data, tenant_spec
from tests.fixtures.ports import free_port, wait_for_port
from tests.fixtures.processes import terminate
from tests.fixtures.provider_twins import ACCOUNT_SID, AUTH_TOKEN, SENDGRID_KEY, Twin
from tests.fixtures.redis_server import RedisServer

from bench import docsection
from leadops.followups import config as config_mod
from leadops.followups.keys import Keys
from leadops.followups.providers import OutboundMessage, TwilioMessages
from leadops.followups.queue import FollowUpQueue
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.vault import Contact, ContactVault

TENANT = "bench"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wait_settled(client: redis.Redis, claims: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = client.mget(claims)
        if all(s is not None and not str(s).startswith("b'pending") for s in states):
            return
        time.sleep(0.05)
    raise SystemExit("bench.followups: follow-ups not sent within the time limit")


def run(args: argparse.Namespace) -> dict[str, float]:  # noqa: PLR0915 (phases share the processes)
    work = Path(tempfile.mkdtemp(prefix="leadops-bench-followups-"))
    server = RedisServer(work)
    server.start()
    twin_port = free_port()
    twin = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.provider_twins", str(twin_port), ACCOUNT_SID,
         AUTH_TOKEN, SENDGRID_KEY], stdout=subprocess.PIPE,
    )  # fmt: skip
    wait_for_port(twin_port)
    shape = Twin(url=f"http://127.0.0.1:{twin_port}")  # only for its URL and a signing key
    data = config_data({TENANT: tenant_spec(work, shape, name=TENANT)})
    config_path = work / "config.json"
    config_path.write_text(json.dumps(data))
    config = config_mod.load(config_path)
    (work / "salt").write_bytes(SALT)
    client = redis.Redis.from_url(server.url)
    keys = Keys(SALT)
    vault = ContactVault(client, keys, {TENANT: config.tenants[TENANT].vault.keyring()}, ttl_s=3600)
    queue = FollowUpQueue(client)
    queue.ensure_group()

    def start_worker(*extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "leadops.cli", "followups", "run", "--config",
             str(config_path), "--redis-url", server.url, "--threads", str(args.threads), *extra],
            env={**os.environ, "LEADOPS_KEY_SALT_FILE": str(work / "salt")},
        )  # fmt: skip

    enqueued: dict[str, float] = {}
    claims: list[str] = []

    def schedule(i: int, prefix: str) -> None:
        phone = f"+1{prefix}{i:07d}"
        schedule_follow_up(
            tenant=TENANT, spec=config.tenants[TENANT], keys_=keys, vault=vault, queue=queue,
            lead_id=phone, score=0.9, contact=Contact(phone=phone, name="Bench"),
            now=datetime.now(UTC),
        )  # fmt: skip
        enqueued[phone] = time.time()
        claims.append(Keys.claim(TENANT, keys.lead_ref(TENANT, phone), "1"))

    def paced(prefix: str) -> None:
        for i in range(args.paced):
            schedule(i, prefix)
            first = enqueued[f"+1{prefix}0000000"]
            time.sleep(max(0.0, (i + 1) / args.rate - (time.time() - first)))
        _wait_settled(client, claims, 60)

    # Baseline worker first: the same code with the start-up objects left to the collector.
    worker = start_worker("--no-gc-freeze")
    try:
        for i in range(20):  # warm-up (worker start, connections)
            schedule(i, "600")
        _wait_settled(client, claims, 60)
        paced("700")
    finally:
        terminate(worker, timeout=10)
    worker = start_worker()
    try:
        # Warm-up (worker start, connections), then the paced latency phase.
        for i in range(20):
            schedule(i, "200")
        _wait_settled(client, claims, 60)
        paced("300")
        # Burst: everything due at once.
        for i in range(args.burst):
            schedule(i, "400")
        _wait_settled(client, claims, 120)
    finally:
        terminate(worker, timeout=10)
    # Baseline: the bare SDK from a same-size pool, same twin.
    bare = TwilioMessages(name="bare", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                          sender="+15005550006", base_url=shape.url)  # fmt: skip
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda i: bare.send(OutboundMessage(to=f"+1500{i:07d}", body="Hi")),
                      range(args.burst)))  # fmt: skip
    twin.send_signal(signal.SIGTERM)
    out, _ = twin.communicate(timeout=30)
    server.stop()
    arrivals: dict[str, float] = json.loads(out)["arrivals"]

    def rate(prefix: str) -> float:
        times = sorted(t for to, t in arrivals.items() if to.startswith(prefix))
        return (len(times) - 1) / (times[-1] - times[0])

    def latencies(prefix: str) -> list[float]:
        return [arrivals[p] - enqueued[p] for p in enqueued if p.startswith(prefix)]

    latency, unfrozen = latencies("+1300"), latencies("+1700")
    sent = sum(1 for p in enqueued if p in arrivals)
    return {
        "worker_rate": rate("+1400"), "bare_rate": rate("+1500"),
        "p50_ms": 1000 * statistics.median(latency),
        "p99_ms": 1000 * _percentile(latency, 0.99),
        "max_ms": 1000 * max(latency),
        "base_p50_ms": 1000 * statistics.median(unfrozen),
        "base_p99_ms": 1000 * _percentile(unfrozen, 0.99),
        "base_max_ms": 1000 * max(unfrozen),
        "sent": sent, "enqueued": len(enqueued),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--paced", type=int, default=600)
    parser.add_argument("--rate", type=float, default=100.0, help="paced enqueues per second")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    args = parser.parse_args(argv)
    r = run(args)
    command = (f"`.venv/bin/python -m bench.followups --burst {args.burst} --paced {args.paced} "
               f"--rate {args.rate:g} --threads {args.threads}`")  # fmt: skip
    body = f"""## Follow-ups worker vs the provider twin (`bench/followups.py`)

Machine: {docsection.machine()}.

Reproduce: {command}.
One `leadops followups run` process ({args.threads} threads, rate limits off) sends SMS through the Twilio SDK to the Twilio twin running in its own process; Redis is
a real redis-server. Every follow-up goes through the whole path: vault decrypt, suppression
and quiet-hours checks, sandboxed template, idempotency claim, provider call, outcome and XACK
in one transaction. Baselines: for throughput, the same SDK calls from a bare pool of
{args.threads} threads; for latency, the same worker started with `--no-gc-freeze` (its
start-up objects left to the garbage collector), paced the same way just before.

| figure | measured | target | baseline (same run) | ratio to baseline |
| --- | --- | --- | --- | --- |
| throughput, burst of {args.burst} due now | {r["worker_rate"]:.0f} sends/s | >= 200 sends/s | {r["bare_rate"]:.0f} sends/s (bare SDK pool) | {r["worker_rate"] / r["bare_rate"]:.2f} |
| enqueue-to-send p50, {args.paced} paced at {args.rate:g}/s | {r["p50_ms"]:.1f} ms | - | {r["base_p50_ms"]:.1f} ms (no gc freeze) | {r["p50_ms"] / r["base_p50_ms"]:.2f} |
| enqueue-to-send p99 | {r["p99_ms"]:.1f} ms | <= 100 ms | {r["base_p99_ms"]:.1f} ms (no gc freeze) | {r["p99_ms"] / r["base_p99_ms"]:.2f} |
| enqueue-to-send max | {r["max_ms"]:.1f} ms | - | {r["base_max_ms"]:.1f} ms (no gc freeze) | {r["max_ms"] / r["base_max_ms"]:.2f} |

Sent {r["sent"]:.0f} of {r["enqueued"]:.0f} enqueued (warm-up included).
"""  # noqa: E501
    print(body)
    if not args.no_write:
        docsection.write_section("followups", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
