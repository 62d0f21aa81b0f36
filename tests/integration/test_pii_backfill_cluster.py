"""`leadops pii-backfill --redis-mode cluster` against a real Redis Cluster (3 masters + 3
replicas): scrubs keys on every master, loses no concurrent push, and survives a master killed
mid-run (failover to its replica): the run completes or ends as a partial failure, a rerun
completes, nothing is lost and no PII is left."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from redis.cluster import RedisCluster

from tests.fixtures.redis_cluster import RedisClusterServer
from tests.integration.test_pii_backfill import (
    LEADOPS,
    _lead,
    _run,
    _seed,
    _summary,
    concurrent_pushes_are_never_lost,
)

pytestmark = pytest.mark.redis

CLUSTER = ("--redis-mode", "cluster")
PACED = ("--batch", "5", "--max-ops-per-sec", "300")


def test_scrubs_lists_and_hashes_on_every_master(
    redis_cluster: RedisClusterServer, redis_cluster_url: str
) -> None:
    client = redis_cluster.cluster_client()
    expected = _seed(client, chats=40)  # type: ignore[arg-type]
    leads = {f"lead:{i:04d}": _lead(client, f"{i:04d}") for i in range(40)}  # type: ignore[arg-type]
    assert all(m.client().dbsize() > 0 for m in redis_cluster.masters())

    result = _run(redis_cluster_url, "--pattern", "mem:*", "--pattern", "lead:*", *CLUSTER)

    assert result.returncode == 0, result.stderr
    summary = _summary(result)
    assert summary["scanned_keys"] == 80
    assert summary["complete"] is True
    for key, scrubbed in expected.items():
        assert client.lrange(key, 0, -1) == scrubbed
    for key, record in leads.items():
        assert client.hgetall(key) == record
    again = _summary(_run(redis_cluster_url, "--pattern", "mem:*", "--pattern", "lead:*", *CLUSTER))
    assert again["redacted_items"] == 0


def test_the_mode_comes_from_the_environment_and_a_bad_one_is_exit_2(
    redis_cluster_url: str,
) -> None:
    bad = _run(redis_cluster_url, "--redis-mode", "sharded")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "standalone or cluster" in bad.stderr
    client = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    client.rpush("mem:t:one", "mail jane@example.com")
    ran = subprocess.run(
        [*LEADOPS, "--redis-url", redis_cluster_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "LEADOPS_REDIS_MODE": "cluster"},
    )
    assert ran.returncode == 0, ran.stderr
    assert client.lrange("mem:t:one", 0, -1) == ["mail [REDACTED]"]


def test_concurrent_pushes_are_never_lost_on_a_cluster(redis_cluster_url: str) -> None:
    concurrent_pushes_are_never_lost(redis_cluster_url, RedisCluster.from_url, *CLUSTER)


@pytest.mark.chaos
def test_a_master_killed_mid_run_fails_over_and_a_rerun_completes(
    redis_cluster: RedisClusterServer, redis_cluster_url: str
) -> None:
    client = redis_cluster.cluster_client()
    keys = [f"mem:t:chat{i}" for i in range(150)]
    originals = [f"msg {i} mail u{i}@example.com" for i in range(20)]
    for key in keys:
        client.rpush(key, *originals, "clean")
    for master in redis_cluster.masters():  # the seed is on the replicas before the failover
        master.client().wait(1, 5000)
    victim = redis_cluster.master_of(keys[-1])

    process = subprocess.Popen(
        [*LEADOPS, "--redis-url", redis_cluster_url, *CLUSTER, *PACED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while sum("[REDACTED]" in m for k in keys[:20] for m in client.lrange(k, 0, 0)) < 3:
            assert process.poll() is None, "the run ended before the kill"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        victim.kill()
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 1), stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["complete"] is (process.returncode == 0 and summary["errors"] == 0)
    if process.returncode == 1:
        assert stderr.count("\n") == 1
        assert "rerun" in stderr

    redis_cluster.wait_healthy()  # the killed node is back, as the new master's replica
    client = redis_cluster.cluster_client()
    for key in keys:  # every element is its original or its scrubbed form, none lost
        now = client.lrange(key, 0, -1)
        assert len(now) == 21
        for i, message in enumerate(now[:20]):
            assert message in {originals[i], f"msg {i} mail [REDACTED]"}

    rerun = _run(redis_cluster_url, *CLUSTER)
    assert rerun.returncode == 0, rerun.stderr
    assert _summary(rerun)["complete"] is True
    for key in keys:
        assert client.lrange(key, 0, -1) == [f"msg {i} mail [REDACTED]" for i in range(20)] + [
            "clean"
        ]
