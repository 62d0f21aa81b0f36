"""spec.networkPolicy: the policies built (golden YAML), wired into children and the plan."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadops.operator import builders, crd, network_policy, spec
from leadops.operator.actions import Ensure, RemoveChild
from leadops.operator.plan import plan

from .worlds import NOW, world
from .worlds import spec as lm_spec

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "network-policies.yaml"
OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
POLICY: dict[str, Any] = {
    "enabled": True,
    "scorerClients": [
        {"namespaceLabels": {"kubernetes.io/metadata.name": "web"}},
        {"namespaceLabels": {"team": "growth"}, "podLabels": {"app": "crm-sync"}},
        {"podLabels": {"app": "lead-router"}},
        {"cidr": "10.20.0.0/16"},
    ],
    "redis": {"podLabels": {"app": "redis"}},
    "apiServer": {"peers": [{"cidr": "10.201.0.1/32"}], "ports": [6443]},
}


def _lm(**policy: Any) -> spec.LeadModelSpec:
    return lm_spec(networkPolicy={**POLICY, **policy})


def _by_name(lm: spec.LeadModelSpec) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in network_policy.policies(OWNER, lm)}


def test_golden() -> None:
    rendered = yaml.safe_dump(
        {"items": network_policy.policies(OWNER, _lm())}, sort_keys=True, width=100
    )
    if os.environ.get("LEADOPS_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(rendered)
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; run with LEADOPS_UPDATE_GOLDEN=1"
    assert rendered == GOLDEN.read_text(), f"network policies differ from {GOLDEN}"


def test_off_by_default_no_policy_is_made() -> None:
    lm = lm_spec()
    assert lm.network_policy.enabled is False
    assert network_policy.policies(OWNER, lm) == []
    kinds = {
        m["kind"]
        for m in builders.children(
            OWNER, lm, builders.Rollout(), prometheus_operator=False, alert_rules=False
        )
    }
    assert "NetworkPolicy" not in kinds


def test_scorer_admits_only_its_port_from_the_named_clients_monitoring_and_operator() -> None:
    scorer = _by_name(_lm())["acme-scorer"]["spec"]
    assert scorer["podSelector"]["matchLabels"] == builders.scorer_selector(OWNER)
    assert scorer["policyTypes"] == ["Ingress"]
    (rule,) = scorer["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": builders.SCORER_PORT}]
    sources = rule["from"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in sources
    # Labels only: Pods of the LeadModel's namespace; namespace and Pod labels: both must match.
    assert {"podSelector": {"matchLabels": {"app": "lead-router"}}} in sources
    assert {
        "namespaceSelector": {"matchLabels": {"team": "growth"}},
        "podSelector": {"matchLabels": {"app": "crm-sync"}},
    } in sources
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert monitoring in sources
    operator = next(
        s
        for s in sources
        if s.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
        == "operator"
    )
    assert operator["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "leadops-system"
    }


def test_scorer_always_admits_its_own_training_job_and_the_named_namespaces() -> None:
    lm = _lm(scorerClients=[], monitoringNamespace="prom", operatorNamespace="ops")
    sources = _by_name(lm)["acme-scorer"]["spec"]["ingress"][0]["from"]
    names = [
        s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        for s in sources
    ]
    assert names == ["prom", "ops", None]
    train_pods = builders.training_cronjob(OWNER, lm)["spec"]["jobTemplate"]["spec"]["template"]
    assert (
        sources[2]["podSelector"]["matchLabels"].items() <= train_pods["metadata"]["labels"].items()
    )


def _egress_ports(policy: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_training_reaches_only_dns_the_scorer_and_the_api_server() -> None:
    train = _by_name(_lm())["acme-train"]
    assert train["spec"]["policyTypes"] == ["Egress"]
    assert _egress_ports(train) == {("UDP", 53), ("TCP", 53), ("TCP", 8080), ("TCP", 6443)}
    dns, scorer, api = train["spec"]["egress"]
    assert "to" not in dns
    assert scorer["to"] == [{"podSelector": {"matchLabels": builders.scorer_selector(OWNER)}}]
    assert api["to"] == [{"ipBlock": {"cidr": "10.201.0.1/32"}}]
    pods = builders.training_cronjob(OWNER, _lm())["spec"]["jobTemplate"]["spec"]["template"]
    assert train["spec"]["podSelector"]["matchLabels"].items() <= pods["metadata"]["labels"].items()


def test_backfill_reaches_only_dns_and_redis() -> None:
    backfill = _by_name(_lm())["acme-pii-backfill"]
    assert _egress_ports(backfill) == {("UDP", 53), ("TCP", 53), ("TCP", 6379)}
    assert backfill["spec"]["egress"][1]["to"] == [
        {"podSelector": {"matchLabels": {"app": "redis"}}}
    ]
    pods = builders.backfill_cronjob(OWNER, _lm())["spec"]["jobTemplate"]["spec"]["template"]
    assert (
        backfill["spec"]["podSelector"]["matchLabels"].items() <= pods["metadata"]["labels"].items()
    )


def test_redis_in_the_namespace_admits_only_this_scorer_and_backfill() -> None:
    redis = _by_name(_lm(redis={"podLabels": {"app": "redis"}, "port": 6380}))["acme-redis"]
    assert redis["spec"]["podSelector"] == {"matchLabels": {"app": "redis"}}
    (rule,) = redis["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6380}]
    scorer_pods = builders.scorer_deployment(OWNER, _lm(), builders.Rollout())["spec"]["template"]
    backfill_pods = builders.backfill_cronjob(OWNER, _lm())["spec"]["jobTemplate"]["spec"][
        "template"
    ]
    selected = [s["podSelector"]["matchLabels"] for s in rule["from"]]
    assert [s.items() <= scorer_pods["metadata"]["labels"].items() for s in selected] == [
        True,
        False,
    ]
    assert [s.items() <= backfill_pods["metadata"]["labels"].items() for s in selected] == [
        False,
        True,
    ]


def test_redis_elsewhere_gets_no_ingress_policy_and_unnamed_targets_are_port_only() -> None:
    external = _by_name(_lm(redis={"peers": [{"cidr": "10.9.0.7/32"}]}))
    assert "acme-redis" not in external
    assert external["acme-pii-backfill"]["spec"]["egress"][1]["to"] == [
        {"ipBlock": {"cidr": "10.9.0.7/32"}}
    ]
    loose = _by_name(_lm(redis={}, apiServer={}))
    assert "to" not in loose["acme-pii-backfill"]["spec"]["egress"][1]
    assert loose["acme-train"]["spec"]["egress"][2] == {
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    }


@pytest.mark.parametrize("redis", [{}, {"podLabels": {"app": "redis"}}])
def test_child_keys_name_the_policies_children_builds_before_the_pods(
    redis: dict[str, Any],
) -> None:
    lm = _lm(redis=redis)
    built = builders.children(
        OWNER, lm, builders.Rollout(), prometheus_operator=False, alert_rules=False
    )
    keys = [(m["kind"], m["metadata"]["name"]) for m in built]
    assert keys == builders.child_keys(
        "acme", prometheus_operator=False, alert_rules=False, policy=lm.network_policy
    )
    last_policy = max(i for i, (kind, _) in enumerate(keys) if kind == "NetworkPolicy")
    first_pods = min(i for i, (kind, _) in enumerate(keys) if kind in {"Deployment", "CronJob"})
    assert last_policy < first_pods
    assert all(m["metadata"]["ownerReferences"] == [OWNER.reference()] for m in built)


def _live(name: str, uid: str) -> dict[str, Any]:
    owner = {"kind": "LeadModel", "uid": uid, "controller": True}
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": [owner]},
    }


def test_plan_ensures_the_policies_when_enabled() -> None:
    p = plan(lm_spec(networkPolicy={"enabled": True}), world(), NOW)
    assert [a.name for a in p.of(Ensure) if a.kind == "NetworkPolicy"] == [
        "lm-scorer",
        "lm-train",
        "lm-pii-backfill",
    ]
    assert p.of(RemoveChild) == []


def test_plan_removes_its_policies_when_disabled_but_not_anothers() -> None:
    children = {
        ("NetworkPolicy", "lm-scorer"): _live("lm-scorer", "uid-1"),
        ("NetworkPolicy", "lm-redis"): _live("lm-redis", "uid-1"),
        ("NetworkPolicy", "lm-train"): _live("lm-train", "someone-else"),
    }
    obs = replace(world(), children=children)
    off = plan(lm_spec(), obs, NOW)
    assert sorted(a.name for a in off.of(RemoveChild)) == ["lm-redis", "lm-scorer"]
    # Still enabled without redis.podLabels: only the Redis policy goes.
    on = plan(lm_spec(networkPolicy={"enabled": True}), obs, NOW)
    assert on.of(RemoveChild) == [RemoveChild(kind="NetworkPolicy", name="lm-redis")]


@pytest.mark.parametrize(
    ("peer", "error"),
    [
        ({"cidr": "10.0.0.0/8", "podLabels": {"app": "x"}}, "either a cidr or"),
        ({}, "either a cidr or"),
    ],
)
def test_a_peer_is_a_cidr_or_labels(peer: dict[str, Any], error: str) -> None:
    lm = lm_spec(networkPolicy={"scorerClients": [peer]})
    assert [e for e in lm.semantic_errors() if error in e] == [
        f"networkPolicy.scorerClients[0]: {spec.PEER_RULE_MESSAGE}"
    ]


@pytest.mark.parametrize(
    "policy",
    [
        {"scorerClients": [{"podLabels": {"not a key": "x"}}]},
        {"scorerClients": [{"podLabels": {"app": "bad value!"}}]},
        {"scorerClients": [{"namespaceLabels": {}}]},
        {"scorerClients": [{"cidr": "10.0.0.300/8"}]},
        {"redis": {"podLabels": {"-leading": "x"}}},
        {"redis": {"port": 0}},
        {"apiServer": {"ports": []}},
        {"monitoringNamespace": "Not_A_Namespace"},
    ],
)
def test_invalid_policy_specs_are_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        lm_spec(networkPolicy=policy)


def test_the_crd_carries_the_peer_rule() -> None:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    peer = schema["properties"]["spec"]["properties"]["networkPolicy"]["properties"][
        "scorerClients"
    ]["items"]
    assert peer["x-kubernetes-validations"] == [
        {"rule": spec.PEER_RULE, "message": spec.PEER_RULE_MESSAGE}
    ]
    assert peer["properties"]["podLabels"]["additionalProperties"]["type"] == "string"


def test_the_scorer_admits_the_replay_job_only_with_the_replay_gate() -> None:
    replay = {"app.kubernetes.io/instance": "acme", "app.kubernetes.io/component": "replay"}

    def sources(lm: spec.LeadModelSpec) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = _by_name(lm)["acme-scorer"]["spec"]["ingress"][0]["from"]
        return found

    assert {"podSelector": {"matchLabels": replay}} not in sources(_lm())
    guarded = lm_spec(networkPolicy=POLICY, guards={"replay": {}})
    assert {"podSelector": {"matchLabels": replay}} in sources(guarded)


def test_the_replay_jobs_may_send_only_to_dns_the_scorer_and_the_bucket() -> None:
    assert "acme-replay" not in _by_name(_lm())
    guarded = lm_spec(networkPolicy=POLICY, guards={"replay": {}})
    replay = _by_name(guarded)["acme-replay"]["spec"]
    assert replay["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "acme",
        "app.kubernetes.io/component": builders.REPLAY_COMPONENT,
    }
    assert replay["policyTypes"] == ["Egress"]
    dns, scorer = replay["egress"]
    assert {p["port"] for p in dns["ports"]} == {network_policy.DNS_PORT}
    assert scorer["to"] == [{"podSelector": {"matchLabels": builders.scorer_selector(OWNER)}}]
    assert scorer["ports"] == [{"protocol": "TCP", "port": builders.SCORER_PORT}]
    # Artifacts in a bucket: its endpoint's port too, for the init containers' downloads.
    s3 = {
        "bucket": "models",
        "endpoint": "http://minio.storage:9000",
        "credentialsSecretRef": {"name": "s3", "key": "credentials"},
    }
    in_s3 = lm_spec(networkPolicy=POLICY, guards={"replay": {}}, artifacts={"s3": s3})
    *_, bucket = _by_name(in_s3)["acme-replay"]["spec"]["egress"]
    assert bucket == {"ports": [{"protocol": "TCP", "port": 9000}]}
    # Named where children() builds it, before the Pods; removed with the gate.
    built = builders.children(
        OWNER, guarded, builders.Rollout(), prometheus_operator=False, alert_rules=False
    )
    assert [(m["kind"], m["metadata"]["name"]) for m in built] == builders.child_keys(
        "acme",
        prometheus_operator=False,
        alert_rules=False,
        policy=guarded.network_policy,
        replays=True,
    )
