"""--selector: which LeadModels one operator of several acts on."""

from __future__ import annotations

import pytest

from leadops.operator import settings, shard


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("leadops.io/shard=a", {"leadops.io/shard": "a"}, True),
        ("leadops.io/shard=a", {"leadops.io/shard": "b"}, False),
        ("leadops.io/shard==a", {"leadops.io/shard": "a"}, True),
        ("leadops.io/shard!=a", {}, True),
        ("leadops.io/shard!=a", {"leadops.io/shard": "a"}, False),
        ("team", {"team": "x"}, True),
        ("team", {}, False),
        ("!team", {}, True),
        ("!team", {"team": ""}, False),
        ("team=sales, tier!=canary", {"team": "sales", "tier": "prod"}, True),
        ("team=sales,tier!=canary", {"team": "sales", "tier": "canary"}, False),
    ],
)
def test_selector_matches_like_kubernetes(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    assert shard.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tier in (a,b)", "equality-based"),
        ("a=b,,c", "empty requirement"),
        ("-bad=x", "not a label key"),
        ("k=has space", "not a label value"),
    ],
)
def test_bad_selectors_are_named(text: str, problem: str) -> None:
    with pytest.raises(shard.SelectorError, match=problem):
        shard.parse(text)


def test_setting_is_parsed_once_and_refused_with_its_name() -> None:
    assert settings.load({"LEADOPS_SELECTOR": "team=sales"}).selector.matches({"team": "sales"})
    with pytest.raises(settings.SettingsError, match="LEADOPS_SELECTOR"):
        settings.load({"LEADOPS_SELECTOR": "tier in (a)"})
