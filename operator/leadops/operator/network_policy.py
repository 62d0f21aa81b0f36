"""Pure builders of a LeadModel's NetworkPolicies (`spec.networkPolicy`, opt-in).

The scorer admits only its port, and only from the clients the spec names, the monitoring
namespace, the operator and its own training and replay Jobs. The Jobs may send only what they
need: the training Job DNS, the scorer and the API server; the replay Jobs (spec.guards.replay)
DNS and the scorer; the backfill DNS and Redis; with artifacts in s3, the training and replay
Jobs the bucket endpoint's port too. Redis Pods in the LeadModel's namespace (`redis.podLabels`)
admit only this LeadModel's scorer and backfill. Policies are additive, so two LeadModels
sharing a Redis each add their own. Tested against golden YAML in tests/unit/golden/.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from leadops import objectstore
from leadops.operator import builders, spec

KIND = "NetworkPolicy"
DNS_PORT = 53
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# The chart's operator Pod carries these (charts/leadops/templates/_helpers.tpl).
OPERATOR_POD_LABELS = {
    "app.kubernetes.io/part-of": "leadops",
    "app.kubernetes.io/component": "operator",
}


def names(leadmodel: str) -> dict[str, str]:
    return {
        "scorer": f"{leadmodel}-scorer",
        "train": f"{leadmodel}-train",
        "backfill": f"{leadmodel}-pii-backfill",
        "redis": f"{leadmodel}-redis",
        "replay": f"{leadmodel}-replay",
    }


def keys(
    leadmodel: str, policy: spec.NetworkPolicy, *, replays: bool = False
) -> list[tuple[str, str]]:
    """(kind, name) of the policies `policies()` makes for this spec, in its order
    (`replays`: spec.guards.replay is set)."""
    if not policy.enabled:
        return []
    n = names(leadmodel)
    out = [(KIND, n["scorer"]), (KIND, n["train"]), (KIND, n["backfill"])]
    if replays:
        out.append((KIND, n["replay"]))
    if policy.redis.pod_labels:
        out.append((KIND, n["redis"]))
    return out


def all_keys(leadmodel: str) -> list[tuple[str, str]]:
    """Every policy name a LeadModel may own: read each pass, so one no longer wanted goes."""
    return [(KIND, name) for name in names(leadmodel).values()]


def _selector(owner: builders.Owner, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": owner.name, "app.kubernetes.io/component": component}


def _peer(peer: spec.NetworkPeer) -> dict[str, Any]:
    if peer.cidr is not None:
        return {"ipBlock": {"cidr": peer.cidr}}
    out: dict[str, Any] = {}
    if peer.namespace_labels:
        out["namespaceSelector"] = {"matchLabels": dict(sorted(peer.namespace_labels.items()))}
    if peer.pod_labels:
        out["podSelector"] = {"matchLabels": dict(sorted(peer.pod_labels.items()))}
    return out


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _dns() -> dict[str, Any]:
    """Port 53 anywhere: cluster DNS may be a Pod or, as on the real node, the node itself."""
    return {"ports": [{"protocol": "UDP", "port": DNS_PORT}, *_tcp(DNS_PORT)]}


def _policy(
    owner: builders.Owner, name: str, component: str, selector: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": builders.labels(owner, component),
            "ownerReferences": [owner.reference()],
        },
        "spec": {"podSelector": {"matchLabels": selector}, **body},
    }


def scorer_policy(
    owner: builders.Owner, policy: spec.NetworkPolicy, *, replays: bool = False
) -> dict[str, Any]:
    """Ingress to the scorer: its port only, from the named clients and LeadOps' own callers."""
    sources = [_peer(p) for p in policy.scorer_clients]
    sources.append(_namespace(policy.monitoring_namespace))
    sources.append(
        {
            **_namespace(policy.operator_namespace),
            "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
        }
    )
    # The training Job exports outcomes from the scorer; so does the replay Job (guards.replay).
    sources.append({"podSelector": {"matchLabels": _selector(owner, "train")}})
    if replays:
        sources.append(
            {"podSelector": {"matchLabels": _selector(owner, builders.REPLAY_COMPONENT)}}
        )
    return _policy(
        owner,
        names(owner.name)["scorer"],
        "scorer",
        builders.scorer_selector(owner),
        {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": _tcp(builders.SCORER_PORT)}],
        },
    )


def _s3_port(s3: spec.S3Artifacts) -> int:
    """The TCP port of the artifact bucket's endpoint (AWS S3 when none is named: 443)."""
    parts = urlsplit(s3.endpoint or objectstore.DEFAULT_ENDPOINT)
    return parts.port or (80 if parts.scheme == "http" else 443)


def training_policy(
    owner: builders.Owner, policy: spec.NetworkPolicy, *, s3: spec.S3Artifacts | None = None
) -> dict[str, Any]:
    """Egress of the training Job: DNS, the scorer's export, the API server (it publishes), and
    the artifact bucket's endpoint port when spec.artifacts is s3 (any address: an object
    store is usually outside the cluster, behind names that resolve to many addresses)."""
    api: dict[str, Any] = {"ports": _tcp(*policy.api_server.ports)}
    if policy.api_server.peers:
        api = {"to": [_peer(p) for p in policy.api_server.peers], **api}
    return _policy(
        owner,
        names(owner.name)["train"],
        "train",
        _selector(owner, "train"),
        {"policyTypes": ["Egress"], "egress": [_dns(), _scorer(owner), api, *_bucket(s3)]},
    )


def replay_policy(owner: builders.Owner, *, s3: spec.S3Artifacts | None = None) -> dict[str, Any]:
    """Egress of the replay Jobs: DNS, the scorer's export and the artifact bucket's endpoint
    port when spec.artifacts is s3 (its init containers download both versions). No API
    server: the verdict leaves in the Pod's termination message."""
    return _policy(
        owner,
        names(owner.name)["replay"],
        builders.REPLAY_COMPONENT,
        _selector(owner, builders.REPLAY_COMPONENT),
        {"policyTypes": ["Egress"], "egress": [_dns(), _scorer(owner), *_bucket(s3)]},
    )


def _scorer(owner: builders.Owner) -> dict[str, Any]:
    """To this LeadModel's scorer Pods, their port only (the outcome export)."""
    return {
        "to": [{"podSelector": {"matchLabels": builders.scorer_selector(owner)}}],
        "ports": _tcp(builders.SCORER_PORT),
    }


def _bucket(s3: spec.S3Artifacts | None) -> list[dict[str, Any]]:
    return [{"ports": _tcp(_s3_port(s3))}] if s3 is not None else []


def backfill_policy(owner: builders.Owner, policy: spec.NetworkPolicy) -> dict[str, Any]:
    """Egress of the PII backfill: DNS and Redis, nothing else (it never calls the API)."""
    redis = policy.redis
    targets = [_peer(p) for p in redis.peers]
    if redis.pod_labels:
        targets.insert(0, {"podSelector": {"matchLabels": dict(sorted(redis.pod_labels.items()))}})
    rule: dict[str, Any] = {"ports": _tcp(redis.port)}
    if targets:
        rule = {"to": targets, **rule}
    return _policy(
        owner,
        names(owner.name)["backfill"],
        "pii-backfill",
        _selector(owner, "pii-backfill"),
        {"policyTypes": ["Egress"], "egress": [_dns(), rule]},
    )


def redis_policy(owner: builders.Owner, policy: spec.NetworkPolicy) -> dict[str, Any] | None:
    """Ingress to the Redis Pods in the namespace: from this LeadModel's scorer and backfill."""
    labels = policy.redis.pod_labels
    if not labels:
        return None
    sources = [
        {"podSelector": {"matchLabels": builders.scorer_selector(owner)}},
        {"podSelector": {"matchLabels": _selector(owner, "pii-backfill")}},
    ]
    return _policy(
        owner,
        names(owner.name)["redis"],
        "redis",
        dict(sorted(labels.items())),
        {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": _tcp(policy.redis.port)}],
        },
    )


def policies(owner: builders.Owner, lm: spec.LeadModelSpec) -> list[dict[str, Any]]:
    """Every NetworkPolicy of one LeadModel (none unless spec.networkPolicy.enabled)."""
    policy = lm.network_policy
    if not policy.enabled:
        return []
    replays = lm.guards.replay is not None
    out = [
        scorer_policy(owner, policy, replays=replays),
        training_policy(owner, policy, s3=lm.artifacts.s3),
        backfill_policy(owner, policy),
    ]
    if replays:
        out.append(replay_policy(owner, s3=lm.artifacts.s3))
    redis = redis_policy(owner, policy)
    if redis is not None:
        out.append(redis)
    return out
