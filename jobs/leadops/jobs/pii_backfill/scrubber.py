"""Scrubbing PII from data already in Redis, in place, without ever losing a concurrent write.

Lists (chat memory `mem:{tenant}:...`) are read in chunks with LRANGE and
hashes (lead records `lead:{lead_id}`) with HSCAN; only values that contain PII
are rewritten, each by an atomic compare-and-set in a short Lua script: a list
element is found by value (at the index we read it from, else with LPOS) and
LSET only if it still holds exactly what we read; a hash field is HSET only if
HGET still returns what we read. Nothing is ever deleted and re-pushed, so a
message pushed meanwhile is never dropped, and a value someone changed meanwhile
is left alone and counted as a conflict. Rerunning is safe: clean values are
never written. Chat lists still named by their chat_id move to hashed names at the end
(key_migration), once their values are scrubbed.
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import dataclasses
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis
from redis.cluster import RedisCluster

from leadops import pii, redis_mode
from leadops.jobs.pii_backfill import key_migration
from leadops.jobs.pii_backfill.cas_scripts import CAS_CHUNK, CAS_HASH, CAS_LIST
from leadops.jobs.pii_backfill.detection_pool import DetectionPool, Redaction, redact_values
from leadops.jobs.pii_backfill.pacer import Pacer
from leadops.jobs.pii_backfill.stats import Stats, key_pattern
from leadops.pii import chat_keys, screen

logger = logging.getLogger(__name__)

# Lists up to this long (chat memories) are read whole, in one LRANGE: an atomic snapshot
# that holds every element that existed before it, however many are pushed meanwhile.
WHOLE_LIST_MAX = 1000

# Rounds of reads whose detection may still be running in the workers: enough to keep them
# busy while the next round is read and screened, few enough to bound memory.
ROUNDS_IN_FLIGHT = 4


class Rewrite(NamedTuple):
    """One value to compare-and-set: where it was read, what was read, what to write."""

    key: bytes
    where: int | bytes  # list index or hash field
    original: bytes
    replacement: bytes
    types: tuple[str, ...]


# One key's values from one read: the key, where each value sits (list indexes or hash
# fields), the values.
Batch = tuple[bytes, Sequence[int] | Sequence[bytes], Sequence[bytes]]


def _where_arg(where: int | bytes) -> bytes:
    return str(where).encode() if isinstance(where, int) else where


@dataclasses.dataclass
class _Round:
    """Values of one round of reads that passed the screen, while the detector runs on them."""

    places: list[tuple[bytes, int | bytes]]  # (key, list index or hash field) per value
    values: list[bytes]
    script: Any
    parts: list[concurrent.futures.Future[list[Redaction]]]

    def done(self) -> bool:
        return all(part.done() for part in self.parts)


def _rewrites(
    places: list[tuple[bytes, int | bytes]], values: list[bytes], results: list[Redaction]
) -> list[Rewrite]:
    return [
        Rewrite(key, where, value, result[0], result[1])
        for (key, where), value, result in zip(places, values, results, strict=True)
        if result is not None
    ]


class Scrubber:
    """One backfill run over the keys matching `patterns` (client made without decode_responses)."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        detector: pii.Detector,
        patterns: Sequence[str] = ("mem:*",),
        batch: int = 500,
        dry_run: bool = False,
        pacer: Pacer | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        workers: int = 1,
        key_salt: bytes | None = None,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            # Values are compared byte for byte; decoded replies could not round-trip.
            raise ValueError("Scrubber needs a Redis client without decode_responses")
        self.client = client
        # Redis Cluster: SCAN each master, pipelines through redis-py's ClusterPipeline (it
        # sends each node its share and follows MOVED, ASK and a failover), and every
        # compare-and-set call keeps to one hash slot.
        self.cluster = isinstance(client, RedisCluster)
        self.detector = detector
        self.patterns = tuple(patterns)
        self.batch = batch
        self.dry_run = dry_run
        self.pacer = pacer or Pacer(None)
        self.on_progress = on_progress or (lambda _stats: None)
        self.stats = Stats()
        self._seen: set[bytes] = set()  # SCAN may return a key twice; count it once
        self._cas_list = client.register_script(CAS_LIST)
        self._cas_hash = client.register_script(CAS_HASH)
        # Chat lists still named `mem:{tenant}:{chat_id}`: with the key salt, moved to their
        # hashed names once every value is scrubbed; without it, only counted.
        self.key_salt = key_salt
        self._unhashed: list[bytes] = []
        # workers > 1: the detector runs in that many processes (started at the first value
        # to look at) while this one reads, screens and writes; Redis is only used from here.
        self.workers = workers
        self._pool = DetectionPool(detector, workers)
        self._rounds: collections.deque[_Round] = collections.deque()
        # The last round of reads, looked at while Redis answers the next one (see _pipelined).
        self._pending: tuple[list[Batch], Any] | None = None

    def run(self) -> Stats:
        """Scan every matching key once; raises redis.ConnectionError if Redis goes away."""
        try:
            for pattern in self.patterns:
                self._scan(pattern)
            self._look_pending()
            while self._rounds:
                self._finish_round()
            self._migrate_keys()
            self.on_progress(self.stats)
        finally:
            self._pool.shutdown()
        return self.stats

    def count_keys(self) -> int:
        """Keys matching the patterns now (a first, paced SCAN pass; no values are read): the
        total a progress bar needs. Keys added later are scrubbed too, so a run may do more."""
        counted: set[bytes] = set()  # SCAN may return a key twice
        for pattern in self.patterns:
            for target in self._scan_targets():
                options = {} if target is None else {"target_nodes": target}
                cursor = 0
                while True:
                    self.pacer.take(1)
                    cursor, keys = self._scan_page(cursor, pattern, max(self.batch, 1000), options)
                    counted.update(key for key in keys if isinstance(key, bytes))
                    if cursor == 0:
                        break
        return len(counted)

    def _scan_targets(self) -> list[Any]:
        """Where to SCAN: each master of a cluster (a cursor is one node's), else the server."""
        if isinstance(self.client, RedisCluster):
            return list(self.client.get_primaries())  # type: ignore[no-untyped-call]
        return [None]

    def _scan_page(
        self, cursor: int, pattern: str, count: int, options: dict[str, Any]
    ) -> tuple[int, list[Any]]:
        reply = self.client.scan(cursor, match=pattern, count=count, **options)
        following, keys = reply
        if isinstance(following, dict):  # RedisCluster: {node name: cursor} of the one node
            following = next(iter(following.values()))
        return int(following), list(keys)

    def _scan(self, pattern: str) -> None:
        for target in self._scan_targets():
            self._scan_node(pattern, target)

    def _scan_node(self, pattern: str, target: Any) -> None:
        options = {} if target is None else {"target_nodes": target}
        cursor = 0
        while True:
            self.pacer.take(1)
            cursor, keys = self._scan_page(cursor, pattern, self.batch, options)
            # The client is made without decode_responses: keys and values are bytes.
            fresh = [key for key in keys if isinstance(key, bytes) and key not in self._seen]
            self._seen.update(fresh)
            if fresh:
                self._scrub_keys(fresh)
                self.on_progress(self.stats)
            if cursor == 0:
                return

    def _scrub_keys(self, keys: list[bytes]) -> None:
        types = self._pipelined([("TYPE", key) for key in keys])
        lists: list[bytes] = []
        hashes: list[bytes] = []
        for key, kind in zip(keys, types, strict=True):
            name = kind.decode() if isinstance(kind, bytes) else str(kind)
            if name == "none":  # deleted since SCAN returned it
                continue
            self.stats.scanned_keys += 1
            self.stats.pattern(key).keys += 1
            if name == "list":
                lists.append(key)
                if chat_keys.legacy_chat_id(key) is not None:
                    self._unhashed.append(key)
            elif name == "hash":
                hashes.append(key)
            else:
                self.stats.skipped += 1
                self.stats.skipped_by_type[name] += 1
        if lists:
            self._scrub_lists(lists)
        if hashes:
            self._scrub_hashes(hashes)

    def _scrub_lists(self, keys: list[bytes]) -> None:
        # A list of up to WHOLE_LIST_MAX elements is read whole, in one LRANGE. A longer one
        # is read in chunks of `batch`, up to twice the length it had when its scan began, so
        # a list that someone keeps pushing to cannot keep the run going; the newest messages
        # are left for the next run. Round by round: the next read of every list still being
        # read, in one pipeline.
        limits: dict[bytes, int] = {}
        for key, length in zip(keys, self._pipelined([("LLEN", key) for key in keys]), strict=True):
            if isinstance(length, Exception):
                self._key_failed(key, length)
            else:
                limits[key] = -1 if int(length) <= WHOLE_LIST_MAX else 2 * int(length) + self.batch
        starts = dict.fromkeys(limits, 0)
        while starts:
            chunks = self._pipelined(
                [
                    ("LRANGE", key, start, -1 if limits[key] < 0 else start + self.batch - 1)
                    for key, start in starts.items()
                ],
                overlap=True,
            )
            batches: list[Batch] = []
            following: dict[bytes, int] = {}
            for (key, start), chunk in zip(starts.items(), chunks, strict=True):
                if isinstance(chunk, Exception):
                    self._key_failed(key, chunk)
                    continue
                self._count_items(key, len(chunk))
                batches.append((key, range(start, start + len(chunk)), chunk))
                if (
                    limits[key] > 0
                    and len(chunk) == self.batch
                    and start + self.batch < limits[key]
                ):
                    following[key] = start + self.batch
            self._defer_look(batches, self._cas_list)
            starts = following

    def _scrub_hashes(self, keys: list[bytes]) -> None:
        cursors = dict.fromkeys(keys, 0)
        seen_fields: dict[bytes, set[bytes]] = {key: set() for key in keys}
        while cursors:
            replies = self._pipelined(
                [("HSCAN", key, cursor, "COUNT", self.batch) for key, cursor in cursors.items()],
                overlap=True,
            )
            batches: list[Batch] = []
            following: dict[bytes, int] = {}
            for key, reply in zip(list(cursors), replies, strict=True):
                if isinstance(reply, Exception):
                    self._key_failed(key, reply)
                    continue
                cursor, fields = reply
                # HSCAN may repeat a field while the hash is rehashed; inspect each once.
                fresh = {f: v for f, v in fields.items() if f not in seen_fields[key]}
                seen_fields[key].update(fresh)
                self._count_items(key, len(fresh))
                batches.append((key, list(fresh), list(fresh.values())))
                if int(cursor) != 0:
                    following[key] = int(cursor)
            self._defer_look(batches, self._cas_hash)
            cursors = following

    def _migrate_keys(self) -> None:
        """Moves the old-style chat keys to their hashed names (after their values were
        scrubbed under the old names: a pending rewrite never misses its key)."""
        if self.key_salt is None:  # counted in the summary (`unhashed_keys`), left as they are
            self.stats.unhashed_keys = len(self._unhashed)
            return
        if self.cluster and self._unhashed:
            # An old name and its hashed name are on different slots: no one atomic move.
            self.stats.unhashed_keys = len(self._unhashed)
            logger.warning(
                "Left %d chat key(s) under their old names: a Redis Cluster cannot move a key "
                "to another slot atomically; run the backfill once on standalone Redis first",
                len(self._unhashed),
            )
            return
        assert isinstance(self.client, redis.Redis)
        moved = key_migration.migrate(
            self.client,
            self._unhashed,
            salt=self.key_salt,
            dry_run=self.dry_run,
            pacer=self.pacer,
            batch=self.batch,
        )
        self.stats.renamed_keys = moved.renamed
        self.stats.merged_keys = moved.merged
        self.stats.unhashed_keys = moved.failed
        self.stats.errors += moved.failed

    def _count_items(self, key: bytes, count: int) -> None:
        self.stats.scanned_items += count
        self.stats.pattern(key).items += count

    def _defer_look(self, batches: list[Batch], script: Any) -> None:
        self._look_pending()
        self._pending = (batches, script)

    def _look_pending(self) -> None:
        if self._pending is not None:
            batches, script = self._pending
            self._pending = None
            self._look(batches, script)

    def _look(self, batches: list[Batch], script: Any) -> None:
        """Finds and rewrites the values that hold PII, from one round of reads of several keys.

        The byte screen looks at every value of the round at once (C speed) and names
        the few that may hold PII; only those are decoded and run through the detector
        (in the worker processes, if any, while the next round is read). The screen never
        misses a value the detector would flag (tests/unit/test_pii_screen.py).
        """
        values = list(itertools.chain.from_iterable(values for _, _, values in batches))
        offsets = list(itertools.accumulate((len(b[2]) for b in batches[:-1]), initial=0))
        places: list[tuple[bytes, int | bytes]] = []
        passed: list[bytes] = []
        for index in screen.may_hold_pii(values):
            batch = bisect.bisect_right(offsets, index) - 1
            key, wheres, _ = batches[batch]
            places.append((key, wheres[index - offsets[batch]]))
            passed.append(values[index])
        if not passed:
            return
        if self.workers <= 1:
            self._apply(_rewrites(places, passed, redact_values(self.detector, passed)), script)
            return
        self._rounds.append(_Round(places, passed, script, self._pool.submit(passed)))
        while len(self._rounds) > ROUNDS_IN_FLIGHT or (self._rounds and self._rounds[0].done()):
            self._finish_round()

    def _finish_round(self) -> None:
        """Waits for the oldest round's detection, then writes (or, dry, counts) its rewrites."""
        done = self._rounds.popleft()
        results = [result for part in done.parts for result in part.result()]
        self._apply(_rewrites(done.places, done.values, results), done.script)

    def _apply(self, rewrites: list[Rewrite], script: Any) -> None:
        if self.dry_run:
            self._record_done(rewrites)
            return
        calls = self._calls(rewrites)
        for start in range(0, len(calls), self.batch):
            window = calls[start : start + self.batch]
            self.pacer.take(sum(len(call) for call in window))
            pipe: Any = self.client.pipeline(transaction=False)
            for call in window:
                self._queue_call(pipe, script, call)
            results = pipe.execute(raise_on_error=False)
            done: list[Rewrite] = []
            for call, result in zip(window, results, strict=True):
                if isinstance(result, Exception):  # the whole call: e.g. a script error
                    for key in dict.fromkeys(rewrite.key for rewrite in call):
                        self._key_failed(key, result)
                    continue
                failed: set[bytes] = set()
                for rewrite, outcome in zip(call, result, strict=True):
                    if isinstance(outcome, bytes):
                        if rewrite.key not in failed:
                            failed.add(rewrite.key)
                            self._key_failed(rewrite.key, redis.ResponseError(outcome.decode()))
                    elif outcome:
                        done.append(rewrite)
                    else:
                        self.stats.conflicts += 1
                        self.stats.pattern(rewrite.key).conflicts += 1
            self._record_done(done)

    def _queue_call(self, pipe: Any, script: Any, call: list[Rewrite]) -> None:
        keys = list(dict.fromkeys(rewrite.key for rewrite in call))
        number = {key: str(n).encode() for n, key in enumerate(keys, start=1)}
        args = [
            part
            for r in call
            for part in (number[r.key], _where_arg(r.where), r.original, r.replacement)
        ]
        if self.cluster:  # EVAL: a master promoted by a failover has no script cache
            pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
        else:
            script(keys=keys, args=args, client=pipe)

    def _calls(self, rewrites: list[Rewrite]) -> list[list[Rewrite]]:
        """Rewrites in script calls of up to CAS_CHUNK each. They come grouped by key (the
        order they were read in); on one Redis a call takes them whatever keys they belong
        to, on a cluster only keys of one hash slot (a script cannot reach another slot)."""
        if not self.cluster:
            return [rewrites[i : i + CAS_CHUNK] for i in range(0, len(rewrites), CAS_CHUNK)]
        by_slot: dict[int, list[Rewrite]] = collections.defaultdict(list)
        for rewrite in rewrites:
            by_slot[redis_mode.slot(rewrite.key)].append(rewrite)
        return [
            group[i : i + CAS_CHUNK]
            for group in by_slot.values()
            for i in range(0, len(group), CAS_CHUNK)
        ]

    def _record_done(self, rewrites: list[Rewrite]) -> None:
        # Counted in bulk: per key, not per value (a round rewrites many values of few keys).
        self.stats.redacted_items += len(rewrites)
        for key, count in collections.Counter(rewrite.key for rewrite in rewrites).items():
            self.stats.pattern(key).redacted_items += count
        self.stats.by_type.update(
            itertools.chain.from_iterable(rewrite.types for rewrite in rewrites)
        )

    def _key_failed(self, key: bytes, error: Exception) -> None:
        # A connection failure ends the run; anything else (e.g. the key changed type) is one key.
        if isinstance(error, redis.ConnectionError | redis.TimeoutError):
            raise error
        self.stats.errors += 1
        logger.warning("Skipped a %s key after a Redis error: %s", key_pattern(key), error)

    def _pipelined(self, commands: list[tuple[Any, ...]], *, overlap: bool = False) -> list[Any]:
        """Sends `commands` in one round trip and returns their replies (an error reply as
        its exception). With `overlap`, the last round of reads is looked at (screened,
        detected, written) after the commands are sent and before their replies are read:
        Redis works on the next round meanwhile, on another CPU, instead of us waiting."""
        self.pacer.take(len(commands))
        if isinstance(self.client, RedisCluster):
            return self._cluster_pipelined(self.client, commands, overlap=overlap)
        pool = self.client.connection_pool
        connection: Any = pool.get_connection()  # redis-py's connection API is untyped
        parse: Any = self.client.parse_response
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            if overlap:
                self._look_pending()
            replies: list[Any] = []
            for command in commands:
                try:
                    replies.append(parse(connection, command[0]))
                except redis.ResponseError as error:
                    replies.append(error)
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse this socket
            raise
        finally:
            pool.release(connection)
        return replies

    def _cluster_pipelined(
        self, client: RedisCluster, commands: list[tuple[Any, ...]], *, overlap: bool
    ) -> list[Any]:
        """`_pipelined` on a cluster: redis-py's ClusterPipeline writes every node its share
        before reading any reply, so the nodes work in parallel; the last round is looked at
        before, not while, they answer."""
        if overlap:
            self._look_pending()
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies
