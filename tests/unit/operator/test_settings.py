"""The operator's LEADOPS_* settings: defaults, parsing, and refusals with the variable named."""

from __future__ import annotations

import pytest

from leadops.operator import builders, settings


def test_defaults_outside_a_cluster() -> None:
    got = settings.load({})
    assert got == settings.OperatorSettings(
        resync_seconds=60.0, workers=8, scorer_url="", alert_rules=True
    )


def test_in_a_pod_every_ready_scorer_pod_is_asked() -> None:
    got = settings.load({"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert (got.scorer_pods, got.scorer_url) == (True, "")


def test_an_explicit_scorer_url_is_asked_instead_of_the_pods() -> None:
    got = settings.load(
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "LEADOPS_SCORER_URL": "http://scorer:8080"}
    )
    assert (got.scorer_pods, got.scorer_url) == (False, "http://scorer:8080")
    assert settings.load({"LEADOPS_SCORER_PODS": "true"}).scorer_pods is True


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
        (
            {"LEADOPS_ALERT_FOR": "LeadModelHighDrift"},
            "LEADOPS_ALERT_FOR: .* is not ALERT=DURATION",
        ),
        ({"LEADOPS_ALERT_FOR": "HighDrift=1m"}, "LEADOPS_ALERT_FOR: 'HighDrift' is not a LeadOps"),
        (
            {"LEADOPS_ALERT_FOR": "LeadModelHighDrift=an hour"},
            "LEADOPS_ALERT_FOR: 'an hour' for LeadModelHighDrift is not a Prometheus duration",
        ),
        ({"LEADOPS_ALERT_FOR": "LeadStoreDown=s"}, "'s' for LeadStoreDown is not a Prometheus"),
        ({"LEADOPS_SCRAPE_INTERVAL": "often"}, "LEADOPS_SCRAPE_INTERVAL: 'often' is not a Prom"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(settings.SettingsError, match=words):
        settings.load(env)


def test_alert_for_durations_are_read_sorted_by_alert() -> None:
    assert settings.load({}).alert_for == ()
    got = settings.load(
        {"LEADOPS_ALERT_FOR": " LeadModelHighDrift=30s, LeadModelCriticalAuc=1m30s ,"}
    )
    assert got.alert_for == (("LeadModelCriticalAuc", "1m30s"), ("LeadModelHighDrift", "30s"))


def test_scrape_interval_defaults_to_30s() -> None:
    assert settings.load({}).scrape_interval == "30s"
    assert settings.load({"LEADOPS_SCRAPE_INTERVAL": " 5s "}).scrape_interval == "5s"


def test_cli_namespace() -> None:
    assert settings.cli_namespace({}) == "default"
    assert settings.cli_namespace({"LEADOPS_NAMESPACE": "acme"}) == "acme"


def test_jobs_image_is_read_trimmed() -> None:
    assert settings.load({}).jobs_image == ""
    got = settings.load({"LEADOPS_JOBS_IMAGE": " registry.example/tools:7 "})
    assert got.jobs_image == "registry.example/tools:7"


@pytest.mark.parametrize(
    ("scorer", "configured", "jobs"),
    [
        ("docker.io/leadops/scorer:0.1.0", "", "docker.io/leadops/jobs:0.1.0"),
        ("leadops/scorer:0.1.0", "", "leadops/jobs:0.1.0"),
        ("registry:5000/team/scorer", "", "registry:5000/team/jobs"),
        # Another name, or a digest: no sibling can be known, the scorer image runs the jobs.
        ("registry.example/acme/lead-scorer:3", "", "registry.example/acme/lead-scorer:3"),
        (
            "docker.io/leadops/scorer@sha256:" + "a" * 64,
            "",
            "docker.io/leadops/scorer@sha256:" + "a" * 64,
        ),
        ("docker.io/leadops/scorer:0.1.0", "registry.example/tools:7", "registry.example/tools:7"),
    ],
)
def test_jobs_image_defaults_to_the_scorer_images_sibling(
    scorer: str, configured: str, jobs: str
) -> None:
    assert builders.jobs_image(scorer, configured) == jobs
