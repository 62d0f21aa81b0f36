"""API keys: the /ops keys (KeyRing) and the ingest keys that name a caller's tenant (IngestKeys).

The two are separate sets, both sent as `x-api-key`: an /ops key does not grant ingest and an
ingest key does not open /ops. Keys come from the environment and from a file (a mounted
Secret) re-read when it changes; they are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from leadops.contract.lead import TENANT

logger = logging.getLogger(__name__)


class KeysFileUnreadable(Exception):
    """A configured keys file exists but cannot be used (not UTF-8, malformed): every request
    that needs a key is refused (503) until it is fixed; nothing falls back to open access."""


def parse_keys(raw: str) -> tuple[str, ...]:
    """Keys separated by commas or newlines; blanks dropped."""
    return tuple(k.strip() for k in raw.replace("\n", ",").split(",") if k.strip())


def parse_ingest_keys(raw: str, *, where: str) -> tuple[tuple[str, bytes], ...]:
    """`TENANT=KEY` entries separated by commas or newlines, as (tenant, key) pairs.

    A bad entry is a ValueError naming `where` and the entry's number, never its text (which
    holds a key)."""
    pairs = []
    for number, entry in enumerate(parse_keys(raw), start=1):
        tenant, sep, key = (part.strip() for part in entry.partition("="))
        if not sep or not key or not TENANT.match(tenant):
            raise ValueError(
                f"{where}: entry {number} is not TENANT=KEY (TENANT: letters, digits, '_.-')"
            )
        pairs.append((tenant, key.encode()))
    return tuple(pairs)


class WatchedFile:
    """A keys file's text, re-read when its mtime or size changes (a Kubernetes Secret volume
    is updated in place, so rotating a key needs no restart)."""

    def __init__(self, path: Path, *, what: str) -> None:
        self.path = path
        self._what = what
        self._stamp: tuple[int, int] | None = None
        self._text: str | None = None
        self._broken = False
        self._lock = threading.Lock()

    def text(self) -> str | None:
        """The file's text; None when it does not exist. Raises KeysFileUnreadable."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            with self._lock:
                if self._stamp is not None:
                    logger.error("Cannot read %s %s: %s", self._what, self.path, exc.strerror)
                self._stamp, self._text, self._broken = None, None, False
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._text, self._broken = stamp, None, False
                try:
                    self._text = self.path.read_bytes().decode("utf-8")
                except OSError as exc:
                    self._stamp = None  # retried on the next request
                    logger.error("Cannot read %s %s: %s", self._what, self.path, exc.strerror)
                    raise KeysFileUnreadable(str(self.path)) from None
                except UnicodeDecodeError as exc:
                    # One line per change of the file, naming it; the bytes are never shown.
                    self._broken = True
                    logger.error(
                        "%s %s is not UTF-8 text (byte %d): requests needing a key are refused "
                        "(503) until it is fixed",
                        self._what.capitalize(),
                        self.path,
                        exc.start,
                    )
            if self._broken:
                raise KeysFileUnreadable(str(self.path))
            return self._text

    def mark_broken(self, reason: str) -> None:
        """Refuse until the file changes again; log `reason` once (it must hold no key)."""
        with self._lock:
            if not self._broken:
                self._broken = True
                logger.error(
                    "%s %s: %s: requests needing a key are refused (503) until it is fixed",
                    self._what.capitalize(),
                    self.path,
                    reason,
                )


class KeyRing:
    """The /ops keys accepted now: fixed ones from the environment plus a watched file."""

    def __init__(self, *, keys: tuple[str, ...] = (), keys_file: Path | None = None) -> None:
        self._fixed = tuple(k.encode() for k in keys)
        self._file = None if keys_file is None else WatchedFile(keys_file, what="API keys file")
        self._file_text: str | None = None
        self._file_keys: tuple[bytes, ...] = ()

    def _current_file_keys(self) -> tuple[bytes, ...]:
        if self._file is None:
            return ()
        text = self._file.text()
        if text is not self._file_text:
            self._file_text = text
            self._file_keys = tuple(k.encode() for k in parse_keys(text or ""))
            if text is not None:
                logger.info("Loaded %d API key(s) from %s", len(self._file_keys), self._file.path)
        return self._file_keys

    def configured(self) -> bool:
        """Whether any key is set. Raises KeysFileUnreadable."""
        return bool(self._fixed or self._current_file_keys())

    def accepts(self, candidate: str | None) -> bool:
        """True when candidate equals some key; every key is compared (constant time).
        Raises KeysFileUnreadable."""
        keys = self._fixed + self._current_file_keys()
        if not candidate:
            return False
        return _matching(candidate.encode(), [("", key) for key in keys]) is not None


class IngestKeys:
    """The ingest keys accepted now, each naming its tenant: `LEADOPS_INGEST_KEYS` plus a
    watched `LEADOPS_INGEST_KEYS_FILE`. With neither configured, ingest is open (tenant
    `default` only)."""

    def __init__(
        self, *, entries: tuple[tuple[str, bytes], ...] = (), keys_file: Path | None = None
    ) -> None:
        self._fixed = entries
        self._file = None if keys_file is None else WatchedFile(keys_file, what="ingest keys file")
        self._file_text: str | None = None
        self._file_entries: tuple[tuple[str, bytes], ...] = ()

    @property
    def open(self) -> bool:
        """No ingest key is configured at all (a configured but missing file is not open)."""
        return not self._fixed and self._file is None

    def _current_file_entries(self) -> tuple[tuple[str, bytes], ...]:
        if self._file is None:
            return ()
        text = self._file.text()
        if text is not self._file_text:
            try:
                entries = parse_ingest_keys(text or "", where="ingest keys file")
            except ValueError as exc:
                self._file.mark_broken(str(exc).partition(": ")[2])
                raise KeysFileUnreadable(str(self._file.path)) from None
            self._file_text, self._file_entries = text, entries
            if text is not None:
                tenants = len({tenant for tenant, _ in entries})
                logger.info(
                    "Loaded %d ingest key(s) for %d tenant(s) from %s",
                    len(entries),
                    tenants,
                    self._file.path,
                )
        return self._file_entries

    def tenant_for(self, candidate: str | None) -> str | None:
        """The tenant whose key `candidate` is, else None; every key is compared (constant
        time). Raises KeysFileUnreadable."""
        entries = self._fixed + self._current_file_entries()
        if not candidate:
            return None
        return _matching(candidate.encode(), entries)


def _matching(given: bytes, entries: Sequence[tuple[str, bytes]]) -> str | None:
    """The name paired with the key equal to `given`, comparing every key: no early exit, so
    timing reveals neither which key matched nor how many there are before it."""
    found: str | None = None
    for name, key in entries:
        if hmac.compare_digest(given, key) and found is None:
            found = name
    return found
