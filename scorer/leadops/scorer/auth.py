"""API keys for /ops/*: several valid at once, compared in constant time, never logged."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from pathlib import Path

logger = logging.getLogger(__name__)


def parse_keys(raw: str) -> tuple[str, ...]:
    """Keys separated by commas or newlines; blanks dropped."""
    return tuple(k.strip() for k in raw.replace("\n", ",").split(",") if k.strip())


class KeyRing:
    """The keys accepted now: fixed ones from the environment plus a file re-read when it changes.

    A mounted Kubernetes Secret is updated in place, so rotating a key needs no restart.
    """

    def __init__(self, *, keys: tuple[str, ...] = (), keys_file: Path | None = None) -> None:
        self._fixed = tuple(k.encode() for k in keys)
        self._file = keys_file
        self._file_stamp: tuple[int, int] | None = None
        self._file_keys: tuple[bytes, ...] = ()
        self._lock = threading.Lock()

    def _current_file_keys(self) -> tuple[bytes, ...]:
        if self._file is None:
            return ()
        try:
            st = os.stat(self._file)
        except OSError as exc:
            if self._file_stamp is not None:
                logger.error("Cannot read API keys file %s: %s", self._file, exc.strerror)
                self._file_stamp, self._file_keys = None, ()
            return ()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._file_stamp:
                try:
                    text = self._file.read_text(encoding="utf-8")
                except OSError as exc:
                    logger.error("Cannot read API keys file %s: %s", self._file, exc.strerror)
                    return ()
                self._file_keys = tuple(k.encode() for k in parse_keys(text))
                self._file_stamp = stamp
                logger.info("Loaded %d API key(s) from %s", len(self._file_keys), self._file)
            return self._file_keys

    def configured(self) -> bool:
        return bool(self._fixed or self._current_file_keys())

    def accepts(self, candidate: str | None) -> bool:
        """True when candidate equals some key; every key is compared (constant time)."""
        if not candidate:
            return False
        given = candidate.encode()
        ok = False
        for key in self._fixed + self._current_file_keys():
            # No early exit: timing must not reveal which key (or how many) matched.
            ok |= hmac.compare_digest(given, key)
        return ok
