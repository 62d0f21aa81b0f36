"""leadops.pii.chat_keys: key names derived from caller data hold none of it."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from leadops.pii import chat_keys

SALT = b"unit-test-salt-0123456789"


def test_chat_key_is_the_keyed_hash_of_tenant_and_chat_id() -> None:
    key = chat_keys.chat_key("acme", "alice@example.com", salt=SALT)
    mac = hmac.new(SALT, b"acme\0alice@example.com", hashlib.sha256).hexdigest()[:32]
    assert key == f"mem:acme:k{mac}"
    assert "alice" not in key


def test_names_differ_by_salt_tenant_and_chat_id_and_never_merge_redacted_lookalikes() -> None:
    names = {
        chat_keys.chat_key(tenant, chat, salt=salt)
        for salt in (SALT, b"another-salt-0123456789", None)
        for tenant in ("acme", "globex")
        for chat in ("alice@example.com", "+1 415 555 2671", "[REDACTED]")
    }
    assert len(names) == 3 * 2 * 3
    # NUL-separated parts: ("a", "b:c") and ("a:b", "c") are different chats.
    assert chat_keys.keyed_hash(SALT, "a", "b:c") != chat_keys.keyed_hash(SALT, "a:b", "c")


def test_old_style_names_are_told_from_hashed_ones() -> None:
    hashed = chat_keys.chat_key("acme", "chat1", salt=SALT).encode()
    assert chat_keys.legacy_chat_id(hashed) is None
    assert chat_keys.legacy_chat_id(b"mem:acme:chat1") == ("acme", "chat1")
    assert chat_keys.legacy_chat_id(b"mem:acme:tel:+1 415") == ("acme", "tel:+1 415")
    for other in (b"lead:123", b"mem:acme", b"mem::chat", b"mem:acme:", b"mem:acme:\xff\xfe"):
        assert chat_keys.legacy_chat_id(other) is None, other


def test_salt_files_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "salt"
    good.write_bytes(SALT + b"\n")
    assert chat_keys.load_salt(good) == SALT  # a Secret's trailing newline is not the salt
    short = tmp_path / "short"
    short.write_bytes(b"0123456789\n")
    with pytest.raises(chat_keys.KeySaltError, match="want at least 16"):
        chat_keys.load_salt(short)
    with pytest.raises(chat_keys.KeySaltError, match="missing"):
        chat_keys.load_salt(tmp_path / "missing")
    monkeypatch.delenv(chat_keys.SALT_FILE_ENV, raising=False)
    assert chat_keys.salt_from_env() is None
    monkeypatch.setenv(chat_keys.SALT_FILE_ENV, str(good))
    assert chat_keys.salt_from_env() == SALT
