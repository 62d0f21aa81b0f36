"""The delivery queue in Redis: due follow-ups in a stream read by a consumer group, later ones
in a sorted set by due time, failures past their last attempt in a dead-letter stream.

A job names its lead by the lead's keyed hash and carries no contact data; the worker opens
the contact from the vault only when it sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

import redis

from leadops.followups import keys

# Moves due jobs from the schedule to the stream in one step, so a job is never in both and
# never in neither (a crash between the two commands is impossible inside a script).
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""


@dataclass(frozen=True, slots=True)
class Job:
    tenant: str
    lead: str  # the lead's keyed hash (Keys.lead_ref), never the lead id as sent
    step: str
    channel: str
    template: str
    due: float  # unix seconds
    score: float = 0.0
    attempt: int = 1
    content_sid: str | None = None

    def encode(self) -> str:
        # Flat fields: a dict comprehension, not dataclasses.asdict (its deep copy is most of
        # the cost of scheduling a follow-up from the scorer).
        return json.dumps(
            {name: getattr(self, name) for name in _JOB_FIELDS}, separators=(",", ":")
        )

    @classmethod
    def decode(cls, text: str) -> Job:
        return cls(**json.loads(text))

    def again(self, *, due: float, next_attempt: bool) -> Job:
        return replace(self, due=due, attempt=self.attempt + (1 if next_attempt else 0))


_JOB_FIELDS = tuple(sorted(f.name for f in fields(Job)))  # sorted: the encoding is canonical


class FollowUpQueue:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._promote = client.register_script(_PROMOTE)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def enqueue(self, job: Job, *, now: float) -> None:
        """Due now: straight onto the stream (no wait for the scheduler); else scheduled."""
        if job.due <= now:
            self.client.xadd(keys.STREAM, {"job": job.encode()})
        else:
            self.client.zadd(keys.SCHEDULED, {job.encode(): job.due})

    def promote(self, *, now: float, limit: int = 500) -> int:
        return int(self._promote(keys=[keys.SCHEDULED, keys.STREAM], args=[now, limit]))

    def dead_letters(self, *, count: int = 100) -> list[dict[str, Any]]:
        entries: Any = self.client.xrevrange(keys.DEAD_LETTER, count=count)
        return [{"id": _text(entry_id), **_fields(fields)} for entry_id, fields in entries]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}
