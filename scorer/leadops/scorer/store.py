"""Where leads, outcomes and chat memory live: Redis in production, a dict in dev.

Layout (shared with the PII backfill job):
- lead record: HASH `lead:{lead_id}`: the lead's row columns plus `score`,
  `model_version`, `tenant`, `chat_key` (the name of its chat memory list, never the
  chat_id), `received_at`, and `converted` and `outcome_at` once known (records written
  before chat keys were hashed hold `chat_id` instead, still read); a lead of an experiment
  also holds `experiment`, `variant`, `scored_at` and `shadow_<variant>` scores;
- chat memory: LIST `mem:{tenant}:k{keyed hash of chat_id}` of messages, redacted before
  they get here (the name never holds the chat_id: leadops.pii.chat_keys);
- `leadops:outcomes`: ZSET of lead ids with a known outcome (scored by when it was
  recorded), so the export never scans the keyspace;
- `leadops:columns`: SET of every row column ever stored (the export's header);
- `leadops:experiment`: ZSET of the ids of leads bucketed into an experiment (scored by when
  they were stored), so the experiment export lists every such lead, with an outcome or not;
- `leadops:matured-auc`: ZSET of the ids of leads the previous version scored in shadow after a
  promotion (scored by when they were stored), so the matured-AUC guard reads every such lead,
  with an outcome or not. Such a lead's record holds `scored_at`, `previous_version` and
  `previous_score` too.

Retention (leadops.scorer.retention): a lead record and its chat memory list get their TTL in
the script that writes them; an outcome re-arms the record's TTL; the indexes are trimmed of
the ids whose records expired.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, KeyT

from leadops.pii import chat_keys
from leadops.scorer import retention

if TYPE_CHECKING:  # shadow imports this module
    from leadops.scorer.shadow import Pending

logger = logging.getLogger(__name__)

OUTCOMES_KEY = "leadops:outcomes"
COLUMNS_KEY = "leadops:columns"
EXPERIMENT_KEY = "leadops:experiment"
GUARD_KEY = "leadops:matured-auc"
# What the matured-AUC guard reads of a lead record (leadops.scorer.matured).
GUARD_FIELDS = (
    "model_version",
    "previous_version",
    "score",
    "previous_score",
    "scored_at",
    "converted",
    "outcome_at",
)
# Fields the scorer adds to a lead record; not part of the training row.
RECORD_META = frozenset({"score", "model_version", "chat_key", "chat_id", "converted", "lead_id"})
EXPORT_BATCH = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded outcome's lead: its experiment and variant ("" when it had none)."""

    experiment: str = ""
    variant: str = ""


class StoreUnavailable(Exception):
    """The store could not be reached or answered with an error."""


class PartlyWritten(StoreUnavailable):
    """A batch failed part-way (a script error): the leads in `written` are stored."""

    def __init__(self, reason: str, *, written: frozenset[str]) -> None:
        super().__init__(reason)
        self.written = written


@dataclass(frozen=True, slots=True)
class LeadWrite:
    """One scored lead to store: its record, its row's columns and its first chat message."""

    lead_id: str
    record: dict[str, str]
    columns: list[str]
    memory: str
    message: str | None
    # The lead id comes from the caller's Idempotency-Key: a retry of the request gets it again.
    keyed: bool = False
    # The lead was bucketed into an experiment: listed in EXPERIMENT_KEY for its export.
    experiment: bool = False
    # The previous version scored the lead in shadow: listed in GUARD_KEY for the guard.
    guarded: bool = False
    # The experiment's other models' scores, added to `record` before the batch is written.
    shadow: Pending | None = None


