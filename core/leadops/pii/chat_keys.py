"""Redis key names that hold no PII: chat memory lives at `mem:{tenant}:k{HMAC of chat_id}`.

A `chat_id` is whatever the caller sent (often an email or a phone number), so it never
appears in a key name. The name holds an HMAC-SHA256 of the tenant and chat_id, keyed by a
per-deployment secret, the key salt (`LEADOPS_KEY_SALT_FILE`, a mounted Secret): without
the salt nobody can tell which chat a key belongs to, nor confirm a guessed chat_id, and
`leadops chat-key TENANT CHAT_ID` (with the salt) prints the name an operator looks for.

Without a salt the scorer still hashes, with a fixed public key (`UNSALTED`), and warns at
start: names hold no readable PII, but a guessed chat_id can be confirmed. Development only.

`keyed_hash` is the one keyed hash for names derived from caller data; later features that
need such names use it too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Final

SALT_FILE_ENV: Final = "LEADOPS_KEY_SALT_FILE"
# The key of the development fallback: public, so it protects nothing a guess can reach.
UNSALTED: Final = b"leadops-unsalted-development-key"
MIN_SALT_BYTES: Final = 16
MEMORY_PREFIX: Final = "mem:"
# "k" + 32 hex digits (128 bits of the HMAC): what a hashed chat key ends with.
_HASHED = re.compile(rb"k[0-9a-f]{32}")
_DIGEST_HEX: Final = 32


class KeySaltError(ValueError):
    """The key salt file is missing, unreadable or too short (the message names the file)."""


def load_salt(path: Path) -> bytes:
    """The salt in `path` (a Secret's file), trailing newline removed; at least 16 bytes."""
    try:
        salt = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise KeySaltError(f"key salt file {path}: {exc.strerror or exc}") from None
    if len(salt) < MIN_SALT_BYTES:
        raise KeySaltError(
            f"key salt file {path} holds {len(salt)} bytes; want at least {MIN_SALT_BYTES} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return salt


def salt_from_env() -> bytes | None:
    """The salt named by LEADOPS_KEY_SALT_FILE, None when the variable is unset or empty."""
    path = os.environ.get(SALT_FILE_ENV, "").strip()
    return load_salt(Path(path)) if path else None


@functools.cache
def process_salt() -> bytes | None:
    """`salt_from_env()` read once per process (the scorer's key names must not change while
    it runs); `process_salt.cache_clear()` rereads it."""
    return salt_from_env()


def keyed_hash(salt: bytes | None, *parts: str) -> str:
    """Hex HMAC-SHA256 (128 bits) of `parts`, NUL-separated, keyed by `salt` (None: UNSALTED)."""
    message = b"\0".join(part.encode("utf-8", "surrogatepass") for part in parts)
    digest = hmac.new(salt if salt is not None else UNSALTED, message, hashlib.sha256)
    return digest.hexdigest()[:_DIGEST_HEX]


def chat_key(tenant: str, chat_id: str, *, salt: bytes | None) -> str:
    """The Redis list holding the chat memory of `chat_id` in `tenant`."""
    return f"{MEMORY_PREFIX}{tenant}:k{keyed_hash(salt, tenant, chat_id)}"


def legacy_chat_id(key: bytes) -> tuple[str, str] | None:
    """(tenant, chat_id) of a chat key named the old way, `mem:{tenant}:{chat_id}` with the
    chat_id as sent; None for a hashed name or a key of another shape."""
    if not key.startswith(MEMORY_PREFIX.encode()):
        return None
    tenant, sep, chat_id = key[len(MEMORY_PREFIX) :].partition(b":")
    if not sep or not tenant or not chat_id or _HASHED.fullmatch(chat_id):
        return None
    try:  # the scorer only ever wrote UTF-8 names; other bytes are not its chat keys
        return tenant.decode("utf-8"), chat_id.decode("utf-8")
    except UnicodeDecodeError:
        return None
