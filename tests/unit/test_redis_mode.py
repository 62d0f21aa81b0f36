"""The Redis mode's parsing and the hash slots multi-key scripts are grouped by (the values
Redis itself computes: CLUSTER KEYSLOT, checked against a real cluster in
tests/integration/scorer/test_cluster_store.py)."""

from __future__ import annotations

import pytest

from leadops import redis_mode


def test_modes_parse_and_a_bad_one_names_the_choices() -> None:
    assert redis_mode.parse_mode("cluster") is redis_mode.RedisMode.CLUSTER
    assert redis_mode.parse_mode(" standalone ") is redis_mode.RedisMode.STANDALONE
    with pytest.raises(ValueError, match="choose one of standalone, cluster"):
        redis_mode.parse_mode("sharded")


def test_the_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(redis_mode.MODE_ENV, raising=False)
    assert redis_mode.mode_from_env() is redis_mode.RedisMode.STANDALONE
    monkeypatch.setenv(redis_mode.MODE_ENV, "cluster")
    assert redis_mode.mode_from_env() is redis_mode.RedisMode.CLUSTER


def test_slots_follow_hash_tags() -> None:
    assert redis_mode.slot("123456789") == 12739  # the CRC16 check value Redis documents
    assert redis_mode.slot("{user1000}.following") == redis_mode.slot("user1000")
    assert redis_mode.slot(b"foo{}{bar}") == redis_mode.slot("foo{}{bar}")  # empty tag: whole


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        ("mem:acme:k0123", "{mem:acme:k0123}"),
        ("mem:{acme}:chat", "{acme}"),
        ("a{}b", None),
        ("a}b", None),
    ],
)
def test_a_tag_puts_another_key_on_the_same_slot(key: str, tag: str | None) -> None:
    assert redis_mode.same_slot_tag(key) == tag
    if tag is not None:
        assert redis_mode.slot(f"other:{tag}:x") == redis_mode.slot(key)