def _first_line(exc: Exception) -> str:
    # A script error's text: the first line only (no argument values follow it).
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


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
        """Store lead records, their columns and first messages (one round trip); idempotent
        by lead id (a stored lead is left as it is). Raises StoreUnavailable when nothing was
        written, PartlyWritten when some leads were."""
        ...

    async def confirm(self, batch: Sequence[LeadWrite], *, retract: bool) -> frozenset[str]:
        """Ids of the leads in `batch` that are stored; with `retract`, remove those records
        (and their first message) too: they were answered 503, so nobody knows their id."""
        ...

    async def lead_memory_key(self, lead_id: str, *, tenant: str) -> str | None:
        """The chat memory list of a known lead of `tenant`, or None when the lead is unknown
        (or another tenant's)."""
        ...

    async def append_message(self, memory: str, message: str) -> None: ...

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> Outcome | None:
        """Set the label; None when the lead is unknown (or another tenant's)."""
        ...

    async def columns(self) -> list[str]: ...

    def outcomes(self) -> AsyncIterator[dict[str, str]]: ...

    def guard_leads(self, *, since: float, until: float) -> AsyncIterator[dict[str, str]]:
        """The GUARD_FIELDS of the shadow-scored leads stored between `since` and `until`
        (unix seconds), oldest first."""
        ...

    def experiment_leads(self) -> AsyncIterator[dict[str, str]]:
        """Every stored lead bucketed into an experiment (any experiment), oldest first."""
        ...

    async def trim_indexes(self) -> int:
        """Remove the ids of expired records from the export indexes; how many were removed."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


# Set the label only on an existing record of the caller's tenant, atomically (no record
# conjured for an unknown id, none labelled across tenants); the record is then kept for the
# outcome retention (ARGV[5] seconds; 0: until erased).
_RECORD_OUTCOME = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[4] then return false end
redis.call('HSET', KEYS[1], 'converted', ARGV[1], 'outcome_at', ARGV[2])
if ARGV[5] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 'experiment', 'variant')
return {bucket[1] or '', bucket[2] or ''}
"""


# A whole batch of lead records in ONE command: redis-py packs and parses commands in Python,
# so one call per batch instead of 2-3 per lead is what keeps scoring throughput up; and the
# batch's records travel as ONE JSON argument (one json.dumps, one argument for redis-py to
# pack) rather than two per lead.
# Idempotent by lead id: a lead whose hash exists is skipped, so a retried batch never pushes
# a chat message twice. Refused past its deadline (Redis's clock, milliseconds): a batch the
# client gave up on (a timeout; Redis stopped, then resumed) must not land after all, or the
# scorer would count it lost (or answer 503) although it was stored.
# Lua's unpack() takes at most ~8,000 values (LUAI_MAXCSTACK): fields and columns go to HSET
# and SADD in slices of UNPACK_SLICE, so a wide lead cannot fail the batch half-written.
# The record and the chat list get their TTL here, in the same step as the write (a TTL set
# by a second call could be lost with it).
# KEYS: columns set, experiment index, guard index, then (lead hash, memory list) per lead.
# ARGV[1]: deadline; ARGV[2]: TTL in seconds (0: none); ARGV[3]: JSON array with one [field,
# value, ..., message or "", lead id to list in the experiment index or "", lead id to list
# in the guard index or ""] array per lead;
# then the columns. Returns the number of leads written, or -1 past the deadline.
UNPACK_SLICE = 1000
_SAVE_LEADS = f"""
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then
  return -1
end
local slice = {UNPACK_SLICE}
local ttl = tonumber(ARGV[2])
local leads = cjson.decode(ARGV[3])
local written = 0
for i, fields in ipairs(leads) do
  local key = KEYS[2 * i + 2]
  if redis.call('EXISTS', key) == 0 then
    local guarded = table.remove(fields)
    local indexed = table.remove(fields)
    local message = table.remove(fields)
    for j = 1, #fields, slice do
      redis.call('HSET', key, unpack(fields, j, math.min(j + slice - 1, #fields)))
    end
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    if message ~= '' then
      redis.call('RPUSH', KEYS[2 * i + 3], message)
      if ttl > 0 then redis.call('EXPIRE', KEYS[2 * i + 3], ttl) end
    end
    if indexed ~= '' then redis.call('ZADD', KEYS[2], now[1], indexed) end
    if guarded ~= '' then redis.call('ZADD', KEYS[3], now[1], guarded) end
    written = written + 1
  end
end
for j = 4, #ARGV, slice do
  redis.call('SADD', KEYS[1], unpack(ARGV, j, math.min(j + slice - 1, #ARGV)))
end
return written
"""
# Which leads of a batch whose write failed are stored after all (the script ran, its answer
# was lost); with ARGV[1] == '1', retract them. KEYS: (lead hash, memory list) per lead;
# ARGV[2..]: each lead's first message ('' for none). Returns the 1-based indexes found.
_CONFIRM_LEADS = """
local found = {}
for i = 1, #KEYS / 2 do
  local key = KEYS[2 * i - 1]
  if redis.call('EXISTS', key) == 1 then
    found[#found + 1] = i
    if ARGV[1] == '1' then
      redis.call('DEL', key)
      local message = ARGV[i + 1]
      if message ~= '' then redis.call('LREM', KEYS[2 * i], -1, message) end
    end
  end
end
return found
"""
# A chat message and its list's TTL (ARGV[2] seconds; 0: none), in one step. KEYS[1]: the list.
APPEND_MESSAGE = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
# The deadline is this share of the client timeout after the call is made: the client gives
# up no earlier than the whole timeout after sending, so clocks may differ by the rest.
DEADLINE_SHARE = 0.8


