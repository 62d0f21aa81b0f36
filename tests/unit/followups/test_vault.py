"""The contact vault's sealing, without Redis: rotation and binding to tenant and lead."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis

from leadops.followups.keys import Keys
from leadops.followups.vault import (
    Contact,
    ContactUnreadable,
    ContactVault,
    Keyring,
    VaultKeyError,
    load_key,
)

ADA = Contact(phone="+14155550100", email="ada@example.org", name="Ada", timezone="Europe/Paris")


def _vault(rings: dict[str, Keyring]) -> ContactVault:
    # seal/open never touch Redis; the client is never connected.
    return ContactVault(redis.Redis(port=1), Keys(b"s" * 16), rings, ttl_s=60)


def test_round_trip_and_ciphertext_holds_no_contact() -> None:
    vault = _vault({"t": Keyring("k1", {"k1": secrets.token_bytes(32)})})
    blob = vault.seal("t", "lead", ADA)
    assert vault.open("t", "lead", blob) == ADA
    for secret in (b"ada@example.org", b"4155550100", b"Ada"):
        assert secret not in blob


def test_rotation_keeps_old_contacts_until_the_key_is_removed() -> None:
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    old = _vault({"t": Keyring("k1", {"k1": k1})}).seal("t", "lead", ADA)
    rotated = _vault({"t": Keyring("k2", {"k1": k1, "k2": k2})})
    assert rotated.open("t", "lead", old) == ADA
    assert rotated.seal("t", "lead", ADA).startswith(b"k2:")
    removed = _vault({"t": Keyring("k2", {"k2": k2})})
    with pytest.raises(ContactUnreadable, match="rotated away"):
        removed.open("t", "lead", old)


def test_a_blob_moved_to_another_lead_or_tenant_does_not_open() -> None:
    key = secrets.token_bytes(32)
    vault = _vault({"t": Keyring("k", {"k": key}), "u": Keyring("k", {"k": key})})
    blob = vault.seal("t", "lead", ADA)
    with pytest.raises(ContactUnreadable):
        vault.open("t", "other-lead", blob)
    with pytest.raises(ContactUnreadable):
        vault.open("u", "lead", blob)
    with pytest.raises(ContactUnreadable):
        vault.open("t", "lead", blob[:-1] + bytes([blob[-1] ^ 1]))


@pytest.mark.parametrize(
    ("text", "message"),
    [("zz", "not hex"), ("00" * 16, "holds 16 bytes"), (None, "No such file")],
)
def test_bad_key_files_are_named_not_quoted(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "key"
    if text is not None:
        path.write_text(text)
    with pytest.raises(VaultKeyError, match=message) as caught:
        load_key(path)
    assert str(path) in str(caught.value)


def test_current_key_must_be_in_the_ring() -> None:
    with pytest.raises(VaultKeyError, match="not in the keyring"):
        Keyring("k2", {"k1": b"x" * 32})
