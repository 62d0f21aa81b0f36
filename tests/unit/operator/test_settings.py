"""The operator's LEADOPS_* settings: defaults, parsing, and refusals with the variable named."""

from __future__ import annotations

import pytest

from leadops.operator import builders, settings


def test_defaults_outside_a_cluster() -> None:
    got = settings.load({})
    assert got == settings.OperatorSettings(
        resync_seconds=60.0, workers=8, scorer_url="", alert_rules=True
    )


def test_in_a_pod_the_scorer_is_asked_at_its_service() -> None:
    got = settings.load({"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert got.scorer_url == "http://{name}-scorer.{namespace}.svc:" + str(builders.SCORER_PORT)


def test_explicit_values_win() -> None:
    got = settings.load(
        {
            "LEADOPS_RESYNC_SECONDS": "2",
            "LEADOPS_WORKERS": "3",
            "LEADOPS_SCORER_URL": "http://127.0.0.1:9/{name}",
            "LEADOPS_ALERT_RULES": "off",
            "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        }
    )
    assert (got.resync_seconds, got.workers, got.alert_rules) == (2.0, 3, False)
    assert got.scorer_url == "http://127.0.0.1:9/{name}"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LEADOPS_ALERT_RULES": "maybe"}, "LEADOPS_ALERT_RULES must be true or false"),
        ({"LEADOPS_RESYNC_SECONDS": "soon"}, "LEADOPS_RESYNC_SECONDS must be a number"),
        ({"LEADOPS_WORKERS": "0"}, "LEADOPS_WORKERS must be positive"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(settings.SettingsError, match=words):
        settings.load(env)


def test_cli_namespace() -> None:
    assert settings.cli_namespace({}) == "default"
    assert settings.cli_namespace({"LEADOPS_NAMESPACE": "acme"}) == "acme"
