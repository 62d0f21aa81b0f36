"""The lead store on a Redis Cluster (`LEADOPS_REDIS_MODE=cluster`).

The layout is the standalone store's (leadops.scorer.store): a lead's record, its chat memory
list, the outcome index and the columns set each hash to their own slot, and a Lua script may
only touch keys of one slot (unless flagged, Redis >= 7, and then of one node). So each script
covers one slot or one master, and what held in one step on one node holds per slot:

- a batch is one pipelined round trip (each master gets its share at once, see
  leadops.scorer.cluster_send): per master of lead records (per slot on Redis < 7, or for the
  leads of a slot that moved), one script writes the records that do not exist yet
  (idempotent by lead id, refused past the deadline); per slot of chat lists, one script
  pushes each lead's first
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

Batches go to the masters on a connection each (leadops.scorer.cluster_send); whatever a master
did not answer, and every other command, goes through redis-py's RedisCluster, which follows
MOVED, ASK and a failover (it refreshes the slot map and retries on the new master).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from leadops import redis_mode
from leadops.scorer import cluster_send, retention, store

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
# The same on one master for leads of any slot it serves (Redis >= 7: the shebang's flag lets a
# script reach keys of several slots of its node; the keys go in ARGV, so the node that gets
# it runs it). ARGV[1..3] as above, ARGV[3 + i]: the i-th lead's hash. Every key is read
# before any is written: a key this master does not serve (the slot map moved) fails the
# script there, having written nothing, and the caller sends those leads slot by slot.
_SAVE_RECORDS_ON_MASTER = f"""#!lua flags=allow-cross-slot-keys
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then
  return -1
