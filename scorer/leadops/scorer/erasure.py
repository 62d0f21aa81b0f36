"""Right to erasure (`DELETE /v1/lead/{lead_id}`) and the follow-ups' state (`GET /ops/followups`).

Erasing a lead removes, for the caller's tenant only: the lead record and its place in the
outcome index, its chat memory list, its sealed contact in the follow-ups vault and every
follow-up still scheduled for it (a follow-up already on the stream finds no contact and is
counted `expired`, never sent). Erasing twice erases nothing the second time (idempotent).
Each erasure is audited in the `leadops:audit` stream and the log by the lead's keyed hash and
the tenant: no lead id, no contact data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import RedisError
from redis.typing import EncodableT

from leadops.followups import keys as fu_keys
from leadops.pii import chat_keys
from leadops.scorer import store

logger = logging.getLogger("leadops.audit")

AUDIT_STREAM = "leadops:audit"
AUDIT_MAXLEN = 100_000
SCAN_BATCH = 500

# The record, its outcome index entry and its chat memory, only if the tenant owns it: one step.
_ERASE_RECORD = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return {0, 0} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local memory = 0
if KEYS[3] ~= '' then memory = redis.call('DEL', KEYS[3]) end
return {1, memory}
"""


# Redis Cluster: the record, the index and the chat list are on three slots. The record goes
# last, by a script that checks the tenant again: until it is gone a retried erasure still
# finds the chat list's name in it, so a failure part-way is finished by the retry.
_ERASE_OWNED = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


async def _erase_record_per_slot(
    client: AsyncRedisCluster, lead_id: str, tenant: str, memory: str
) -> tuple[int, int]:
    if await client.hget(store.lead_key(lead_id), "tenant") != tenant:
        return 0, 0  # not the tenant's lead (or no such lead): nothing of it is touched
    memory_deleted = int(await client.delete(memory)) if memory else 0
    await client.zrem(store.OUTCOMES_KEY, lead_id)
    found = int(await client.eval(_ERASE_OWNED, 1, store.lead_key(lead_id), tenant))
    return found, memory_deleted


@dataclass(frozen=True, slots=True)
class Erased:
    record: bool
    chat_memory: bool
    contact: bool
    follow_ups: int


def lead_ref(tenant: str, lead_id: str) -> str:
    """The lead's name in the follow-ups' keys (leadops.followups.keys.Keys.lead_ref)."""
    return chat_keys.keyed_hash(chat_keys.process_salt(), "lead", tenant, lead_id)


async def _memory_key(client: aioredis.Redis, lead_id: str, tenant: str) -> str:
    owner, chat, chat_id = await client.hmget(
        store.lead_key(lead_id), ["tenant", "chat_key", "chat_id"]
    )
    if owner is None or str(owner) != tenant:
        return ""
    if chat is not None:
        return str(chat)
    return "" if chat_id is None else store.memory_key(tenant, str(chat_id))


async def _cancel_scheduled(client: aioredis.Redis, tenant: str, ref: str) -> int:
    """Remove the lead's scheduled follow-ups (a job names its lead by `ref`, never its id)."""
    needle = f'"lead":"{ref}"'
    cancelled = 0
    async for job, _ in client.zscan_iter(fu_keys.SCHEDULED, match=f"*{needle}*", count=SCAN_BATCH):
        text = job.decode() if isinstance(job, bytes) else str(job)
        if f'"tenant":"{tenant}"' in text:
            cancelled += int(await client.zrem(fu_keys.SCHEDULED, job))
    return cancelled


