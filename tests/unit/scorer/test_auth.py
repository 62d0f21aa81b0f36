"""API keys: several valid at once, read from env and from a rotating Secret file."""

from __future__ import annotations

import os
from pathlib import Path

from leadops.scorer.auth import KeyRing, parse_keys


def test_parse_keys_accepts_commas_and_lines() -> None:
    assert parse_keys(" a , b\nc,,\n") == ("a", "b", "c")


def test_every_configured_key_is_accepted_and_nothing_else() -> None:
    ring = KeyRing(keys=("old-key", "new-key"))
    assert ring.configured()
    assert ring.accepts("old-key")
    assert ring.accepts("new-key")
    assert not ring.accepts("new-ke")
    assert not ring.accepts("")
    assert not ring.accepts(None)


def test_no_keys_means_not_configured() -> None:
    assert not KeyRing().configured()
    assert not KeyRing().accepts("anything")


def test_key_file_is_reread_when_rotated(tmp_path: Path) -> None:
    secret = tmp_path / "api-keys"
    secret.write_text("first\n")
    ring = KeyRing(keys_file=secret)
    assert ring.accepts("first")
    secret.write_text("second\nthird\n")
    os.utime(secret, ns=(1, 1))  # a new mtime even within the clock's resolution
    assert not ring.accepts("first")
    assert ring.accepts("third")


def test_missing_key_file_is_not_configured(tmp_path: Path) -> None:
    ring = KeyRing(keys_file=tmp_path / "absent")
    assert not ring.configured()
