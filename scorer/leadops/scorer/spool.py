"""The spool: a bounded local append-only file of lead records the store could not take.

Used in `spooled` durability. A batch is appended as JSON lines and fsync'd before its leads
are answered, so an answered lead survives a scorer crash; the writer replays the spool,
idempotently, once the store answers again and at start-up. The records are the ones the
store would have received: already redacted (leadops.scorer.scoring redacts before queueing).

Two files in the spool directory: `leads.jsonl`, appended to, and `replaying.jsonl`, the
records being replayed (renamed from `leads.jsonl`, so appends during a replay go on in a
fresh file). A line torn by a crash mid-append was never fsync'd, so never answered: skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from leadops.scorer import store

logger = logging.getLogger(__name__)

LIVE = "leads.jsonl"
REPLAYING = "replaying.jsonl"


class Spool:
    """The spool files under `directory`, at most `max_bytes` together. Blocking file I/O:
    the writer calls it through a worker thread."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._live = directory / LIVE
        self._replaying = directory / REPLAYING

    def size(self) -> int:
        return sum(path.stat().st_size for path in (self._live, self._replaying) if path.exists())

    def append(self, writes: Sequence[store.LeadWrite]) -> bool:
        """Append and fsync the records; False (nothing written) when they do not fit."""
        data = b"".join(_line(write) for write in writes)
        if self.size() + len(data) > self.max_bytes:
            return False
        fd = os.open(self._live, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def take(self) -> list[store.LeadWrite]:
        """The records to replay: an unfinished replay's first, else the live file's (which is
        renamed aside, so new appends start a fresh file). [] when the spool is empty."""
        if not self._replaying.exists():
            if not self._live.exists():
                return []
            os.replace(self._live, self._replaying)
            _fsync_dir(self.directory)
        return _read(self._replaying)

    def replayed(self) -> None:
        """Every record `take` returned is in the store: forget them."""
        self._replaying.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def lead_ids(self) -> set[str]:
        """Ids of every spooled record (at start-up: the leads a crash left here)."""
        return {
            write.lead_id
            for path in (self._replaying, self._live)
            if path.exists()
            for write in _read(path)
        }


def _line(write: store.LeadWrite) -> bytes:
    item = [write.lead_id, write.record, write.columns, write.memory, write.message]
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _read(path: Path) -> list[store.LeadWrite]:
    writes = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                lead_id, record, columns, memory, message = json.loads(line)
            except ValueError:
                # Only the last line can be torn (a crash mid-append, before its fsync).
                logger.warning("Skipped a torn spool line (%s line %d)", path.name, number)
                continue
            writes.append(
                store.LeadWrite(
                    lead_id=lead_id, record=record, columns=columns, memory=memory, message=message
                )
            )
    return writes


def _fsync_dir(directory: Path) -> None:
    # A rename or unlink survives a crash only once the directory itself is synced.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