async def erase_lead(client: aioredis.Redis, lead_id: str, *, tenant: str) -> Erased:
    """Erase everything LeadOps holds about the tenant's lead; StoreUnavailable on Redis errors."""
    ref = lead_ref(tenant, lead_id)
    try:
        memory = await _memory_key(client, lead_id, tenant)
        if isinstance(client, AsyncRedisCluster):
            found, memory_deleted = await _erase_record_per_slot(client, lead_id, tenant, memory)
        else:
            script = client.register_script(_ERASE_RECORD)
            found, memory_deleted = await script(
                keys=[store.lead_key(lead_id), store.OUTCOMES_KEY, memory], args=[tenant, lead_id]
            )
        contact = bool(await client.delete(fu_keys.Keys.contact(tenant, ref)))
        await client.hdel(fu_keys.Keys.replies(tenant), ref)
        # The reply-token record of its e-mail follow-up (the scorer schedules step 1): a
        # later reply to that e-mail then belongs to no lead.
        token = fu_keys.Keys(chat_keys.process_salt()).reply_token(tenant, ref, "1")
        await client.delete(fu_keys.Keys.reply(tenant, token))
        follow_ups = await _cancel_scheduled(client, tenant, ref)
        erased = Erased(bool(found), bool(memory_deleted), contact, follow_ups)
        entry: dict[EncodableT, EncodableT] = {
            "action": "erase", "tenant": tenant, "lead": ref, "at": f"{time.time():.3f}"
        }  # fmt: skip
        entry |= {k: int(v) for k, v in asdict(erased).items()}
        await client.xadd(
            AUDIT_STREAM,
            entry,
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )
    except (RedisError, OSError) as exc:
        raise store.StoreUnavailable(type(exc).__name__) from exc
    logger.info(
        "Erased lead %s of tenant %s: record=%s chat_memory=%s contact=%s follow_ups=%d",
        ref, tenant, erased.record, erased.chat_memory, erased.contact, erased.follow_ups,
    )  # fmt: skip
    return erased


async def replied_at(client: aioredis.Redis, leads: list[tuple[str, str]]) -> list[str]:
    """When each (tenant, lead id) first replied to a follow-up (unix seconds), "" if never;
    StoreUnavailable on Redis errors."""
    refs = [lead_ref(tenant, lead_id) for tenant, lead_id in leads]
    by_tenant: dict[str, list[int]] = {}
    for i, (tenant, _) in enumerate(leads):
        by_tenant.setdefault(tenant, []).append(i)
    out = [""] * len(leads)
    try:
        for tenant, rows in by_tenant.items():
            found = await client.hmget(fu_keys.Keys.replies(tenant), [refs[i] for i in rows])
            for i, value in zip(rows, found, strict=True):
                out[i] = "" if value is None else str(value)
    except (RedisError, OSError) as exc:
        raise store.StoreUnavailable(type(exc).__name__) from exc
    return out


# -- GET /ops/followups --------------------------------------------------------------------

RATES = {  # rate name -> (numerator outcome, denominator outcome)
    "delivery_rate": ("delivered", "sent"),
    "failure_rate": ("failed", "sent"),
    "bounce_rate": ("bounced", "sent"),
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "reply_rate": ("replied", "sent"),
}


def _rates(counts: dict[str, int]) -> dict[str, float | None]:
    return {
        name: (round(counts.get(top, 0) / counts[bottom], 4) if counts.get(bottom) else None)
        for name, (top, bottom) in RATES.items()
    }


async def _queue(client: aioredis.Redis) -> dict[str, int]:
    scheduled = int(await client.zcard(fu_keys.SCHEDULED))
    dead = int(await client.xlen(fu_keys.DEAD_LETTER))
    due = pending = 0
    try:
        groups: list[dict[str, Any]] = await client.xinfo_groups(fu_keys.STREAM)
    except aioredis.ResponseError:  # no stream yet: nothing was ever due
        groups = []
    for group in groups:
        if str(group.get("name")) == fu_keys.GROUP:
            due, pending = int(group.get("lag") or 0), int(group.get("pending") or 0)
    return {"scheduled": scheduled, "due": due, "in_flight": pending, "dead_lettered": dead}


async def followups_status(client: aioredis.Redis) -> dict[str, Any]:
    """Queue depth, dead letters and per-tenant, per-channel counts with their rates."""
    try:
        queue = await _queue(client)
        tenants: dict[str, Any] = {}
        for tenant in sorted(str(t) for t in await client.smembers(fu_keys.STATS_TENANTS)):
            raw = await client.hgetall(fu_keys.Keys.stats(tenant))
            channels: dict[str, dict[str, int]] = {}
            for field, value in raw.items():
                channel, _, outcome = str(field).partition(":")
                channels.setdefault(channel, {})[outcome] = int(value)
            tenants[tenant] = {
                channel: {"counts": dict(sorted(counts.items())), "rates": _rates(counts)}
                for channel, counts in sorted(channels.items())
            }
    except (RedisError, OSError) as exc:
        raise store.StoreUnavailable(type(exc).__name__) from exc
    return {"queue": queue, "tenants": tenants}
