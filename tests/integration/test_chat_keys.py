"""Chat memory key names hold no PII: the scorer writes hashed names, `leadops chat-key` finds
them, and the backfill moves old-style names (the chat_id as sent) to hashed ones without
ever merging two chats. Real redis-server, real scorer over HTTP, real CLI processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from leadops.pii import chat_keys
from tests.fixtures.artifacts import Built
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import KEY_SALT, StartScorer, chat_key
from tests.integration.guide import bash_blocks, commands

pytestmark = pytest.mark.redis

LEADOPS = [sys.executable, "-m", "leadops.cli"]
EMAIL_CHAT = "alice@example.com"
PHONE_CHAT = "+1 415 555 2671"
RUNBOOK = "Chat memory: key names and the key salt"


def _leadops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    return subprocess.run(
        [*LEADOPS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        check=False,
    )


def _backfill(url: str, *args: str, salt: Path | None) -> tuple[int, dict[str, Any]]:
    env = {chat_keys.SALT_FILE_ENV: str(salt)} if salt is not None else {}
    done = _leadops("pii-backfill", "--redis-url", url, *args, env=env)
    assert done.stdout, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return done.returncode, summary


@pytest.fixture
def salt_file(tmp_path: Path) -> Path:
    path = tmp_path / "key-salt"
    path.write_bytes(KEY_SALT + b"\n")  # a trailing newline, as `kubectl create secret` keeps
    return path


def _key_names(client: redis.Redis) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(match="*"))


def test_scorer_names_chat_memory_by_keyed_hash_and_chat_key_finds_it(
    redis_url: str, start_scorer: StartScorer, good_model: Built, salt_file: Path
) -> None:
    ingest_key = "acme-ingest-key-000001"  # tenant acme needs its ingest key (open: default)
    scorer = start_scorer(
        model=good_model.path, redis_url=redis_url, ingest_keys=f"acme={ingest_key}"
    )
    with scorer.client(api_key=ingest_key) as http:
        for chat_id in (EMAIL_CHAT, PHONE_CHAT):
            lead = {"tenant": "acme", "chat_id": chat_id, "details": "a quote please"}
            assert http.post("/v1/lead", json=lead).status_code == 200
    client = redis.Redis.from_url(redis_url)
    expected = sorted([chat_key("acme", EMAIL_CHAT), chat_key("acme", PHONE_CHAT)])
    deadline = time.monotonic() + 10  # the scorer writes behind: await its batch
    while (memory := [n for n in _key_names(client) if n.startswith("mem:")]) != expected:
        assert time.monotonic() < deadline, memory
        time.sleep(0.02)
    for name in memory:
        assert "alice" not in name
        assert "555" not in name
    # The runbook's LRANGE: `leadops chat-key` names the list, with the deployment's salt.
    printed = _leadops(
        "chat-key", "acme", EMAIL_CHAT, env={chat_keys.SALT_FILE_ENV: str(salt_file)}
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == chat_key("acme", EMAIL_CHAT) + "\n"
    assert client.lrange(printed.stdout.strip(), 0, -1) == [b"a quote please"]
    # Another salt names another key: the name cannot be found (or confirmed) without it.
    other = salt_file.with_name("other-salt")
    other.write_bytes(b"another-salt-0123456789")
    elsewhere = _leadops("chat-key", "acme", EMAIL_CHAT, "--salt-file", str(other))
    assert elsewhere.stdout.strip() not in memory


def test_chat_key_needs_a_usable_salt(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"too-short")
    for args, env, named in (
        (["acme", "chat1"], {}, chat_keys.SALT_FILE_ENV),
        (["acme", "chat1", "--salt-file", str(short)], {}, "want at least 16"),
        (["acme", "chat1"], {chat_keys.SALT_FILE_ENV: str(tmp_path / "absent")}, "absent"),
        (["ac:me", "chat1", "--unsalted"], {}, "TENANT"),
    ):
        done = _leadops("chat-key", *args, env=env)
        assert done.returncode == 2, args
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert named in done.stderr
    unsalted = _leadops("chat-key", "acme", "chat1", "--unsalted")
    assert unsalted.stdout.strip() == chat_keys.chat_key("acme", "chat1", salt=None)


def test_backfill_moves_old_names_to_hashed_ones_and_never_merges_two_chats(
    redis_url: str, salt_file: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush(f"mem:acme:{EMAIL_CHAT}", "hi, mail me at alice@example.com", "thanks")
    client.rpush(f"mem:acme:{PHONE_CHAT}", "call me on (415) 555-2671")
    client.rpush("mem:globex:chat7", "hello")
    before = _key_names(client)

    code, dry = _backfill(redis_url, "--dry-run", salt=salt_file)
    assert code == 0
    assert (dry["renamed_keys"], dry["merged_keys"], dry["unhashed_keys"]) == (3, 0, 0)
    assert _key_names(client) == before, "a dry run renames nothing"

    code, real = _backfill(redis_url, salt=salt_file)
    assert code == 0
    assert (real["renamed_keys"], real["merged_keys"], real["unhashed_keys"]) == (3, 0, 0)
    assert real["redacted_items"] == 2
    assert _key_names(client) == sorted(
        [chat_key("acme", EMAIL_CHAT), chat_key("acme", PHONE_CHAT), chat_key("globex", "chat7")]
    )
    # Two chats whose redacted names would be the same stay two lists, each with its own.
    assert client.lrange(chat_key("acme", EMAIL_CHAT), 0, -1) == [
        b"hi, mail me at [REDACTED]",
        b"thanks",
    ]
    assert client.lrange(chat_key("acme", PHONE_CHAT), 0, -1) == [b"call me on [REDACTED]"]
    assert client.lrange(chat_key("globex", "chat7"), 0, -1) == [b"hello"]

    code, again = _backfill(redis_url, salt=salt_file)
    assert (code, again["renamed_keys"], again["redacted_items"]) == (0, 0, 0)


def test_old_messages_go_in_front_of_the_same_chats_new_list(
    redis_url: str, salt_file: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush("mem:acme:chat9", "first", "second")
    client.rpush(chat_key("acme", "chat9"), "third (written by the upgraded scorer)")
    code, dry = _backfill(redis_url, "--dry-run", salt=salt_file)
    assert (code, dry["renamed_keys"], dry["merged_keys"]) == (0, 0, 1)
    code, summary = _backfill(redis_url, salt=salt_file)
    assert (code, summary["renamed_keys"], summary["merged_keys"]) == (0, 0, 1)
    assert _key_names(client) == [chat_key("acme", "chat9")]
    assert client.lrange(chat_key("acme", "chat9"), 0, -1) == [
        b"first",
        b"second",
        b"third (written by the upgraded scorer)",
    ]


def test_without_the_salt_old_names_are_counted_and_left(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush(f"mem:acme:{EMAIL_CHAT}", "hello")
    client.rpush(chat_key("acme", "chat1"), "already hashed")
    code, summary = _backfill(redis_url, salt=None)
    assert code == 0
    assert (summary["renamed_keys"], summary["unhashed_keys"]) == (0, 1)
    assert f"mem:acme:{EMAIL_CHAT}" in _key_names(client)


def test_a_new_name_holding_another_type_is_left_alone_and_reported(
    redis_url: str, salt_file: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush("mem:acme:chat5", "hello")
    client.set(chat_key("acme", "chat5"), "not a list")
    code, summary = _backfill(redis_url, salt=salt_file)
    assert code == 1  # partial: one key could not move
    assert (summary["renamed_keys"], summary["unhashed_keys"], summary["errors"]) == (0, 1, 1)
    assert client.lrange("mem:acme:chat5", 0, -1) == [b"hello"]
    assert client.get(chat_key("acme", "chat5")) == b"not a list"


def test_a_bad_salt_file_is_exit_2_before_anything_is_read(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush("mem:acme:chat5", "call (415) 555-2671")
    short = tmp_path / "short"
    short.write_bytes(b"short")
    done = _leadops("pii-backfill", "--redis-url", redis_url, "--key-salt-file", str(short))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "want at least 16" in done.stderr
    assert client.lrange("mem:acme:chat5", 0, -1) == [b"call (415) 555-2671"]


def test_operations_guide_chat_key_runbook(
    redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """docs/operations.md's replacement for the seed's `LRANGE mem:tenant1:chat1`, verbatim
    (the salt file written here instead of read from a cluster Secret)."""
    (block,) = [b for b in bash_blocks(RUNBOOK) if "leadops chat-key" in b]
    lines = commands(block, r"KEY=.*|redis-cli LRANGE .*|rm key-salt")
    assert len(lines) == 3
    client = redis.Redis.from_url(redis_url)
    client.rpush(chat_key("tenant1", "chat1"), "call me on [REDACTED]")
    (tmp_path / "key-salt").write_bytes(KEY_SALT)
    script = "\n".join(
        [
            "set -euo pipefail",
            # The guide's redis-cli talks to the default port; the test's server has its own.
            f'redis-cli() {{ command redis-cli -p {redis_server.port} "$@"; }}',
            *lines,
        ]
    )
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": path, "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "call me on [REDACTED]\n"
    assert not (tmp_path / "key-salt").exists()
