"""Many scorer replicas that serve one model: the reload announcement on Redis.

`POST /ops/reload-model` reaches one replica (a Service picks one Pod). That replica validates
the artifact, then announces it: one Redis hash, `leadops:reload:<group>` (sequence number,
version, digest, the AUC floor it passed, and the artifact's bytes), and a message on the channel
of the same name. Every replica follows: on the message, and every `follow_poll_seconds` in case
it missed one (pub/sub delivers at most once) or started later, it reads the hash and, when the
sequence moved and the digest is not the one it serves, loads exactly those bytes, refusing them
unless their digest is the announced one. The hash is the durable record; the message only wakes
the replicas up. Nothing here touches the lead store's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import cast

import anyio
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from leadops.scorer.model import ModelRejected, ServingModel, load_configured
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

PREFIX = "leadops:reload:"
# Bytes are read back only when the sequence moved: the poll itself is one HGET.
SEQ, VERSION, DIGEST, MIN_AUC, ARTIFACT = b"seq", b"version", b"digest", b"min_auc", b"artifact"


def key_of(group: str) -> str:
    """The hash (and the channel: a separate namespace in Redis) of one replica group."""
    return PREFIX + group


@dataclass(frozen=True)
class Announcement:
    seq: int
    version: int
    digest: str
    min_auc: float
    artifact: bytes


class Announcer:
    """Announces validated reloads to a replica group and follows the group's announcements."""

    def __init__(
        self, url: str, *, group: str, timeout: float, poll_seconds: float, cluster: bool = False
    ) -> None:
        self.key = key_of(group)
        self.poll_seconds = poll_seconds
        # The last announcement this replica has acted on (loaded, or refused and logged).
        self.seq = 0
        # On Redis Cluster the followers poll: redis-py's asyncio cluster client has no
        # pub/sub, and the hash is one key, on one slot, so the rest is the same.
        self.cluster = cluster
        read_timeout = max(timeout, 2.0)  # an artifact of a few MiB in one reply
        self._client: aioredis.Redis | aioredis.RedisCluster = (
            aioredis.RedisCluster.from_url(
                url, socket_timeout=read_timeout, socket_connect_timeout=timeout
            )
            if cluster
            else aioredis.Redis.from_url(
                url,
                socket_timeout=read_timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def announce(self, model: ServingModel, data: bytes, *, min_auc: float) -> int:
        """Record the validated artifact (atomically with its sequence number), then wake the
        replicas. Raises RedisError: the caller decides whether serving it alone is allowed."""
        fields: dict[FieldT, EncodableT] = {
            "version": model.version,
            "digest": model.artifact.digest,
            "min_auc": repr(min_auc),
            "artifact": data,
        }
        if isinstance(self._client, aioredis.RedisCluster):
            # No MULTI here: the artifact first, then the number followers look for. One
            # who reads in between finds the new artifact under the old number and loads it
            # once more when the number moves (converge skips a digest it serves).
            await self._client.hset(self.key, mapping=fields)
            self.seq = int(await self._client.hincrby(self.key, "seq", 1))
            return self.seq
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.key, "seq", 1)
            pipe.hset(self.key, mapping=fields)
            seq, _ = await pipe.execute()
        self.seq = int(seq)
        await self._client.publish(self.key, str(seq))
        return self.seq

    async def latest(self) -> Announcement | None:
        """The group's announcement when it is newer than the one acted on, else None."""
        seq = await self._client.hget(self.key, "seq")
        if seq is None or int(seq) <= self.seq:
            return None
        # A bytes client (no decode_responses): every key and value is bytes.
        found = cast(dict[bytes, bytes], await self._client.hgetall(self.key))
        return Announcement(
            seq=int(found[SEQ]),
            version=int(found[VERSION]),
            digest=found[DIGEST].decode(),
            min_auc=float(found[MIN_AUC]),
            artifact=found[ARTIFACT],
        )

    async def converge(self, state: ScorerState) -> None:
        """Serve the group's latest announcement if it is not served yet (one reload at a time)."""
        async with state.reload_lock:
            found = await self.latest()
            if found is None:
                return
            self.seq = found.seq
            serving = state.model
            if serving is not None and serving.artifact.digest == found.digest:
                return
            await _follow(state, found)

    def start(self, state: ScorerState) -> None:
        self._task = asyncio.create_task(self._follow_forever(state), name="reload-follower")

    async def _follow_forever(self, state: ScorerState) -> None:
        failing = False
        while True:
            try:
                if isinstance(self._client, aioredis.RedisCluster):
                    await self.converge(state)
                    if failing:
                        logger.info("Following reload announcements again")
                        failing = False
                    await asyncio.sleep(self.poll_seconds)
                    continue
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.key)
                    while True:
                        # Converge after subscribing, so no announcement falls in between.
                        await self.converge(state)
                        if failing:
                            logger.info("Following reload announcements again")
                            failing = False
                        await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self.poll_seconds
                        )
            except (RedisError, OSError) as exc:
                if not failing:
                    logger.warning(
                        "Cannot follow reload announcements (%s); retrying every %.1fs",
                        type(exc).__name__,
                        self.poll_seconds,
                    )
                    failing = True
                await asyncio.sleep(self.poll_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()


async def _follow(state: ScorerState, found: Announcement) -> None:
    settings = state.settings
    reloads = state.metrics.reloads
    pinned = settings.model_digest
    if pinned is not None and pinned != found.digest:
        # The operator's pin wins: it validated exactly one artifact for these Pods. Its own
        # reloads can only announce that one, so this is an older rollout's announcement (the
        # normal state after a rollout), not a failure: no metric, no alert.
        logger.info(
            "Announced model version %d is not this Pod's pinned digest (an earlier rollout's); "
            "serving the pinned one",
            found.version,
        )
        return
    floor = max(found.min_auc, settings.auc_critical)
    try:
        model = await anyio.to_thread.run_sync(
            lambda: load_configured(
                found.artifact,
                settings,
                min_auc=floor,
                verify_keys=state.verify_keys,
                expect_digest=found.digest,
            )
        )
    except ModelRejected as exc:
        reloads.labels(result="rejected", reason=exc.reason).inc()
        logger.error(
            "Announced model version %d refused here (%s); still serving version %s",
            found.version,
            exc.reason,
            state.model.version if state.model is not None else None,
        )
        return
    previous = state.serve(model)
    reloads.labels(result="loaded", reason="").inc()
    logger.info(
        "model_reload followed announcement %d: version %d, replacing %s",
        found.seq,
        model.version,
        previous.version if previous is not None else "nothing",
    )
