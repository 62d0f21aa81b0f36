"""Secret settings read as NAME or from the file NAME_FILE names (how operator Pods get them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadops.cliutil import UsageError
from leadops.jobs.pii_backfill import command as backfill
from leadops.scorer.settings import Settings
from leadops.secret_env import secret_from_env


def test_the_value_wins_then_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://r:6379/0\n")
    env = {"X_FILE": str(secret)}
    assert secret_from_env("X", env) == "redis://r:6379/0"
    assert secret_from_env("X", {**env, "X": "redis://own:6379/0"}) == "redis://own:6379/0"
    assert secret_from_env("X", {}) is None


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read"),
        (b"\n", "is empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 70000, "over"),
    ],
)
def test_an_unusable_file_is_one_clear_line(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=f"^X_FILE: .*{said}") as caught:
        secret_from_env("X", {"X_FILE": str(path)})
    assert "\n" not in str(caught.value)


def test_the_scorer_reads_its_redis_url_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://from-file:6379/0\n")
    monkeypatch.delenv("LEADOPS_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("LEADOPS_REDIS_URL_FILE", str(secret))
    settings = Settings()
    assert settings.redis_url_value() == "redis://from-file:6379/0"
    assert "from-file" not in repr(settings)
    secret.write_text("")
    with pytest.raises(UsageError, match=r"LEADOPS_REDIS_URL_FILE: .* is empty"):
        settings.redis_url_value()


def test_the_backfill_reads_its_redis_url_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://from-file:6379/0")
    for name in ("REDIS_URL", "LEADOPS_REDIS_URL", "REDIS_URL_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADOPS_REDIS_URL_FILE", str(secret))
    assert backfill._redis_url(None) == "redis://from-file:6379/0"
    monkeypatch.delenv("LEADOPS_REDIS_URL_FILE")
    with pytest.raises(UsageError, match="no Redis URL"):
        backfill._redis_url(None)
