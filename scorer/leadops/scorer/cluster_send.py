"""Send a batch's commands to a Redis Cluster's masters, one plain pipeline per master, all
masters at once; and through redis-py's cluster pipeline whatever a master did not answer.

Why not redis-py's ClusterPipeline for everything: it looks up and checks each command's
routing in Python (command policies, the slot of every key, cross-slot checks) and reads each
reply under its own timeout, which made the cluster store cost about 4x the standalone
store's CPU per lead (docs/benchmarks.md, "Scorer on Redis Cluster"). The store knows where
each command goes, and sends fewer, larger commands when it can (one script per master, not
one per slot). The cluster client keeps what it is good at: `through_cluster` follows MOVED
and ASK and survives a failover (it refreshes the slot map and retries on the new master).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from leadops import redis_mode

# (the key whose slot's master runs it, the command and its arguments)
Command = tuple[str, tuple[Any, ...]]
# by_master's group of the keys whose slot no master serves in the current slot map.
UNKNOWN_MASTER = ""


class MasterPipelines:
    """One plain connection pool per master, made from the cluster client's own settings
    (address, credentials, TLS, timeouts), so both paths reach Redis the same way."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._clients: dict[str, aioredis.Redis] = {}

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

    def _client(self, node: ClusterNode) -> aioredis.Redis:
        client = self._clients.get(node.name)
        if client is None:
            # No retries here: a node that does not answer is the cluster client's to handle.
            kwargs = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
            pool = aioredis.ConnectionPool(connection_class=node.connection_class, **kwargs)
            client = self._clients[node.name] = aioredis.Redis(connection_pool=pool)
        return client

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Each command on its key's master; the replies in order, an error (a redirect, a
        lost node, a script's error) as its exception, never raised."""
        replies: list[Any] = [None] * len(commands)
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

        async def share(node: ClusterNode, indexes: list[int]) -> None:
            pipe = self._client(node).pipeline(transaction=False)
            for index in indexes:
                pipe.execute_command(*commands[index][1])
            try:
                answered = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                answered = [exc] * len(indexes)
            for index, reply in zip(indexes, answered, strict=True):
                replies[index] = reply

        await asyncio.gather(*(share(nodes[name], part) for name, part in shares.items()))
        return replies

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
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
