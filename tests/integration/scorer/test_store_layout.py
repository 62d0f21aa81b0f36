"""The Redis store's batch write leaves exactly the layout the previous write left.

The batch now travels as one JSON argument; the reference below is the previous Lua call (two
arguments per lead). Both write the same leads to a real redis-server; every key must DUMP to
the same bytes (same fields, values, order and encoding), so the backfill and the export read
the same records.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from leadops.scorer import store

pytestmark = pytest.mark.redis

# The previous write, verbatim: KEYS columns set, then (lead hash, memory list) per lead;
# ARGV n, then (record as flat JSON, message or "") per lead, then columns.
_PREVIOUS_SAVE_LEADS = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local fields = cjson.decode(ARGV[2 * i])
  redis.call('HSET', KEYS[2 * i], unpack(fields))
  local message = ARGV[2 * i + 1]
  if message ~= '' then redis.call('RPUSH', KEYS[2 * i + 1], message) end
end
if #ARGV > 2 * n + 1 then
  redis.call('SADD', KEYS[1], unpack(ARGV, 2 * n + 2))
end
return n
"""


def _previous_save(client: redis.Redis, batch: list[store.LeadWrite]) -> None:
    columns = sorted({c for write in batch for c in write.columns})
    keys: list[str] = [store.COLUMNS_KEY]
    args: list[str | int] = [len(batch)]
    for write in batch:
        keys += [store.lead_key(write.lead_id), write.memory]
        flat = [item for pair in write.record.items() for item in pair]
        args += [json.dumps(flat, ensure_ascii=False), write.message or ""]
    args += columns
    client.register_script(_PREVIOUS_SAVE_LEADS)(keys=keys, args=args)


def _batch() -> list[store.LeadWrite]:
    writes = []
    for i, (details, tenant, extra) in enumerate(
        [
            ("price quote please", "default", {}),
            ("", "acme", {"attr_plan": "pro"}),  # no message: no memory list
            ('Grüße, 東京 \u00e9 "quoted" \\ back\nslash [PHONE]', "acme", {"attr_visits": "7"}),
            ("second message in the same chat", "acme", {}),
        ]
    ):
        lead_id = f"{i:032x}"
        chat = "shared-chat" if i >= 2 else lead_id
        row = {"details": details, "source": "web", "tenant": tenant, "has_email": "1"} | extra
        record = row | {"score": repr(0.1 * (i + 1)), "model_version": "1700000000"}
        writes.append(
            store.LeadWrite(
                lead_id=lead_id,
                record=record | {"chat_key": store.memory_key(tenant, chat)},
                columns=list(row),
                memory=store.memory_key(tenant, chat),
                message=details or None,
            )
        )
    return writes


def _snapshot(client: redis.Redis) -> dict[bytes | str, bytes]:
    dumped: dict[bytes | str, bytes] = {}
    for key in sorted(client.keys("*")):
        value = client.dump(key)
        assert isinstance(value, bytes)
        dumped[key] = value
    return dumped


def test_a_batch_is_stored_byte_for_byte_as_before(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    batch = _batch()
    _previous_save(client, batch)
    before = _snapshot(client)
    client.flushdb()

    async def save() -> None:
        current = store.RedisStore(redis_url, timeout=2.0)
        try:
            await current.save_leads(batch)
        finally:
            await current.close()

    asyncio.run(save())
    after = _snapshot(client)
    assert after == before
    # And the layout is the documented one (a check that the comparison compared something).
    assert len(before) == 1 + 4 + 2  # columns set, 4 lead hashes, 2 memory lists (one shared)
    text = redis.Redis.from_url(redis_url, decode_responses=True)
    assert text.lrange(store.memory_key("acme", "shared-chat"), 0, -1) == [
        batch[2].message,
        batch[3].message,
    ]
    assert text.hgetall("lead:" + "2".zfill(32))["details"] == batch[2].record["details"]
    assert text.exists(store.memory_key("acme", "1".zfill(32))) == 0
