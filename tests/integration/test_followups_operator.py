"""spec.followUps on the real control plane: the operator makes the follow-ups worker
(ConfigMap, webhooks Service, restricted-ready Deployment), refuses a template that does not
render (InvalidSpec, children untouched) and removes what it made when the field goes."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from kopf.testing import KopfRunner

from leadops.operator import handlers, kube, read_world
from leadops.operator.kube import crd_established
from tests.fixtures.control_plane import KubeCluster
from tests.integration import test_operator as base
from tests.integration.test_operator import NAME, condition, events, leadmodel, wait_for

# The operator tests' fixtures: the CRD installed, a Kube client, the operator running.
crd_installed = base.crd_installed
api = base.api
running = base.running

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

FU = f"{NAME}-followups"
SID = "AC" + "1" * 32


def _secret(api: kube.Kube, ns: str, name: str, data: dict[str, str]) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "annotations": {"leadops.io/usable-by": NAME},
            },
            "stringData": data,
        }
    )


def _followups(body: str = "Hi {{ name }}") -> dict[str, Any]:
    return {
        "statusCallbackBase": "https://hooks.example.com",
        "tenants": [
            {
                "name": "acme",
                "vault": {
                    "current": "k1",
                    "keys": [{"id": "k1", "secretRef": {"name": "fu-vault", "key": "k1"}}],
                },
                "rules": [{"minScore": "0.5", "channel": "sms", "template": "hot"}],
                "templates": [{"name": "hot", "body": body}],
                "providers": {
                    "sms": [
                        {
                            "type": "twilio",
                            "accountSid": SID,
                            "authTokenSecretRef": {"name": "fu-twilio", "key": "token"},
                            "from": "+15005550006",
                        }
                    ]
                },
            }
        ],
    }


def test_followups_worker_is_made_refused_when_broken_and_removed_with_the_spec(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner
) -> None:
    ns = k8s_namespace
    _secret(api, ns, "fu-vault", {"k1": "ab" * 32})
    _secret(api, ns, "fu-twilio", {"token": "twilio-token"})
    api.create(leadmodel(ns, followUps=_followups()))
    uid = api.get("LeadModel", ns, NAME)["metadata"]["uid"]  # type: ignore[index]

    deployment = wait_for(
        functools.partial(api.get, "Deployment", ns, FU), what="follow-ups Deployment"
    )
    (ref,) = deployment["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("LeadModel", uid)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert {c["name"] for c in pod["containers"]} == {"worker", "webhooks"}
    secrets = sorted(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    assert secrets == ["fu-twilio", "fu-vault", "redis"]
    service = wait_for(functools.partial(api.get, "Service", ns, FU), what="webhooks Service")
    assert {p["name"] for p in service["spec"]["ports"]} == {"webhooks", "metrics"}
    configmap = wait_for(functools.partial(api.get, "ConfigMap", ns, FU), what="config")
    config = json.loads(configmap["data"]["config.json"])
    assert config["tenants"]["acme"]["providers"]["sms"][0]["authTokenFile"].endswith(
        "/fu-twilio/token"
    )
    assert "twilio-token" not in configmap["data"]["config.json"]
    digest = deployment["spec"]["template"]["metadata"]["annotations"]

    # A template the sandbox refuses: InvalidSpec with a Warning Event, the worker untouched.
    api.patch("LeadModel", ns, NAME, {"spec": {"followUps": _followups("{{ name.__class__ }}")}})
    ready = wait_for(
        lambda: (c := condition(api, ns, "Ready")).get("reason") == "InvalidSpec" and c,
        what="InvalidSpec",
    )
    assert "(hot) body does not render" in ready["message"]
    assert events(api, ns, "InvalidSpec")[0]["type"] == "Warning"
    live = api.get("Deployment", ns, FU)
    assert live is not None
    assert live["spec"]["template"]["metadata"]["annotations"] == digest

    # spec.followUps removed: the worker, its Service and its config go.
    api.patch("LeadModel", ns, NAME, {"spec": {"followUps": None}})
    for kind in ("Deployment", "Service", "ConfigMap"):
        gone = functools.partial(lambda k: api.get(k, ns, FU) is None, kind)
        wait_for(gone, what=f"{kind} {FU} deleted")
    assert api.get("Deployment", ns, f"{NAME}-scorer") is not None


def test_followups_secret_without_opt_in_is_refused(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner
) -> None:
    ns = k8s_namespace
    _secret(api, ns, "fu-vault", {"k1": "ab" * 32})
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fu-twilio", "namespace": ns},  # no leadops.io/usable-by
            "stringData": {"token": "t"},
        }
    )
    api.create(leadmodel(ns, followUps=_followups()))
    ready = wait_for(
        lambda: (
            (c := condition(api, ns, "Ready")).get("status") == "False"
            and c.get("reason") != "NoModel"
            and c
        ),
        what="refusal",
    )
    assert "authTokenSecretRef" in ready["message"]
    assert "does not opt in" in ready["message"]
    assert api.get("Deployment", ns, FU) is None


def test_with_the_prometheus_operator_follow_ups_are_scraped_and_alerted_on(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner, k8s_cluster: KubeCluster
) -> None:
    ns = k8s_namespace
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    installed = api.has_api("monitoring.coreos.com/v1", "servicemonitors")
    if not installed:
        for plural, kind in [
            ("servicemonitors", "ServiceMonitor"),
            ("prometheusrules", "PrometheusRule"),
        ]:
            api.request("POST", crds, body=base._monitoring_crd(plural, kind))
            crd_established(k8s_cluster.api_client, name=f"{plural}.monitoring.coreos.com")
    read_world._PROM.clear()  # the operator re-checks discovery at most once a minute
    try:
        _secret(api, ns, "fu-vault", {"k1": "ab" * 32})
        _secret(api, ns, "fu-twilio", {"token": "twilio-token"})
        api.create(leadmodel(ns, followUps=_followups()))
        monitor = wait_for(functools.partial(api.get, "ServiceMonitor", ns, FU), what="monitor")
        assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics", "webhooks"}
        rule = wait_for(
            functools.partial(api.get, "PrometheusRule", ns, f"{NAME}-alerts"), what="rule"
        )
        exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
        assert f'service="{FU}"' in exprs["LeadFollowUpFailureRateHigh"]
        api.patch("LeadModel", ns, NAME, {"spec": {"followUps": None}})
        wait_for(lambda: api.get("ServiceMonitor", ns, FU) is None, what="monitor removed")
        assert api.get("ServiceMonitor", ns, f"{NAME}-scorer") is not None
    finally:
        if not installed:  # leave the session's cluster as we found it
            api.delete("LeadModel", ns, NAME)
            for plural in ("servicemonitors", "prometheusrules"):
                api.request("DELETE", f"{crds}/{plural}.monitoring.coreos.com")
            wait_for(
                lambda: not api.has_api("monitoring.coreos.com/v1", "servicemonitors"),
                what="monitoring CRDs removed",
            )
            read_world._PROM.clear()


def _with_configmap_template() -> dict[str, Any]:
    spec = _followups()
    acme = spec["tenants"][0]
    acme["rules"].append({"minScore": "0.0", "channel": "email", "template": "warm"})
    acme["templates"].append(
        {
            "name": "warm",
            "configMapRef": {"name": "fu-templates", "key": "warm.txt", "subjectKey": "subject"},
        }
    )
    acme["providers"]["email"] = [
        {
            "type": "sendgrid",
            "apiKeySecretRef": {"name": "fu-sendgrid", "key": "key"},
            "from": "hi@example.com",
        }
    ]
    acme["emailReplies"] = {
        "domain": "reply.example.com",
        "credentialsSecretRef": {"name": "fu-inbound", "key": "credentials"},
    }
    return spec


def test_templates_from_a_configmap_are_checked_followed_and_refused_when_broken(
    api: kube.Kube, k8s_namespace: str, running: KopfRunner
) -> None:
    ns = k8s_namespace
    _secret(api, ns, "fu-vault", {"k1": "ab" * 32})
    _secret(api, ns, "fu-twilio", {"token": "twilio-token"})
    _secret(api, ns, "fu-sendgrid", {"key": "SG.key"})
    _secret(api, ns, "fu-inbound", {"credentials": "parse:secret-pass"})
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fu-templates", "namespace": ns},
            "data": {"warm.txt": "Dear {{ name }},\nmore soon.\n", "subject": "Hello {{ name }}"},
        }
    )
    api.create(leadmodel(ns, followUps=_with_configmap_template()))

    def config() -> dict[str, Any]:
        cm = api.get("ConfigMap", ns, FU)
        return json.loads(cm["data"]["config.json"]) if cm else {}

    def warm() -> dict[str, str]:
        return dict((config().get("tenants") or {}).get("acme", {}).get("templates", {}).get("warm")
                    or {})  # fmt: skip

    def digest() -> str:
        dep = api.get("Deployment", ns, FU) or {}
        annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
        return str((annotations or {}).get("leadops.io/followups-config-digest", ""))

    # The ConfigMap's text, checked on a sample lead, is in the worker's config.
    wait_for(warm, what="the ConfigMap template in the follow-ups config")
    assert warm() == {"body": "Dear {{ name }},\nmore soon.\n", "subject": "Hello {{ name }}"}
    replies = config()["tenants"]["acme"]["emailReplies"]
    assert replies["inboundParseCredentialsFile"].endswith("/fu-inbound/credentials")
    assert "secret-pass" not in json.dumps(config())
    first = wait_for(digest, what="follow-ups Deployment")
    pod = api.get("Deployment", ns, FU)["spec"]["template"]["spec"]  # type: ignore[index]
    assert "fu-inbound" in {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert condition(api, ns, "Ready").get("reason") != "InvalidSpec"
    # The operator (in this process) watches the ConfigMap for this LeadModel. The resync here
    # is 2 s, so the steps below would also pass without the watch; this shows it is set up.
    assert NAME in handlers._template_users[(ns, "fu-templates")]

    # The ConfigMap edited (the LeadModel untouched): the config follows and the Pods roll.
    api.patch("ConfigMap", ns, "fu-templates", {"data": {"warm.txt": "Dear {{ name }}, news"}})
    wait_for(lambda: warm().get("body") == "Dear {{ name }}, news", what="the edit followed")
    second = wait_for(lambda: (d := digest()) != first and d, what="the Pods rolled")

    # Edited into a template that does not render: InvalidSpec with a Warning Event naming
    # the ConfigMap, the key and the error; the worker keeps the last good templates.
    api.patch("ConfigMap", ns, "fu-templates", {"data": {"warm.txt": "Dear {{ nmae }}"}})
    ready = wait_for(
        lambda: (c := condition(api, ns, "Ready")).get("reason") == "InvalidSpec" and c,
        what="InvalidSpec",
    )
    assert "ConfigMap fu-templates key 'warm.txt' does not render" in ready["message"]
    assert "'nmae' is undefined" in ready["message"]
    [event] = [e for e in events(api, ns, "InvalidSpec") if "fu-templates" in e["message"]]
    assert (event["type"], "'warm.txt'" in event["message"]) == ("Warning", True)
    assert warm().get("body") == "Dear {{ name }}, news"
    assert digest() == second

    # Deleted: InvalidSpec saying so; fixed by creating it again.
    api.delete("ConfigMap", ns, "fu-templates")
    wait_for(
        lambda: (
            f"ConfigMap {ns}/fu-templates does not exist"
            in condition(api, ns, "Ready").get("message", "")
        ),
        what="missing ConfigMap reported",
    )
    assert digest() == second
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fu-templates", "namespace": ns},
            "data": {"warm.txt": "Dear {{ name }}, back", "subject": "Hi"},
        }
    )
    wait_for(lambda: warm().get("body") == "Dear {{ name }}, back", what="recreated ConfigMap")
    wait_for(
        lambda: condition(api, ns, "Ready").get("reason") != "InvalidSpec", what="no InvalidSpec"
    )
