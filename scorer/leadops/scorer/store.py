"""Where leads, outcomes and chat memory live: Redis in production, a dict in dev.

Layout (shared with the PII backfill job):
- lead record: HASH `lead:{lead_id}`: the lead's row columns plus `score`,
  `model_version`, `tenant`, `chat_key` (the name of its chat memory list, never the
  chat_id), `received_at`, and `converted` once known (records written before chat keys
  were hashed hold `chat_id` instead, still read);
- chat memory: LIST `mem:{tenant}:k{keyed hash of chat_id}` of messages, redacted before
  they get here (the name never holds the chat_id: leadops.pii.chat_keys);
- `leadops:outcomes`: ZSET of lead ids with a known outcome (scored by when it was
  recorded), so the export never scans the keyspace;
- `leadops:columns`: SET of every row column ever stored (the export's header).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import EncodableT, KeyT

from leadops.pii import chat_keys

logger = logging.getLogger(__name__)

OUTCOMES_KEY = "leadops:outcomes"
COLUMNS_KEY = "leadops:columns"
# Fields the scorer adds to a lead record; not part of the training row.
RECORD_META = frozenset({"score", "model_version", "chat_key", "chat_id", "converted", "lead_id"})
EXPORT_BATCH = 200


class StoreUnavailable(Exception):
    """The store could not be reached or answered with an error."""


@dataclass(frozen=True, slots=True)
class LeadWrite:
    """One scored lead to store: its record, its row's columns and its first chat message."""

    lead_id: str
    record: dict[str, str]
    columns: list[str]
    memory: str
    message: str | None


def _text(value: object) -> str:
    # The client decodes responses; this narrows redis-py's bytes|str typing.
    return value.decode() if isinstance(value, bytes) else str(value)


def lead_key(lead_id: str) -> str:
    return f"lead:{lead_id}"


def memory_key(tenant: str, chat_id: str) -> str:
    return chat_keys.chat_key(tenant, chat_id, salt=chat_keys.process_salt())


class LeadStore(Protocol):
    kind: Literal["redis", "memory"]

    async def save_leads(self, batch: Sequence[LeadWrite]) -> None:
        """Store lead records, their columns and first messages (one round trip)."""
        ...

    async def lead_memory_key(self, lead_id: str, *, tenant: str) -> str | None:
        """The chat memory list of a known lead of `tenant`, or None when the lead is unknown
        (or another tenant's)."""
        ...

    async def append_message(self, memory: str, message: str) -> None: ...

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> bool:
        """Set the label; False when the lead is unknown (or another tenant's)."""
        ...

    async def columns(self) -> list[str]: ...

    def outcomes(self) -> AsyncIterator[dict[str, str]]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


# Set the label only on an existing record of the caller's tenant, atomically (no record
# conjured for an unknown id, none labelled across tenants).
_RECORD_OUTCOME = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'converted', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


# A whole batch of lead records in ONE command: redis-py packs and parses commands in Python,
# so one call per batch instead of 2-3 per lead is what keeps scoring throughput up; and the
# batch's records travel as ONE JSON argument (one json.dumps, one argument for redis-py to
# pack) rather than two per lead.
# KEYS: columns set, then (lead hash, memory list) per lead.
# ARGV[1]: JSON array with one [field, value, ..., message or ""] array per lead; then columns.
_SAVE_LEADS = """
local leads = cjson.decode(ARGV[1])
for i, fields in ipairs(leads) do
  local message = table.remove(fields)
  redis.call('HSET', KEYS[2 * i], unpack(fields))
  if message ~= '' then redis.call('RPUSH', KEYS[2 * i + 1], message) end
end
if #ARGV > 1 then
  redis.call('SADD', KEYS[1], unpack(ARGV, 2))
end
return #leads
"""


