"""Reports of many scorer Pods: which are asked (EndpointSlices) and how answers combine."""

from __future__ import annotations

from typing import Any

from leadops.operator.ask_scorers import endpoint_urls
from leadops.operator.world import ScorerReport, combine


def report(health: str, version: int = 2, drift: str = "", auc: str = "0.8") -> ScorerReport:
    return ScorerReport(version=version, health=health, auc=auc, drift_score=drift)


def test_the_worst_health_wins_with_its_pods_version_and_auc() -> None:
    got = combine(
        [report("ok"), report("critical_low_auc", auc="0.5"), report("warning_stale")], asked=4
    )
    assert got == ScorerReport(
        version=2, health="critical_low_auc", auc="0.5", drift_score="", pods=3, asked=4
    )


def test_drift_is_the_highest_among_pods_of_the_reported_version() -> None:
    got = combine(
        [
            report("ok", drift="1.5"),
            report("ok", drift="2.75"),
            report("ok"),
            report("ok", version=1, drift="9.0"),  # an old Pod mid-rollout: another model
        ],
        asked=4,
    )
    assert got is not None
    assert (got.version, got.drift_score, got.pods) == (2, "2.75", 4)


def test_an_unknown_word_is_never_taken_for_ok_and_nothing_answered_is_no_report() -> None:
    got = combine([report("ok"), report("melting")], asked=2)
    assert got is not None
    assert got.health == "melting"
    assert combine([], asked=3) is None


def slice_(address_type: str, port: int, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "addressType": address_type,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    }


def test_every_ready_endpoint_is_asked_once_on_its_slices_port() -> None:
    slices = [
        slice_(
            "IPv4",
            8080,
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["10.0.0.3"]},  # unset ready counts as ready
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
        ),
        slice_("IPv6", 8080, {"addresses": ["fd00::7"], "conditions": {"ready": True}}),
        {"addressType": "IPv4", "ports": [], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert endpoint_urls(slices) == [
        "http://10.0.0.1:8080",
        "http://10.0.0.3:8080",
        "http://[fd00::7]:8080",
    ]
