"""Renaming chat memory keys named the old way (`mem:{tenant}:{chat_id}`, the chat_id as
sent, often an email or a phone number) to the hashed names the scorer now writes
(`mem:{tenant}:k{HMAC}`, leadops.pii.chat_keys).

Each key moves by one atomic Lua call. Two different old names never meet: each maps to
the keyed hash of its own chat_id, so distinct chats keep distinct lists (a redacted name
would have merged them). The one list an old key may meet is the same chat's new list,
written by an upgraded scorer before the backfill ran: then the old (older) messages go in
front of the new ones and the old key is removed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import redis

from leadops.jobs.pii_backfill.pacer import Pacer
from leadops.jobs.pii_backfill.stats import key_pattern
from leadops.pii import chat_keys

logger = logging.getLogger(__name__)

# KEYS[1] the old name, KEYS[2] the new one. Reply: 1 renamed; 2 put in front of the same
# chat's new list; 0 gone meanwhile; -1 no longer a list; -2 the new name is not a list.
MOVE_CHAT = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return 0 end
if kind ~= 'list' then return -1 end
local target = redis.call('TYPE', KEYS[2]).ok
if target == 'none' then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
if target ~= 'list' then return -2 end
local old = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #old, 1, -1 do redis.call('LPUSH', KEYS[2], old[i]) end
redis.call('DEL', KEYS[1])
return 2
"""
RENAMED, MERGED, GONE, NOT_A_LIST, TARGET_NOT_A_LIST = 1, 2, 0, -1, -2


@dataclasses.dataclass
class Migration:
    """What the migration did (or, dry, would do); counts only, never a name."""

    renamed: int = 0  # moved to a free new name
    merged: int = 0  # put in front of the same chat's new list
    skipped: int = 0  # gone or no longer a list meanwhile
    failed: int = 0  # the new name holds something other than a list: left alone


def new_name(old: bytes, salt: bytes) -> bytes | None:
    """The hashed name of an old-style chat key; None when `old` is not one."""
    found = chat_keys.legacy_chat_id(old)
    if found is None:
        return None
    tenant, chat_id = found
    return chat_keys.chat_key(tenant, chat_id, salt=salt).encode()


def migrate(
    client: redis.Redis,
    old_keys: Sequence[bytes],
    *,
    salt: bytes,
    dry_run: bool,
    pacer: Pacer,
    batch: int,
) -> Migration:
    """Move each of `old_keys` to its hashed name, `batch` calls per round trip. A dry run
    reads (TYPE of both names) and reports what a real run would do, writing nothing."""
    done = Migration()
    script = client.register_script(MOVE_CHAT)
    for start in range(0, len(old_keys), batch):
        window = [(old, new_name(old, salt)) for old in old_keys[start : start + batch]]
        moves = [(old, new) for old, new in window if new is not None]
        pipe = client.pipeline(transaction=False)
        for old, new in moves:
            if dry_run:
                pipe.type(old)
                pipe.type(new)
            else:
                script(keys=[old, new], client=pipe)
        pacer.take(len(moves) * (2 if dry_run else 1))
        replies = pipe.execute(raise_on_error=False)
        outcomes = _dry_outcomes(replies) if dry_run else replies
        for (old, _), outcome in zip(moves, outcomes, strict=True):
            _count(done, old, outcome)
    return done


def _dry_outcomes(replies: list[Any]) -> list[Any]:
    """What MOVE_CHAT would answer, from the TYPE of the old and the new name."""
    outcomes: list[Any] = []
    for kind, target in zip(replies[::2], replies[1::2], strict=True):
        if isinstance(kind, Exception) or isinstance(target, Exception):
            outcomes.append(kind if isinstance(kind, Exception) else target)
        elif _text(kind) == "none":
            outcomes.append(GONE)
        elif _text(kind) != "list":
            outcomes.append(NOT_A_LIST)
        elif _text(target) == "none":
            outcomes.append(RENAMED)
        else:
            outcomes.append(MERGED if _text(target) == "list" else TARGET_NOT_A_LIST)
    return outcomes


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _count(done: Migration, old: bytes, outcome: Any) -> None:
    if isinstance(outcome, redis.ConnectionError | redis.TimeoutError):
        raise outcome
    if outcome == RENAMED:
        done.renamed += 1
    elif outcome == MERGED:
        done.merged += 1
    elif outcome in (GONE, NOT_A_LIST):
        done.skipped += 1
    else:  # the new name holds another type, or Redis refused the call
        done.failed += 1
        logger.warning("Left a %s chat key under its old name: %s", key_pattern(old), outcome)