class RedisStore:
    """The production store (redis-py's asyncio client, one connection pool)."""

    kind: Literal["redis", "memory"] = "redis"

    def __init__(self, url: str, *, timeout: float) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self._record_outcome = self._client.register_script(_RECORD_OUTCOME)
        self._save_leads = self._client.register_script(_SAVE_LEADS)

    async def save_leads(self, batch: Sequence[LeadWrite]) -> None:
        columns = sorted({c for write in batch for c in write.columns})
        keys: list[KeyT] = [COLUMNS_KEY]
        leads: list[list[str]] = []
        for write in batch:
            keys += (lead_key(write.lead_id), write.memory)
            fields = [item for pair in write.record.items() for item in pair]
            fields.append(write.message or "")
            leads.append(fields)
        args: list[EncodableT] = [json.dumps(leads, ensure_ascii=False), *columns]
        try:
            await self._save_leads(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def lead_memory_key(self, lead_id: str, *, tenant: str) -> str | None:
        try:
            owner, chat, chat_id = await self._client.hmget(
                lead_key(lead_id), ["tenant", "chat_key", "chat_id"]
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if owner is None or _text(owner) != tenant:
            return None
        if chat is not None:
            return _text(chat)
        return None if chat_id is None else memory_key(tenant, _text(chat_id))

    async def append_message(self, memory: str, message: str) -> None:
        try:
            await self._client.rpush(memory, message)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> bool:
        try:
            done = await self._record_outcome(
                keys=[lead_key(lead_id), OUTCOMES_KEY], args=[int(converted), at, lead_id, tenant]
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return bool(done)

    async def columns(self) -> list[str]:
        try:
            return sorted(_text(c) for c in await self._client.smembers(COLUMNS_KEY))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def outcomes(self) -> AsyncIterator[dict[str, str]]:
        start = 0
        try:
            while True:
                ids = await self._client.zrange(OUTCOMES_KEY, start, start + EXPORT_BATCH - 1)
                if not ids:
                    return
                async with self._client.pipeline(transaction=False) as pipe:
                    for lead_id in ids:
                        pipe.hgetall(lead_key(_text(lead_id)))
                    records = await pipe.execute()
                for lead_id, record in zip(ids, records, strict=True):
                    # A record scrubbed or expired since its outcome was indexed is skipped.
                    if record and "converted" in record:
                        yield {"lead_id": _text(lead_id)} | record
                start += EXPORT_BATCH
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._client.aclose()


class MemoryStore:
    """Dev/demo only: the same semantics in process memory, lost on restart."""

    kind: Literal["redis", "memory"] = "memory"

    def __init__(self) -> None:
        self.records: dict[str, dict[str, str]] = {}
        self.memory: dict[str, list[str]] = {}
        self.outcome_order: dict[str, float] = {}
        self.column_names: set[str] = set()

    async def save_leads(self, batch: Sequence[LeadWrite]) -> None:
        for write in batch:
            self.records.setdefault(lead_key(write.lead_id), {}).update(write.record)
            self.column_names.update(write.columns)
            if write.message:
                self.memory.setdefault(write.memory, []).append(write.message)

    async def lead_memory_key(self, lead_id: str, *, tenant: str) -> str | None:
        record = self.records.get(lead_key(lead_id))
        if record is None or record["tenant"] != tenant:
            return None
        return record["chat_key"]

    async def append_message(self, memory: str, message: str) -> None:
        self.memory.setdefault(memory, []).append(message)

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> bool:
        record = self.records.get(lead_key(lead_id))
        if record is None or record.get("tenant") != tenant:
            return False
        record["converted"] = str(int(converted))
        self.outcome_order[lead_id] = at
        return True

    async def columns(self) -> list[str]:
        return sorted(self.column_names)

    async def outcomes(self) -> AsyncIterator[dict[str, str]]:
        for lead_id in sorted(self.outcome_order, key=self.outcome_order.__getitem__):
            record = self.records.get(lead_key(lead_id))
            if record is not None:
                yield {"lead_id": lead_id} | record

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
