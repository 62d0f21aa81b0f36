"""Settings: env names, the seed's REDIS_URL, secrets hidden, and every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from leadops.scorer.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        f"LEADOPS_{name.upper()}"
        for name in Settings.model_fields
        if f"`LEADOPS_{name.upper()}`" not in text
    ]
    assert missing == []


def test_env_prefix_and_the_seeds_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://seed:6379/0")
    monkeypatch.setenv("LEADOPS_API_KEYS", "k1, k2")
    monkeypatch.setenv("LEADOPS_STALE_HOURS", "12")
    settings = Settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://seed:6379/0"
    assert settings.env_api_keys() == ("k1", "k2")
    assert settings.stale_hours == 12
    # Secrets never show in a repr (and so never in a log line that prints settings).
    assert "k1" not in repr(settings)
    assert "seed:6379" not in repr(settings)


def test_leadops_redis_url_wins_over_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://seed:6379/0")
    monkeypatch.setenv("LEADOPS_REDIS_URL", "redis://ours:6379/1")
    settings = Settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://ours:6379/1"


def test_inconsistent_thresholds_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADOPS_AUC_CRITICAL", "0.7")
    monkeypatch.setenv("LEADOPS_AUC_WARNING", "0.6")
    with pytest.raises(ValidationError, match="auc_critical"):
        Settings()


def test_retention_defaults_overrides_and_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LEADOPS_RETENTION_DAYS", "LEADOPS_OUTCOME_RETENTION_DAYS"):
        monkeypatch.delenv(key, raising=False)
    keep = Settings().retention()
    assert (keep.lead_seconds, keep.outcome_seconds) == (90 * 86_400, 365 * 86_400)
    assert keep.trim_every_seconds == 300  # a tenth of the shortest, at most five minutes
    monkeypatch.setenv("LEADOPS_RETENTION_SECONDS", "5")
    monkeypatch.setenv("LEADOPS_OUTCOME_RETENTION_SECONDS", "20")
    keep = Settings().retention()
    assert (keep.lead_seconds, keep.outcome_seconds, keep.trim_every_seconds) == (5, 20, 1)
    # 0 keeps for ever: a lead with an outcome is then kept for ever too.
    monkeypatch.setenv("LEADOPS_RETENTION_SECONDS", "0")
    monkeypatch.setenv("LEADOPS_OUTCOME_RETENTION_SECONDS", "0")
    assert not Settings().retention().expires
    with pytest.raises(ValidationError, match="at least the lead retention"):
        Settings(retention_seconds=20, outcome_retention_seconds=5)
    with pytest.raises(ValidationError, match="needs lead retention"):
        Settings(retention_seconds=0, outcome_retention_seconds=5)
