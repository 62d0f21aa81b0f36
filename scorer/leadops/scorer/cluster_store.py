"""The lead store on a Redis Cluster (`LEADOPS_REDIS_MODE=cluster`).

The layout is the standalone store's (leadops.scorer.store): a lead's record, its chat memory
list, the outcome index and the columns set each hash to their own slot, and a Lua script may
only touch keys of one slot. So each script covers one slot, and what held in one step on one
node holds per slot:

- a batch is one pipelined round trip (redis-py sends each node its share at once): per slot
  of lead records, one script writes the records that do not exist yet (idempotent by lead
  id, refused past the deadline); per slot of chat lists, one script pushes each lead's first
  message once, guarded by a marker key on the list's slot (`leadops:first:{LIST}:LEAD`,
  kept MARKER_TTL_SECONDS), so a retried batch never pushes it twice; the columns go in by
  SADD, experiment and guarded leads by ZADD NX (all idempotent). A lead is stored once its
  record and its message are: a batch that failed on one node is retried for the leads not yet
  stored, and their 503 retracts the record and the message both;
- an outcome is set by a script on the record's slot (the tenant check, the label and the
  record's outcome TTL, one step), then the lead goes into the outcome index (ZADD,
  idempotent: a retried outcome that failed between the two indexes it then);
- retention: each script that writes a record or a chat list sets its TTL on that key, so TTLs
  keep to the slot of their key; the index trim (store.RedisStore.trim_indexes) reads the
  index on its slot and the records on theirs, and removes only ids whose records are gone.

redis-py's RedisCluster routes every command and follows MOVED, ASK and a failover (it
refreshes the slot map and retries on the new master).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from leadops import redis_mode
from leadops.scorer import store

# A retry of the same batch (same lead ids) comes within seconds; the markers need not outlive it.
MARKER_TTL_SECONDS = 86_400
# How many times redis-py retries a command through a failover (it refreshes the slot map
# between tries): enough for a replica to take over (cluster-node-timeout plus an election).
CLUSTER_RETRIES = 3

# KEYS: lead hashes of one slot. ARGV[1]: deadline (ms, Redis's clock); ARGV[2]: JSON array of
# each lead's [field, value, ...]; ARGV[3]: TTL (s; 0: none). Returns -1 past the deadline,
# else the number written.
_SAVE_RECORDS = f"""
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then
  return -1
