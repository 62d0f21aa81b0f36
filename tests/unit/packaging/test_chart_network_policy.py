"""The chart's NetworkPolicy: the operator reaches only DNS, the API server and the scorers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadops.operator import builders, spec
from tests.unit.packaging.chart import by_kind, one, render

OWNER = builders.Owner(name="acme", namespace="sales", uid="u")


def _ports(rule: dict[str, Any]) -> set[tuple[str, int | str]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_off_by_default(helm_bin: Path) -> None:
    assert by_kind(render(helm_bin), "NetworkPolicy") == []


def test_the_operator_reaches_only_dns_the_api_server_and_the_scorers(helm_bin: Path) -> None:
    objects = render(
        helm_bin,
        "networkPolicy.enabled=true",
        "networkPolicy.apiServer.cidrs={10.201.0.1/32}",
        "networkPolicy.apiServer.ports={6443}",
    )
    policy = one(objects, "NetworkPolicy")["spec"]
    pod = one(objects, "Deployment")["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    dns, api, scorers = policy["egress"]
    assert "to" not in dns
    assert _ports(dns) == {("UDP", 53), ("TCP", 53)}
    assert api == {
        "ports": [{"protocol": "TCP", "port": 6443}],
        "to": [{"ipBlock": {"cidr": "10.201.0.1/32"}}],
    }
    assert _ports(scorers) == {("TCP", builders.SCORER_PORT)}
    scorer_pods = builders.scorer_deployment(OWNER, _spec(), builders.Rollout())["spec"]["template"]
    for peer in scorers["to"]:
        assert peer["namespaceSelector"] == {}
        assert (
            peer["podSelector"]["matchLabels"].items() <= scorer_pods["metadata"]["labels"].items()
        )
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    named = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert _ports(ingress) == {("TCP", "metrics")}
    assert "metrics" in named


def test_a_namespaced_operator_reaches_only_the_watched_namespaces_scorers(helm_bin: Path) -> None:
    objects = render(helm_bin, "networkPolicy.enabled=true", "operator.watchNamespaces={sales,ops}")
    scorers = one(objects, "NetworkPolicy")["spec"]["egress"][2]["to"]
    assert [p["namespaceSelector"]["matchLabels"] for p in scorers] == [
        {"kubernetes.io/metadata.name": "sales"},
        {"kubernetes.io/metadata.name": "ops"},
    ]


def _spec() -> spec.LeadModelSpec:
    return spec.LeadModelSpec.model_validate({"redis": {"urlSecretRef": {"name": "r", "key": "u"}}})
