"""spec.networkPolicy against the real local control plane: the API server admits the
policies as built, the CRD's CEL rule refuses a malformed peer, and the operator removes the
policies it owns once they are no longer wanted. Enforcement itself needs a real node with a
NetworkPolicy implementation (docs/security.md#networkpolicies)."""

from __future__ import annotations

from typing import Any

import pytest
from kopf.testing import KopfRunner

from leadops.operator import builders, kube, network_policy, spec
from tests.integration.test_operator import (  # noqa: F401 (fixtures)
    NAME,
    api,
    crd_installed,
    get_lm,
    leadmodel,
    running,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

POLICY: dict[str, Any] = {
    "enabled": True,
    "scorerClients": [
        {"namespaceLabels": {"team": "web"}, "podLabels": {"app": "frontend"}},
        {"cidr": "10.30.0.0/16"},
    ],
    "redis": {"podLabels": {"app": "redis"}},
    "apiServer": {"peers": [{"cidr": "10.201.0.1/32"}], "ports": [6443]},
}


def _policies(client: kube.Kube, ns: str) -> dict[str, dict[str, Any]]:
    found = (client.get("NetworkPolicy", ns, name) for _, name in network_policy.all_keys(NAME))
    return {p["metadata"]["name"]: p for p in found if p is not None}


def test_policies_are_admitted_as_built_and_removed_when_no_longer_wanted(
    api: kube.Kube,  # noqa: F811
    k8s_namespace: str,
    running: KopfRunner,  # noqa: F811
) -> None:
    ns = k8s_namespace
    api.create(leadmodel(ns, networkPolicy=POLICY))
    uid = get_lm(api, ns)["metadata"]["uid"]
    live = wait_for(
        lambda: len(found := _policies(api, ns)) == 4 and found,
        what="four NetworkPolicies",
    )
    lm = spec.LeadModelSpec.model_validate(get_lm(api, ns)["spec"])
    owner = builders.Owner(name=NAME, namespace=ns, uid=uid)
    for built in network_policy.policies(owner, lm):
        stored = live[built["metadata"]["name"]]
        assert stored["spec"] == built["spec"], built["metadata"]["name"]
        (ref,) = stored["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("LeadModel", uid, True)

    # Redis no longer in the namespace: its policy goes, the others stay.
    api.patch("LeadModel", ns, NAME, {"spec": {"networkPolicy": {"redis": {"podLabels": None}}}})
    wait_for(
        lambda: (
            sorted(_policies(api, ns))
            == [f"{NAME}-pii-backfill", f"{NAME}-scorer", f"{NAME}-train"]
        ),
        what="the Redis policy removed",
    )
    # The replay gate on: its Jobs get their egress policy, as built; off: it goes.
    api.patch("LeadModel", ns, NAME, {"spec": {"guards": {"replay": {}}}})
    replay = wait_for(
        lambda: _policies(api, ns).get(f"{NAME}-replay"), what="the replay Jobs' policy"
    )
    guarded = spec.LeadModelSpec.model_validate(get_lm(api, ns)["spec"])
    assert replay["spec"] == network_policy.replay_policy(owner, s3=guarded.artifacts.s3)["spec"]
    api.patch("LeadModel", ns, NAME, {"spec": {"guards": {"replay": None}}})
    wait_for(lambda: f"{NAME}-replay" not in _policies(api, ns), what="the replay policy removed")
    # Turned off: every policy it owns goes.
    api.patch("LeadModel", ns, NAME, {"spec": {"networkPolicy": {"enabled": False}}})
    wait_for(lambda: _policies(api, ns) == {}, what="every NetworkPolicy removed")
    assert api.get("Deployment", ns, f"{NAME}-scorer") is not None


@pytest.mark.parametrize(
    "peer", [{"cidr": "10.0.0.0/8", "podLabels": {"app": "x"}}, {}], ids=["both", "neither"]
)
def test_the_crd_refuses_a_peer_that_is_not_a_cidr_or_labels(
    api: kube.Kube,  # noqa: F811
    k8s_namespace: str,
    peer: dict[str, Any],
) -> None:
    bad = leadmodel(k8s_namespace, networkPolicy={"enabled": True, "scorerClients": [peer]})
    with pytest.raises(kube.KubeError) as refused:
        api.create(bad)
    assert refused.value.status == 422
    assert spec.PEER_RULE_MESSAGE in str(refused.value)
