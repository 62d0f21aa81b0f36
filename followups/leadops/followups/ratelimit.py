"""Per-tenant send rate limits that hold at the provider, in every 1-second window.

A sliding log in Redis (one sorted set per tenant, atomic in Lua): a send takes a slot only
if fewer than `limit` slots lie in the last window. A slot is stamped far in the future
while its request is in flight and restamped with the time the provider answered, so the
next slot opens one window after the previous request *finished*; request latency can then
never squeeze two sends into one window at the provider. Shared by every worker replica.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from leadops.followups.keys import Keys

# KEYS[1] the tenant's log; ARGV: now, window, limit, slot, in-flight stamp.
# Returns 0 when the slot was taken, else seconds (as a string) until one may open.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[5]) - tonumber(ARGV[1])
    + tonumber(ARGV[2])) * 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
"""


class RateLimitTimeout(Exception):
    """No slot opened within the wait the caller allowed; `retry_in_s`: when one may."""

    def __init__(self, message: str, *, retry_in_s: float) -> None:
        super().__init__(message)
        self.retry_in_s = retry_in_s


class TenantRateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        *,
        window_s: float = 1.0,
        in_flight_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.window_s = window_s
        self.in_flight_s = in_flight_s
        self.clock = clock
        self._take = client.register_script(_TAKE)

    def acquire(self, tenant: str, limit: int, *, max_wait_s: float) -> str:
        """Take a slot (blocking up to `max_wait_s`); returns its token for `release`."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + max_wait_s
        while True:
            now = self.clock()
            wait = float(
                self._take(
                    keys=[Keys.rate(tenant)],
                    args=[now, self.window_s, limit, token, now + self.in_flight_s],
                )
            )
            if wait <= 0:
                return token
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeout(f"tenant {tenant!r} over its rate limit", retry_in_s=wait)
            time.sleep(min(max(wait, 0.001), 0.05))

    def release(self, tenant: str, token: str) -> None:
        """The provider answered: the slot counts from now."""
        self.client.zadd(Keys.rate(tenant), {token: self.clock()}, xx=True)
