"""Send a batch's commands to a Redis Cluster's masters: one connection per master, every
master's share written before any reply is read; and through redis-py's cluster pipeline
whatever a master did not answer.

Why not redis-py's ClusterPipeline for everything: it looks up and checks each command's
routing in Python (command policies, the slot of every key, cross-slot checks) and reads each
reply under its own timeout, which made the cluster store cost about 4x the standalone
store's CPU per lead (docs/benchmarks.md, "Scorer on Redis Cluster"). Nor a plain redis-py
pipeline per master: each ran as a task, took a pooled connection and gave it back under the
pool's lock, sent under a `wait_for` task of its own and read each reply under a timeout of its
own, and redis-py's packer checks every argument in Python (64 us for a 27-lead batch's
commands; hiredis, the parser redis-py already uses, packs them in 9). Together about 40 % of
the cluster store's CPU for a 27-lead batch. The store knows where each command goes, and sends
fewer, larger commands when it can (one script per master, not one per slot). The cluster
client keeps what it is good at: `through_cluster` follows MOVED and ASK and survives a
failover (it refreshes the slot map and retries on the new master).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from leadops import redis_mode

# (the key whose slot's master runs it, the command and its arguments)
Command = tuple[str, tuple[Any, ...]]
# by_master's group of the keys whose slot no master serves in the current slot map.
UNKNOWN_MASTER = ""
# How long the masters read after a slow one still get (see _after).
READ_GRACE_SECONDS = 0.01
# A reply slot not filled yet (None is a reply: a nil).
_UNANSWERED: Any = object()


class MasterConnections:
    """One connection per master, made from the cluster client's own settings (address,
    credentials, TLS), so both paths reach Redis the same way; one send at a time."""

    def __init__(self, cluster: RedisCluster, *, timeout: float) -> None:
        self._cluster = cluster
        self._timeout = timeout
        self._connections: dict[str, AbstractConnection] = {}
        # The record writer and its store watch may both send: their replies must not mix.
        self._sending = asyncio.Lock()

    async def by_master(self, keys: Sequence[str]) -> dict[str, list[int]]:
        """Indexes of `keys`, grouped by the master that serves each key's slot (as the slot
        map says now; a stale map shows as an error reply to what is sent by it)."""
        await self._cluster.initialize()  # a no-op once the slot map is known
        groups: dict[str, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            try:
                groups[self._master(key).name].append(index)
            except RedisClusterException:  # a slot no master covers (yet)
                groups[UNKNOWN_MASTER].append(index)
        return groups

    def _master(self, key: str) -> ClusterNode:
        node: ClusterNode = self._cluster.nodes_manager.get_node_from_slot(redis_mode.slot(key))
        return node

    def _connection(self, node: ClusterNode) -> AbstractConnection:
        connection = self._connections.get(node.name)
        if connection is None:
            # No timeout of its own (send() bounds each master's share by its deadline, not
            # each reply) and no retries: a node that does not answer is the cluster client's.
            kwargs = node.connection_kwargs | {
                "socket_timeout": None,
                "retry": Retry(NoBackoff(), 0),
            }
            connection = self._connections[node.name] = node.connection_class(**kwargs)
        return connection

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Each command on its key's master; the replies in order, an error (a redirect, a
        lost node, a script's error, no answer within the timeout) as its exception, never
        raised."""
        replies: list[Any] = [_UNANSWERED] * len(commands)
        await self._cluster.initialize()
        shares: dict[str, list[int]] = defaultdict(list)
        nodes: dict[str, ClusterNode] = {}
        for index, (key, _) in enumerate(commands):
            try:
                node = self._master(key)
            except RedisClusterException as exc:  # a slot no master covers (yet)
                replies[index] = exc
                continue
            nodes[node.name] = node
            shares[node.name].append(index)
        async with self._sending:
            try:
                await self._exchange(commands, shares, nodes, replies)
            except BaseException:
                # Cancelled (the scorer stopping): replies still on their way would answer the
                # next send's commands.
                for name in shares:
                    connection = self._connections.get(name)
                    if connection is not None:
                        await connection.disconnect(nowait=True)
                raise
        return replies

    async def _exchange(
        self,
        commands: Sequence[Command],
        shares: dict[str, list[int]],
        nodes: dict[str, ClusterNode],
        replies: list[Any],
    ) -> None:
        """Write every master's share, then read every master's replies, within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        sent: list[tuple[AbstractConnection, list[int]]] = []
        for name, indexes in shares.items():
            connection = self._connection(nodes[name])
            try:
                async with asyncio.timeout_at(_after(deadline, loop)):
                    # (it connects first when it is not connected)
                    packed = b"".join(hiredis.pack_command(commands[i][1]) for i in indexes)
                    await connection.send_packed_command(packed, check_health=False)
            except (RedisError, OSError, TimeoutError) as exc:
                await _failed(connection, indexes, exc, replies)
                continue
            sent.append((connection, indexes))
        # Every master has its share before the first reply is awaited: they run at once.
        for connection, indexes in sent:
            try:
                async with asyncio.timeout_at(_after(deadline, loop)):
                    await _read(connection, indexes, replies)
            except TimeoutError as exc:
                late = [i for i in indexes if replies[i] is _UNANSWERED]
                await _failed(connection, late, exc, replies)

    async def through_cluster(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """The commands through redis-py's cluster pipeline (redirects followed, failover
        retried); the replies in order, an error as its exception, never raised."""
        if not commands:
            return []
        try:
            async with self._cluster.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute(raise_on_error=False))
        except (RedisError, OSError) as exc:
            return [exc] * len(commands)

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.disconnect()


def _after(deadline: float, loop: asyncio.AbstractEventLoop) -> float:
    """The send's deadline, or a moment from now once a slow master has used it up: the
    replies of the masters read after it have mostly come already and are taken, not failed."""
    return max(deadline, loop.time() + READ_GRACE_SECONDS)


async def _read(connection: AbstractConnection, indexes: list[int], replies: list[Any]) -> None:
    for at, index in enumerate(indexes):
        try:
            replies[index] = await connection.read_response()
        except ResponseError as exc:  # this command's error; the next reply follows
            replies[index] = exc
        except (RedisError, OSError) as exc:
            await _failed(connection, indexes[at:], exc, replies)
            return


async def _failed(
    connection: AbstractConnection, indexes: list[int], exc: Exception, replies: list[Any]
) -> None:
    """The commands at `indexes` failed with `exc`; the connection, whose replies are now out
    of step, is dropped (the next send connects again)."""
    for index in indexes:
        replies[index] = exc
    await connection.disconnect(nowait=True)
