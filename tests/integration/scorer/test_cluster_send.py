"""The cluster store's sends to the masters (leadops.scorer.cluster_send) on a real Redis
Cluster: each reply answers its own command, also after a master answered too late or a command
failed, and a slow master fails only its own share."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from leadops.scorer.cluster_send import MasterConnections
from tests.fixtures.redis_cluster import RedisClusterServer

pytestmark = pytest.mark.redis


def _key_per_master(cluster: RedisClusterServer) -> list[str]:
    """One fresh key on each master, in the masters' order of first appearance."""
    keys: dict[int, str] = {}
    while len(keys) < len(cluster.masters()):
        key = f"send-test:{uuid.uuid4().hex}"
        keys.setdefault(cluster.master_of(key).port, key)
    return list(keys.values())


def test_a_late_master_fails_its_own_share_and_its_late_reply_answers_nothing(
    redis_cluster: RedisClusterServer, redis_cluster_url: str
) -> None:
    first, second, third = _key_per_master(redis_cluster)
    blocked = "{" + first + "}:empty-list"  # on the first key's slot: BLPOP waits 2 s there

    async def run() -> tuple[list[object], list[object], float]:
        cluster = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
        masters = MasterConnections(cluster, timeout=0.3)
        try:
            began = time.monotonic()
            late = await masters.send(
                [
                    (first, ("BLPOP", blocked, 2)),
                    (first, ("ECHO", "first")),
                    (second, ("ECHO", "second")),
                    (third, ("ECHO", "third")),
                ]
            )
            took = time.monotonic() - began
            # The BLPOP's nil is still to come on the old connection: it must not be read here.
            again = await masters.send(
                [
                    (first, ("ECHO", "first again")),
                    (second, ("SET", second, "text")),
                    (second, ("INCR", second)),  # an error reply: the next reply follows it
                    (second, ("ECHO", "after the error")),
                    (third, ("ECHO", "third again")),
                ]
            )
            return late, again, took
        finally:
            await masters.close()
            await cluster.aclose()

    late, again, took = asyncio.run(run())
    assert [type(reply) for reply in late[:2]] == [TimeoutError, TimeoutError]
    assert late[2:] == ["second", "third"]
    assert took < 1.0  # the slow master's timeout, not its 2 s
    assert again[0] == "first again"
    assert again[1] == "OK"
    assert isinstance(again[2], ResponseError)
    assert again[3:] == ["after the error", "third again"]


def test_a_cancelled_send_leaves_no_reply_behind_for_the_next(
    redis_cluster: RedisClusterServer, redis_cluster_url: str
) -> None:
    first, second, third = _key_per_master(redis_cluster)
    blocked = "{" + first + "}:empty-list"

    async def run() -> list[object]:
        cluster = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
        masters = MasterConnections(cluster, timeout=5.0)
        try:
            # Cancelled while it waits on the first master: the other two have answered, and
            # their replies are not read yet.
            sending = asyncio.create_task(
                masters.send(
                    [
                        (first, ("BLPOP", blocked, 2)),
                        (second, ("ECHO", "second")),
                        (third, ("ECHO", "third")),
                    ]
                )
            )
            await asyncio.sleep(0.3)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            return await masters.send(
                [(first, ("ECHO", "a")), (second, ("ECHO", "b")), (third, ("ECHO", "c"))]
            )
        finally:
            await masters.close()
            await cluster.aclose()

    assert asyncio.run(run()) == ["a", "b", "c"]
