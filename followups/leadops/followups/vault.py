"""The contact vault: the only place a lead's phone number, e-mail address and name live.

Each contact is one Redis string, AES-256-GCM encrypted with the tenant's current key (a
mounted Secret file), with the tenant and lead bound in as associated data so a blob moved
to another lead or tenant does not decrypt. Its TTL is the follow-up horizon: a contact is
gone once no follow-up can need it. Rotation: add the new key, make it current, keep the old
one until the horizon has passed, then remove it; a contact sealed with a removed key is
unreadable (ContactUnreadable), which is what removing a key is for.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leadops.followups.keys import Keys

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class VaultKeyError(ValueError):
    """A vault key file is missing or malformed (the message names the file, never the key)."""


class ContactUnreadable(Exception):
    """The contact was sealed with a key no longer in the keyring (rotated away) or was altered."""


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str | None = None
    email: str | None = None
    name: str | None = None
    timezone: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {k: v for k, v in (("phone", self.phone), ("email", self.email), ("name", self.name),
                               ("timezone", self.timezone)) if v is not None},
            separators=(",", ":"),
        ).encode()  # fmt: skip

    @classmethod
    def from_json(cls, data: bytes) -> Contact:
        fields = json.loads(data)
        return cls(**{k: fields.get(k) for k in ("phone", "email", "name", "timezone")})


def load_key(path: Path) -> bytes:
    """A 256-bit key from a Secret file: 64 hex digits (`openssl rand -hex 32`)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise VaultKeyError(f"vault key file {path}: {exc.strerror or exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise VaultKeyError(f"vault key file {path} is not hex (`openssl rand -hex 32`)") from None
    if len(key) != KEY_BYTES:
        raise VaultKeyError(f"vault key file {path} holds {len(key)} bytes; want {KEY_BYTES}")
    return key


@dataclass(frozen=True)
class Keyring:
    """One tenant's vault keys by id; `current` seals, every key in `keys` may open."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise VaultKeyError(f"current vault key {self.current!r} is not in the keyring")
        for key_id in self.keys:
            if not _KEY_ID.fullmatch(key_id):
                raise VaultKeyError(f"vault key id {key_id!r} must match {_KEY_ID.pattern}")

    @classmethod
    def from_files(cls, current: str, files: Mapping[str, Path]) -> Keyring:
        return cls(current=current, keys={kid: load_key(path) for kid, path in files.items()})


def _aad(tenant: str, lead_ref: str) -> bytes:
    return f"{tenant}\0{lead_ref}".encode()


def seal(ring: Keyring, tenant: str, lead_ref: str, contact: Contact) -> bytes:
    """The contact encrypted with the tenant's current key: `key id:nonce+ciphertext`."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.keys[ring.current]).encrypt(
        nonce, contact.to_json(), _aad(tenant, lead_ref)
    )
    return ring.current.encode() + b":" + nonce + sealed


class ContactVault:
    def __init__(
        self, client: redis.Redis, keys: Keys, keyrings: Mapping[str, Keyring], *, ttl_s: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.keyrings = keyrings
        self.ttl_s = ttl_s

    def _keyring(self, tenant: str) -> Keyring:
        try:
            return self.keyrings[tenant]
        except KeyError:
            raise ContactUnreadable(f"tenant {tenant!r} has no vault keys") from None

    @staticmethod
    def _aad(tenant: str, lead_ref: str) -> bytes:
        return _aad(tenant, lead_ref)

    def seal(self, tenant: str, lead_ref: str, contact: Contact) -> bytes:
        return seal(self._keyring(tenant), tenant, lead_ref, contact)

    def open(self, tenant: str, lead_ref: str, blob: bytes) -> Contact:
        key_id, sep, rest = blob.partition(b":")
        key = self._keyring(tenant).keys.get(key_id.decode("ascii", "replace"))
        if not sep or key is None:
            raise ContactUnreadable("the contact's vault key is not in the keyring (rotated away)")
        try:
            plain = AESGCM(key).decrypt(
                rest[:NONCE_BYTES], rest[NONCE_BYTES:], self._aad(tenant, lead_ref)
            )
        except Exception:  # InvalidTag: altered, moved, or sealed by another key of that id
            raise ContactUnreadable("the contact does not decrypt") from None
        return Contact.from_json(plain)

    def put(self, tenant: str, lead_ref: str, contact: Contact) -> None:
        self.client.set(
            Keys.contact(tenant, lead_ref), self.seal(tenant, lead_ref, contact), ex=self.ttl_s
        )

    def get(self, tenant: str, lead_ref: str) -> Contact | None:
        """The contact, None when erased or past its TTL; ContactUnreadable if the key is gone."""
        blob = self.client.get(Keys.contact(tenant, lead_ref))
        if blob is None:
            return None
        assert isinstance(blob, bytes)
        return self.open(tenant, lead_ref, blob)

    def erase(self, tenant: str, lead_ref: str) -> bool:
        """Right to erasure: the contact is deleted; True if there was one."""
        return bool(self.client.delete(Keys.contact(tenant, lead_ref)))