end
local slice = {store.UNPACK_SLICE}
local leads = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[3])
local fresh = {{}}
for i = 1, #leads do fresh[i] = redis.call('EXISTS', ARGV[3 + i]) == 0 end
local written = 0
for i, fields in ipairs(leads) do
  if fresh[i] then
    local key = ARGV[3 + i]
    for j = 1, #fields, slice do
      redis.call('HSET', key, unpack(fields, j, math.min(j + slice - 1, #fields)))
    end
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"""
# KEYS: the chat lists of one slot. ARGV[1]: deadline; ARGV[2]: marker TTL (s); ARGV[3]: the
# lists' TTL (s; 0: none); ARGV[4]: JSON array of [list's index in KEYS, marker, message], the
# markers on the lists' slot (undeclared keys of the declared slot: one argument for the whole
# group, not three a lead). A message is pushed only if its marker is not set, and the marker is
# set only once it is (a push refused, say WRONGTYPE, is tried again on retry). A list's TTL is
# set once a script, after its first push.
_PUSH_FIRST = """
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then
  return -1
end
local pushed = 0
local expiring = {}
for _, item in ipairs(cjson.decode(ARGV[4])) do
  if redis.call('EXISTS', item[2]) == 0 then
    local list = KEYS[item[1]]
    redis.call('RPUSH', list, item[3])
    -- Right after its first push here: a push that fails later leaves no list without its TTL.
    if ARGV[3] ~= '0' and not expiring[list] then
      redis.call('EXPIRE', list, ARGV[3])
      expiring[list] = true
    end
    redis.call('SET', item[2], '1', 'EX', ARGV[2])
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


@dataclass(frozen=True)
class _Write:
    """A command of a batch, the batch indexes it stores (none: it stores no lead alone) and
    whether it is one master's records script (retried slot by slot when it fails)."""

    key: str  # its slot's master runs it
    command: tuple[Any, ...]
    stores: list[int]
    records_of_master: bool = False


def _check(batch: Sequence[store.LeadWrite], answered: Sequence[tuple[list[int], Any]]) -> None:
    """Raise StoreUnavailable when no lead was stored, PartlyWritten when some were; a reply
    that failed (or came past the deadline) fails the leads it stores, or all of them."""
    failed: set[int] = set()
    first_error = ""
    for indexes, reply in answered:
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


class ClusterStore(store.RedisStore):
    """RedisStore on a Redis Cluster: every script keeps to one hash slot."""

    def __init__(
        self, url: str, *, timeout: float, keep: retention.Retention = retention.KEEP_FOREVER
    ) -> None:
        super().__init__(url, timeout=timeout, keep=keep)
        # RedisStore types its client as the standalone one; _connect made a RedisCluster.
        self._masters = cluster_send.MasterConnections(
            cast(RedisCluster, self._client), timeout=timeout
        )
        # One script per master while the server takes script flags (Redis >= 7).
        self._cross_slot = True

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

    def _messages(
        self, batch: Sequence[store.LeadWrite]
    ) -> tuple[list[tuple[int, str, str]], list[int]]:
        """(index in batch, chat list, marker) of each lead with a first message, and the
        indexes of those whose list takes no marker (their message is pushed unguarded)."""
        guarded: list[tuple[int, str, str]] = []
        unguarded: list[int] = []
        for i, write in enumerate(batch):
            if write.message:
                marker = marker_key(write.memory, write.lead_id)
                if marker is None:
                    unguarded.append(i)
                else:
                    guarded.append((i, write.memory, marker))
        return guarded, unguarded

    def _save_records(
        self, batch: Sequence[store.LeadWrite], indexes: list[int], deadline: int, *,
        on_master: bool,
    ) -> _Write:  # fmt: skip
        """The command that writes these leads' records: one script for leads of one master
        (`on_master`, keys in ARGV) or of one slot (keys declared)."""
        keys = [store.lead_key(batch[i].lead_id) for i in indexes]
        fields = json.dumps(
            [[item for pair in batch[i].record.items() for item in pair] for i in indexes],
            ensure_ascii=False,
        )
        ttl = self._keep.lead_seconds
        if on_master:
            script = ("EVAL", _SAVE_RECORDS_ON_MASTER, 0, deadline, fields, ttl, *keys)
            return _Write(keys[0], script, indexes, records_of_master=True)
        return _Write(keys[0], ("EVAL", _SAVE_RECORDS, len(keys), *keys, deadline, fields, ttl),
                      indexes)  # fmt: skip

    async def _record_writes(self, batch: Sequence[store.LeadWrite], deadline: int) -> list[_Write]:
        """One script per master (per slot where the master is not known, or Redis < 7)."""
        every = list(range(len(batch)))
        groups = (
            await self._masters.by_master([store.lead_key(w.lead_id) for w in batch])
            if self._cross_slot
            else {cluster_send.UNKNOWN_MASTER: every}
        )
        writes = [
            self._save_records(batch, indexes, deadline, on_master=True)
            for master, indexes in groups.items()
            if master != cluster_send.UNKNOWN_MASTER
        ]
        unknown = groups.get(cluster_send.UNKNOWN_MASTER, [])
        return writes + self._per_slot(batch, unknown, deadline)

    def _per_slot(
        self, batch: Sequence[store.LeadWrite], indexes: list[int], deadline: int
    ) -> list[_Write]:
        slots = _by_slot([store.lead_key(batch[i].lead_id) for i in indexes]).values()
        return [
            self._save_records(batch, [indexes[i] for i in part], deadline, on_master=False)
            for part in slots
        ]

    def _other_writes(self, batch: Sequence[store.LeadWrite], deadline: int) -> list[_Write]:
        """The first messages (per slot), the columns, the experiment and guard indexes."""
        keep = self._keep.lead_seconds
        writes = []
        messages, unguarded = self._messages(batch)
        for group in _by_slot([memory for _, memory, _ in messages]).values():
            pairs = [messages[g] for g in group]
            lists = list(dict.fromkeys(memory for _, memory, _ in pairs))
            at = {memory: n for n, memory in enumerate(lists, start=1)}  # Lua counts from 1
            items = [[at[memory], marker, batch[i].message] for i, memory, marker in pairs]
            script = ("EVAL", _PUSH_FIRST, len(lists), *lists, deadline, MARKER_TTL_SECONDS, keep)
            pushes = json.dumps(items, ensure_ascii=False)
            writes.append(_Write(lists[0], (*script, pushes), [i for i, _, _ in pairs]))
        for i in unguarded:
            w = batch[i]
            script = ("EVAL", store.APPEND_MESSAGE, 1, w.memory, w.message, keep)
            writes.append(_Write(w.memory, script, []))
        columns = sorted({c for write in batch for c in write.columns})
        if columns:
            writes.append(_Write(store.COLUMNS_KEY, ("SADD", store.COLUMNS_KEY, *columns), []))
        now = time.time()
        scored = [item for w in batch if w.experiment for item in (now, w.lead_id)]
        if scored:
            zadd = ("ZADD", store.EXPERIMENT_KEY, "NX", *scored)
            writes.append(_Write(store.EXPERIMENT_KEY, zadd, []))
        guarded = [item for w in batch if w.guarded for item in (now, w.lead_id)]
        if guarded:  # shadow-scored for the matured-AUC guard
            writes.append(_Write(store.GUARD_KEY, ("ZADD", store.GUARD_KEY, "NX", *guarded), []))
        return writes

    async def save_leads(self, batch: Sequence[store.LeadWrite]) -> None:
        deadline = int((time.time() + store.DEADLINE_SHARE * self._timeout) * 1000)
        try:
            writes = await self._record_writes(batch, deadline)
        except (RedisError, OSError) as exc:  # no slot map: the cluster is not reachable
            raise store.StoreUnavailable(type(exc).__name__) from exc
        writes += self._other_writes(batch, deadline)
        replies = await self._masters.send([(w.key, w.command) for w in writes])
        # What a master did not answer goes again through the cluster client (which follows
        # redirects and failovers), a master's records slot by slot.
        answered = [(w.stores, r) for w, r in zip(writes, replies, strict=True)]
        again: list[_Write] = []
        for write, reply in zip(writes, replies, strict=True):
            if not isinstance(reply, Exception):
                continue
            if not write.records_of_master:
                again.append(write)
                continue
            if "compiling script" in str(reply):  # Redis < 7 knows no script flags
                self._cross_slot = False
            again += self._per_slot(batch, write.stores, deadline)
        retried = await self._masters.through_cluster([w.command for w in again])
        answered = [(i, r) for i, r in answered if not isinstance(r, Exception)]
        answered += [(w.stores, r) for w, r in zip(again, retried, strict=True)]
        _check(batch, answered)

    async def confirm(self, batch: Sequence[store.LeadWrite], *, retract: bool) -> frozenset[str]:
        flag = "1" if retract else "0"
        records = [store.lead_key(write.lead_id) for write in batch]
        messages, _ = self._messages(batch)  # an unguarded push cannot be looked up
        commands: list[cluster_send.Command] = []
        record_groups = list(_by_slot(records).values())
        for indexes in record_groups:
            keys = [records[i] for i in indexes]
            commands.append((keys[0], ("EVAL", _FIND_RECORDS, len(keys), *keys, flag)))
        message_groups = list(_by_slot([m for _, m, _ in messages]).values())
        for group in message_groups:
            pairs = [messages[g] for g in group]
            keys = [key for _, memory, marker in pairs for key in (memory, marker)]
            texts = [batch[i].message or "" for i, _, _ in pairs]
            commands.append((keys[0], ("EVAL", _FIND_FIRST, len(keys), *keys, flag, *texts)))
        replies = await self._masters.send(commands)
        again = [at for at, reply in enumerate(replies) if isinstance(reply, Exception)]
        retried = await self._masters.through_cluster([commands[at][1] for at in again])
        for at, reply in zip(again, retried, strict=True):
            replies[at] = reply
        failure = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failure is not None:  # what is stored must be known for every lead, or none
            raise store.StoreUnavailable(type(failure).__name__) from failure
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

    async def close(self) -> None:
        await self._masters.close()
        await super().close()

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