def save_leads_command(
    batch: Sequence[LeadWrite], *, deadline_ms: int, ttl_seconds: int = 0
) -> tuple[list[KeyT], list[EncodableT]]:
    """The KEYS and ARGV of _SAVE_LEADS for `batch` (one JSON argument for all records)."""
    columns = sorted({c for write in batch for c in write.columns})
    keys: list[KeyT] = [COLUMNS_KEY, EXPERIMENT_KEY, GUARD_KEY]
    leads: list[list[str]] = []
    for write in batch:
        keys += (lead_key(write.lead_id), write.memory)
        fields = [item for pair in write.record.items() for item in pair]
        fields += (
            write.message or "",
            write.lead_id if write.experiment else "",
            write.lead_id if write.guarded else "",
        )
        leads.append(fields)
    return keys, [deadline_ms, ttl_seconds, json.dumps(leads, ensure_ascii=False), *columns]


class RedisStore:
    """The production store (redis-py's asyncio client, one connection pool)."""

    kind: Literal["redis", "memory"] = "redis"

    def __init__(
        self, url: str, *, timeout: float, keep: retention.Retention = retention.KEEP_FOREVER
    ) -> None:
        self._timeout = timeout
        self._keep = keep
        self._client: aioredis.Redis = self._connect(url, timeout=timeout)
        self._record_outcome = self._client.register_script(_RECORD_OUTCOME)
        self._save_leads = self._client.register_script(_SAVE_LEADS)
        self._confirm_leads = self._client.register_script(_CONFIRM_LEADS)

    @staticmethod
    def _connect(url: str, *, timeout: float) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            # No retries inside redis-py (its default: 10, with backoff): a call fails within
            # one timeout, so an outage answers 503 fast, and the writer retries a batch
            # itself, with a fresh deadline.
            retry=Retry(NoBackoff(), 0),
        )

    @property
    def client(self) -> aioredis.Redis:
        """The connection pool, for what lives beside the leads (erasure, follow-ups' state)."""
        return self._client

    async def save_leads(self, batch: Sequence[LeadWrite]) -> None:
        deadline = int((time.time() + DEADLINE_SHARE * self._timeout) * 1000)
        keys, args = save_leads_command(
            batch, deadline_ms=deadline, ttl_seconds=self._keep.lead_seconds
        )
        try:
            written = await self._save_leads(keys=keys, args=args)
        except ResponseError as exc:
            # The script stopped part-way: Redis keeps what it wrote before the error.
            raise PartlyWritten(_first_line(exc), written=await self._existing(batch)) from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if written == -1:
            raise StoreUnavailable("deadline passed before Redis ran the batch")

    async def confirm(self, batch: Sequence[LeadWrite], *, retract: bool) -> frozenset[str]:
        keys: list[KeyT] = []
        args: list[EncodableT] = ["1" if retract else "0"]
        for write in batch:
            keys += (lead_key(write.lead_id), write.memory)
            args.append(write.message or "")
        try:
            found = await self._confirm_leads(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return frozenset(batch[int(i) - 1].lead_id for i in found)

    async def _existing(self, batch: Sequence[LeadWrite]) -> frozenset[str]:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for write in batch:
                    pipe.exists(lead_key(write.lead_id))
                found = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return frozenset(w.lead_id for w, n in zip(batch, found, strict=True) if n)

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
            await self._client.eval(APPEND_MESSAGE, 1, memory, message, self._keep.lead_seconds)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> Outcome | None:
        try:
            done = await self._record_outcome(
                keys=[lead_key(lead_id), OUTCOMES_KEY],
                args=[int(converted), at, lead_id, tenant, self._keep.outcome_seconds],
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if done is None:
            return None
        experiment, variant = done
        return Outcome(experiment=_text(experiment), variant=_text(variant))

    async def columns(self) -> list[str]:
        try:
            return sorted(_text(c) for c in await self._client.smembers(COLUMNS_KEY))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def outcomes(self) -> AsyncIterator[dict[str, str]]:
        async for record in self._indexed(OUTCOMES_KEY):
            # A record scrubbed or expired since its outcome was indexed is skipped.
            if "converted" in record:
                yield record

    async def experiment_leads(self) -> AsyncIterator[dict[str, str]]:
        async for record in self._indexed(EXPERIMENT_KEY):
            yield record

    async def _indexed(self, index: str) -> AsyncIterator[dict[str, str]]:
        """The records an index names, in its order, with their lead_id; one a retraction, a
        scrub or the retention removed since it was indexed is skipped."""
        start = 0
        try:
            while True:
                ids = await self._client.zrange(index, start, start + EXPORT_BATCH - 1)
                if not ids:
                    return
                async with self._client.pipeline(transaction=False) as pipe:
                    for lead_id in ids:
                        pipe.hgetall(lead_key(_text(lead_id)))
                    records = await pipe.execute()
                for lead_id, record in zip(ids, records, strict=True):
                    if record:
                        yield {"lead_id": _text(lead_id)} | record
                start += EXPORT_BATCH
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def guard_leads(self, *, since: float, until: float) -> AsyncIterator[dict[str, str]]:
        start = 0
        try:
            while True:
                ids = await self._client.zrangebyscore(
                    GUARD_KEY, since, until, start=start, num=EXPORT_BATCH
                )
                if not ids:
                    return
                async with self._client.pipeline(transaction=False) as pipe:
                    for lead_id in ids:
                        pipe.hmget(lead_key(_text(lead_id)), list(GUARD_FIELDS))
                    records = await pipe.execute()
                for values in records:
                    found = {
                        name: _text(value)
                        for name, value in zip(GUARD_FIELDS, values, strict=True)
                        if value is not None
                    }
                    if found:  # a record erased, scrubbed or expired since is skipped
                        yield found
                if len(ids) < EXPORT_BATCH:
                    return
                start += EXPORT_BATCH
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def trim_indexes(self) -> int:
        # An id is old enough to check once its record's TTL could have run out: the outcome
        # index is scored by the outcome's time, the experiment and guard indexes by the lead's.
        removed = 0
        for index, seconds in (
            (OUTCOMES_KEY, self._keep.outcome_seconds),
            (EXPERIMENT_KEY, self._keep.lead_seconds),
            (GUARD_KEY, self._keep.lead_seconds),
        ):
            if seconds > 0:
                removed += await self._trim(index, before=time.time() - seconds)
        return removed

    async def _trim(self, index: str, *, before: float) -> int:
        """Remove from `index` the ids scored before `before` whose records are gone, at most
        TRIM_BATCH per round trip. Ids of records still there (an experiment lead with an
        outcome) are skipped past, not removed."""
        removed = kept = 0
        try:
            while True:
                ids = [
                    _text(i)
                    for i in await self._client.zrangebyscore(
                        index, "-inf", before, start=kept, num=retention.TRIM_BATCH
                    )
                ]
                if not ids:
                    return removed
                async with self._client.pipeline(transaction=False) as pipe:
                    for lead_id in ids:
                        pipe.exists(lead_key(lead_id))
                    found = await pipe.execute()
                gone = [i for i, n in zip(ids, found, strict=True) if not n]
                if gone:
                    # Not one step with the EXISTS (the records are on other slots): a lead
                    # stored again under its id and labelled in between is left unindexed.
                    await self._client.zrem(index, *gone)
                removed += len(gone)
                kept += len(ids) - len(gone)
                if len(ids) < retention.TRIM_BATCH:
                    return removed
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
        self.experiment_order: list[str] = []
        self.guard_order: list[tuple[float, str]] = []
        self.column_names: set[str] = set()

    async def save_leads(self, batch: Sequence[LeadWrite]) -> None:
        for write in batch:
            if lead_key(write.lead_id) in self.records:
                continue  # idempotent by lead id, as RedisStore
            self.records[lead_key(write.lead_id)] = dict(write.record)
            if write.experiment:
                self.experiment_order.append(write.lead_id)
            if write.guarded:
                self.guard_order.append((time.time(), write.lead_id))
            self.column_names.update(write.columns)
            if write.message:
                self.memory.setdefault(write.memory, []).append(write.message)

    async def confirm(self, batch: Sequence[LeadWrite], *, retract: bool) -> frozenset[str]:
        found = frozenset(w.lead_id for w in batch if lead_key(w.lead_id) in self.records)
        if retract:
            for write in batch:
                if write.lead_id in found:
                    del self.records[lead_key(write.lead_id)]
                    if write.message:
                        self.memory[write.memory].remove(write.message)
        return found

    async def lead_memory_key(self, lead_id: str, *, tenant: str) -> str | None:
        record = self.records.get(lead_key(lead_id))
        if record is None or record["tenant"] != tenant:
            return None
        return record["chat_key"]

    async def append_message(self, memory: str, message: str) -> None:
        self.memory.setdefault(memory, []).append(message)

    async def erase_lead(self, lead_id: str, *, tenant: str) -> tuple[bool, bool]:
        """(record erased, chat memory erased) for the tenant's lead; dev only."""
        record = self.records.get(lead_key(lead_id))
        if record is None or record.get("tenant") != tenant:
            return False, False
        del self.records[lead_key(lead_id)]
        self.outcome_order.pop(lead_id, None)
        return True, self.memory.pop(record.get("chat_key", ""), None) is not None

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> Outcome | None:
        record = self.records.get(lead_key(lead_id))
        if record is None or record.get("tenant") != tenant:
            return None
        record["converted"] = str(int(converted))
        record["outcome_at"] = repr(at)
        self.outcome_order[lead_id] = at
        return Outcome(experiment=record.get("experiment", ""), variant=record.get("variant", ""))

    async def columns(self) -> list[str]:
        return sorted(self.column_names)

    async def outcomes(self) -> AsyncIterator[dict[str, str]]:
        for lead_id in sorted(self.outcome_order, key=self.outcome_order.__getitem__):
            record = self.records.get(lead_key(lead_id))
            if record is not None:
                yield {"lead_id": lead_id} | record

    async def guard_leads(self, *, since: float, until: float) -> AsyncIterator[dict[str, str]]:
        for at, lead_id in list(self.guard_order):
            record = self.records.get(lead_key(lead_id))
            if record is not None and since <= at <= until:
                yield {name: record[name] for name in GUARD_FIELDS if name in record}

    async def experiment_leads(self) -> AsyncIterator[dict[str, str]]:
        for lead_id in list(self.experiment_order):
            record = self.records.get(lead_key(lead_id))
            if record is not None:
                yield {"lead_id": lead_id} | record

    async def trim_indexes(self) -> int:
        return 0  # nothing expires in process memory

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
