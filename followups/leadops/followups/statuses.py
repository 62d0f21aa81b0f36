"""Delivery statuses from provider callbacks: deduplicated on (message id, status), and never
moved backwards: callbacks arrive out of order, and a terminal state (failed, undelivered,
bounced, dropped) is final."""

from __future__ import annotations

from typing import Final, Literal

import redis

from leadops.followups import metrics
from leadops.followups.keys import Keys

Verdict = Literal["recorded", "duplicate", "stale", "unknown"]

# Progress of a message that is still going well; higher never yields to lower.
RANK: Final = {
    "accepted": 0, "queued": 0, "scheduled": 0, "processed": 0, "sending": 1, "sent": 2,
    "deferred": 2, "delivered": 3, "read": 4, "open": 4, "click": 5,
}  # fmt: skip
TERMINAL: Final = frozenset({"failed", "undelivered", "bounce", "bounced", "dropped"})
# What each provider status counts as in the follow-up metrics (others are not counted).
OUTCOMES: Final[dict[str, metrics.Outcome]] = {
    "delivered": "delivered", "failed": "failed", "undelivered": "failed", "dropped": "failed",
    "bounce": "bounced", "bounced": "bounced", "open": "opened", "read": "opened",
    "click": "clicked",
}  # fmt: skip

# KEYS: message hash, seen set. ARGV: status, its rank (-1 terminal), ttl, tenant.
_RECORD = """
local tenant = redis.call('HGET', KEYS[1], 'tenant')
if (not tenant) or tenant ~= ARGV[4] then return {'unknown', '', ''} end
local channel = redis.call('HGET', KEYS[1], 'channel')
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {'duplicate', tenant, channel} end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
local current = redis.call('HGET', KEYS[1], 'status')
local current_rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if redis.call('HGET', KEYS[1], 'terminal') == '1' then return {'stale', tenant, channel} end
local rank = tonumber(ARGV[2])
if rank < 0 then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'terminal', '1')
  return {'recorded', tenant, channel}
end
if rank > current_rank or current == 'accepted' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2])
  return {'recorded', tenant, channel}
end
return {'stale', tenant, channel}
"""


class StatusBook:
    def __init__(self, client: redis.Redis, *, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._record = client.register_script(_RECORD)

    def record(self, message_id: str, status: str, *, tenant: str) -> Verdict:
        """Apply one callback of `tenant`; a message of another tenant counts as unknown."""
        status = status.lower()
        rank = -1 if status in TERMINAL else RANK.get(status, 0)
        verdict, owner, channel = (
            _text(v)
            for v in self._record(
                keys=[Keys.message(message_id), Keys.seen(message_id)],
                args=[status, rank, self.ttl_s, tenant],
            )
        )
        if verdict == "unknown":
            return "unknown"
        outcome = OUTCOMES.get(status)
        engagement = status in ("open", "read", "click")
        if outcome and (verdict == "recorded" or (engagement and verdict == "stale")):
            metrics.count(owner, channel, outcome)
            with self.client.pipeline(transaction=True) as tx:
                metrics.tally(tx, owner, channel, outcome)
                tx.execute()
        return "recorded" if verdict == "recorded" else verdict  # type: ignore[return-value]

    def status(self, message_id: str) -> str | None:
        value = self.client.hget(Keys.message(message_id), "status")
        return None if value is None else _text(value)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
