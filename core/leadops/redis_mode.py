"""One Redis or a Redis Cluster: the mode (`LEADOPS_REDIS_MODE`, `--redis-mode`,
`spec.redis.mode`) and the hash slots a cluster splits keys by.

In cluster mode the URL names any one node (`redis://node-0:6379`); redis-py's RedisCluster
finds the others (CLUSTER SLOTS), routes each command to its slot's master and follows MOVED,
ASK and a failover itself. A Lua script or MULTI may only touch keys of one hash slot, so
code that sends multi-key scripts groups its keys by `slot()`.
"""

from __future__ import annotations

import enum
import os
from typing import Final

from redis.crc import key_slot

MODE_ENV: Final = "LEADOPS_REDIS_MODE"


class RedisMode(enum.StrEnum):
    STANDALONE = "standalone"
    CLUSTER = "cluster"


def parse_mode(text: str) -> RedisMode:
    """The mode named `text`; ValueError naming the choices otherwise."""
    try:
        return RedisMode(text.strip())
    except ValueError:
        choices = ", ".join(m.value for m in RedisMode)
        raise ValueError(f"unknown Redis mode {text!r}: choose one of {choices}") from None


def mode_from_env() -> RedisMode:
    """LEADOPS_REDIS_MODE, standalone when unset or empty."""
    return parse_mode(os.environ.get(MODE_ENV) or RedisMode.STANDALONE)


def slot(key: str | bytes) -> int:
    """The cluster hash slot of `key` (its {hash tag} if it has one), as Redis computes it."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def same_slot_tag(key: str) -> str | None:
    """A hash tag that puts another key on `key`'s slot (`{key}`, or `key`'s own tag); None
    for a name whose braces no tag can reproduce."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start : end + 1]
    if "}" in key:
        return None
    return "{" + key + "}"