end
local slice = {store.UNPACK_SLICE}
local leads = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[3])
local written = 0
for i, fields in ipairs(leads) do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    for j = 1, #fields, slice do
      redis.call('HSET', KEYS[i], unpack(fields, j, math.min(j + slice - 1, #fields)))
    end
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    written = written + 1
  end
end
return written
"""
# KEYS: (chat list, its marker) pairs of one slot. ARGV[1]: deadline; ARGV[2]: marker TTL (s);
# ARGV[3]: the list's TTL (s; 0: none); ARGV[3 + i]: the i-th pair's message. A message is
# pushed only if its marker is not set, and the marker is set only once it is (a push
# refused, say WRONGTYPE, is tried again on retry).
_PUSH_FIRST = """
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then
  return -1
end
local pushed = 0
for i = 1, #KEYS / 2 do
  if redis.call('EXISTS', KEYS[2 * i]) == 0 then
    redis.call('RPUSH', KEYS[2 * i - 1], ARGV[3 + i])
    if ARGV[3] ~= '0' then redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[3]) end
    redis.call('SET', KEYS[2 * i], '1', 'EX', ARGV[2])
    pushed = pushed + 1
  end
end
return pushed
"""
# KEYS: lead hashes of one slot; with ARGV[1] == '1', those found are deleted. Returns 0/1 each.
_FIND_RECORDS = """
local found = {}
for i = 1, #KEYS do
  found[i] = redis.call('EXISTS', KEYS[i])
  if found[i] == 1 and ARGV[1] == '1' then redis.call('DEL', KEYS[i]) end
end
return found
"""
# KEYS: (chat list, marker) pairs of one slot; ARGV[1] == '1' retracts; ARGV[1 + i]: message.
# Returns 0/1 per pair: was the message pushed (its marker set)?
_FIND_FIRST = """
local found = {}
for i = 1, #KEYS / 2 do
  found[i] = redis.call('EXISTS', KEYS[2 * i])
  if found[i] == 1 and ARGV[1] == '1' then
    redis.call('LREM', KEYS[2 * i - 1], -1, ARGV[1 + i])
    redis.call('DEL', KEYS[2 * i])
  end
end
return found
"""
# The tenant check, the label and the outcome TTL (ARGV[4] s; 0: until erased) on the record's
# slot (KEYS[1]); the index is a ZADD after.
_SET_OUTCOME = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[3] then return false end
redis.call('HSET', KEYS[1], 'converted', ARGV[1], 'outcome_at', ARGV[2])
if ARGV[4] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
local bucket = redis.call('HMGET', KEYS[1], 'experiment', 'variant')
return {bucket[1] or '', bucket[2] or ''}
"""


def marker_key(memory: str, lead_id: str) -> str | None:
    """The key saying `lead_id`'s first message is in `memory`, on `memory`'s slot; None for a
    list name no hash tag can follow (then the message is pushed unguarded)."""
    tag = redis_mode.same_slot_tag(memory)
    return None if tag is None else f"leadops:first:{tag}:{lead_id}"


def _by_slot(keys: Sequence[str]) -> dict[int, list[int]]:
    """Indexes of `keys`, grouped by hash slot (in order)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[redis_mode.slot(key)].append(index)
    return groups


class ClusterStore(store.RedisStore):
    """RedisStore on a Redis Cluster: every script keeps to one hash slot."""

    @staticmethod
    def _connect(url: str, *, timeout: float) -> Any:
        return RedisCluster.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), CLUSTER_RETRIES),
        )

    def _messages(self, batch: Sequence[store.LeadWrite]) -> list[tuple[int, str, str]]:
        """(index in batch, chat list, marker) of each lead with a first message."""
        return [
            (i, write.memory, marker)
            for i, write in enumerate(batch)
            if write.message and (marker := marker_key(write.memory, write.lead_id)) is not None
        ]

    async def save_leads(self, batch: Sequence[store.LeadWrite]) -> None:
        deadline = int((time.time() + store.DEADLINE_SHARE * self._timeout) * 1000)
        records = [store.lead_key(write.lead_id) for write in batch]
        messages = self._messages(batch)
        unguarded = [
            w for w in batch if w.message and marker_key(w.memory, w.lead_id) is None
        ]  # fmt: skip
        # What each reply of the pipeline covers: the batch indexes it stores.
        covers: list[list[int]] = []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for indexes in _by_slot(records).values():
                    fields = [
                        [item for pair in batch[i].record.items() for item in pair] for i in indexes
                    ]
                    pipe.eval(
                        _SAVE_RECORDS,
                        len(indexes),
                        *(records[i] for i in indexes),
                        deadline,
                        json.dumps(fields, ensure_ascii=False),
                        self._keep.lead_seconds,
                    )
                    covers.append(indexes)
                for group in _by_slot([memory for _, memory, _ in messages]).values():
                    pairs = [messages[g] for g in group]
                    pipe.eval(
                        _PUSH_FIRST,
                        2 * len(pairs),
                        *(key for _, memory, marker in pairs for key in (memory, marker)),
                        deadline,
                        MARKER_TTL_SECONDS,
                        self._keep.lead_seconds,
                        *(batch[i].message or "" for i, _, _ in pairs),
                    )
                    covers.append([i for i, _, _ in pairs])
                for write in unguarded:
                    pipe.eval(
                        store.APPEND_MESSAGE,
                        1,
                        write.memory,
                        write.message or "",
                        self._keep.lead_seconds,
                    )
                    covers.append([])
                columns = sorted({c for write in batch for c in write.columns})
                if columns:
                    pipe.sadd(store.COLUMNS_KEY, *columns)
                    covers.append([])
                experiment = [w.lead_id for w in batch if w.experiment]
                if experiment:
                    pipe.zadd(store.EXPERIMENT_KEY, dict.fromkeys(experiment, time.time()), nx=True)
                    covers.append([])
                guarded = [w.lead_id for w in batch if w.guarded]
                if guarded:
                    pipe.zadd(store.GUARD_KEY, dict.fromkeys(guarded, time.time()), nx=True)
                    covers.append([])
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            raise store.StoreUnavailable(type(exc).__name__) from exc
        failed: set[int] = set()
        first_error = ""
        for indexes, reply in zip(covers, replies, strict=True):
            if isinstance(reply, Exception) or reply == -1:
                failed.update(indexes if indexes else range(len(batch)))
                first_error = first_error or (
                    "deadline passed before Redis ran the batch"
                    if reply == -1
                    else type(reply).__name__
                )
        if not failed:
            return
        written = frozenset(w.lead_id for i, w in enumerate(batch) if i not in failed)
        if not written:
            raise store.StoreUnavailable(first_error)
        raise store.PartlyWritten(first_error, written=written)

    async def confirm(self, batch: Sequence[store.LeadWrite], *, retract: bool) -> frozenset[str]:
        flag = "1" if retract else "0"
        records = [store.lead_key(write.lead_id) for write in batch]
        messages = self._messages(batch)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                record_groups = list(_by_slot(records).values())
                for indexes in record_groups:
                    pipe.eval(_FIND_RECORDS, len(indexes), *(records[i] for i in indexes), flag)
                message_groups = list(_by_slot([m for _, m, _ in messages]).values())
                for group in message_groups:
                    pairs = [messages[g] for g in group]
                    pipe.eval(
                        _FIND_FIRST,
                        2 * len(pairs),
                        *(key for _, memory, marker in pairs for key in (memory, marker)),
                        flag,
                        *(batch[i].message or "" for i, _, _ in pairs),
                    )
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise store.StoreUnavailable(type(exc).__name__) from exc
        has_record: set[int] = set()
        for indexes, found in zip(record_groups, replies, strict=False):
            has_record.update(i for i, hit in zip(indexes, found, strict=True) if int(hit))
        missing_message: set[int] = set()
        for group, found in zip(message_groups, replies[len(record_groups) :], strict=True):
            missing_message.update(
                messages[g][0] for g, hit in zip(group, found, strict=True) if not int(hit)
            )
        if retract:  # retracted whatever part was found: the caller was answered 503
            return frozenset(batch[i].lead_id for i in has_record)
        return frozenset(batch[i].lead_id for i in has_record - missing_message)

    async def record_outcome(
        self, lead_id: str, *, converted: bool, at: float, tenant: str
    ) -> store.Outcome | None:
        try:
            done = await self._client.eval(
                _SET_OUTCOME,
                1,
                store.lead_key(lead_id),
                int(converted),
                at,
                tenant,
                self._keep.outcome_seconds,
            )
            if done is None:
                return None
            await self._client.zadd(store.OUTCOMES_KEY, {lead_id: at})
        except (RedisError, OSError) as exc:
            raise store.StoreUnavailable(type(exc).__name__) from exc
        experiment, variant = done
        return store.Outcome(experiment=str(experiment), variant=str(variant))
