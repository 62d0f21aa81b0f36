"""spec.followUps: its schema checks, the worker's config, the Pod's security and the plan
(golden YAML; LEADOPS_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadops.followups import config as followups_config
from leadops.operator import followups_builders as fb
from leadops.operator import followups_check, reconcile, trust
from leadops.operator.actions import Ensure, RemoveChild
from leadops.operator.builders import (
    Owner,
    Rollout,
    experiment_cronjob,
    prometheus_rule,
    scorer_deployment,
)
from leadops.operator.plan import plan

from .worlds import NOW, spec, world

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OWNER = Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
SID = "AC" + "0" * 32


def tenant(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "acme",
        "rateLimitPerSecond": 10,
        "vault": {
            "current": "k2",
            "keys": [
                {"id": "k1", "secretRef": {"name": "vault", "key": "k1"}},
                {"id": "k2", "secretRef": {"name": "vault", "key": "k2"}},
            ],
        },
        "rules": [
            {"minScore": "0.7", "channel": "sms", "template": "hot", "delayMinutes": 5},
            {"minScore": "0.0", "channel": "email", "template": "warm", "delayMinutes": 720},
        ],
        "templates": [
            {"name": "hot", "body": "Hi {{ name }}, thanks!"},
            {"name": "warm", "subject": "Hello {{ name }}", "body": "Dear {{ name }}"},
        ],
        "providers": {
            "sms": [
                {
                    "type": "twilio",
                    "accountSid": SID,
                    "authTokenSecretRef": {"name": "twilio", "key": "token"},
                    "from": "+15005550006",
                }
            ],
            "email": [
                {
                    "type": "sendgrid",
                    "apiKeySecretRef": {"name": "sendgrid", "key": "key"},
                    "from": "hi@example.com",
                },
                {
                    "type": "smtp",
                    "name": "backup",
                    "host": "smtp.example.com",
                    "username": "apikey",
                    "passwordSecretRef": {"name": "smtp", "key": "password"},
                    "from": "hi@example.com",
                },
            ],
        },
        "webhooks": {"sendgridPublicKeySecretRef": {"name": "sendgrid", "key": "verification"}},
    }
    return base | overrides


def with_followups(*tenants: dict[str, Any], **extra: Any) -> Any:
    return spec(
        scorer={"image": "registry.example/leadops/scorer:1.2.3"},
        pii={"keySaltSecretRef": {"name": "key-salt", "key": "salt"}},
        followUps={"statusCallbackBase": "https://hooks.example.com", "tenants": list(tenants)}
        | extra,
    )


FULL = with_followups(tenant())


def _cases() -> dict[str, dict[str, Any]]:
    return {
        "followups-configmap": fb.configmap(OWNER, FULL.follow_ups),
        "followups-service": fb.service(OWNER),
        "followups-service-monitor": fb.service_monitor(OWNER),
        "followups-deployment": fb.deployment(OWNER, FULL),
        "scorer-deployment-followups": scorer_deployment(OWNER, FULL, Rollout()),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_golden(name: str) -> None:
    rendered = yaml.safe_dump(_cases()[name], sort_keys=True, width=100)
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("LEADOPS_UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path}; run with LEADOPS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), f"{name} differs from {path}"


def test_config_is_what_the_worker_loads_and_names_only_mounted_files() -> None:
    built = fb.config(FULL.follow_ups)
    loaded = followups_config.parse(built)  # the worker's own validation, templates included
    acme = loaded.tenants["acme"]
    assert [p.name for p in acme.providers["email"]] == ["sendgrid", "backup"]
    deployment = fb.deployment(OWNER, FULL)
    mounts = {
        m["mountPath"]
        for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    files = [str(acme.vault.key_files["k1"]), str(acme.providers["sms"][0].auth_token_file)]  # type: ignore[union-attr]
    for path in files:
        assert str(Path(path).parent) in mounts, f"{path} is not under a mounted Secret"


def test_the_scorer_reads_the_config_and_the_vault_keys_but_no_provider_credential() -> None:
    pod = scorer_deployment(OWNER, FULL, Rollout())["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LEADOPS_FOLLOWUPS_CONFIG"] == f"{fb.CONFIG_DIR}/{fb.CONFIG_KEY}"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts[fb.CONFIG_DIR]]["configMap"]["name"] == fb.name(OWNER.name)
    acme = followups_config.parse(fb.config(FULL.follow_ups)).tenants["acme"]
    for path in acme.vault.key_files.values():  # each vault key file, where the config says
        volume = volumes[mounts[str(path.parent)]]
        assert {"key": path.name, "path": path.name} in volume["secret"]["items"]
    secrets = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    assert not secrets & {"twilio", "sendgrid", "smtp"}
    # A changed spec.followUps (a rule, a rotated vault key) rolls the scorer too.
    digest = pod["metadata"]["annotations"][fb.ANN_CONFIG_DIGEST]
    assert digest == fb.config_digest(FULL.follow_ups)
    without = scorer_deployment(OWNER, spec(), Rollout())["spec"]["template"]
    assert "LEADOPS_FOLLOWUPS_CONFIG" not in str(without)


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    pod = fb.deployment(OWNER, FULL)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert [c["name"] for c in pod["containers"]] == ["worker", "webhooks"]
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["resources"]["limits"]["memory"]
        # Secrets only as mounted files: no env value taken from a Secret.
        assert all("valueFrom" not in e for e in container["env"])
        assert {e["name"] for e in container["env"]} == {
            "LEADOPS_REDIS_URL_FILE",
            "LEADOPS_KEY_SALT_FILE",
        }
    for volume in pod["volumes"]:
        assert set(volume) & {"secret", "configMap", "emptyDir"}, volume  # no hostPath etc.


def test_resources_from_the_spec_override_the_defaults() -> None:
    lm = with_followups(tenant(), resources={"limits": {"memory": "1Gi", "cpu": "1"}})
    (worker, _) = fb.deployment(OWNER, lm)["spec"]["template"]["spec"]["containers"]
    assert worker["resources"] == {
        "requests": fb.DEFAULT_REQUESTS,
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


def test_a_changed_template_rolls_the_pods() -> None:
    other = tenant(
        templates=[{"name": "hot", "body": "Hello {{ name }}"}, *tenant()["templates"][1:]]
    )
    digest = fb.ANN_CONFIG_DIGEST
    before = fb.deployment(OWNER, FULL)["spec"]["template"]["metadata"]["annotations"][digest]
    after = fb.deployment(OWNER, with_followups(other))["spec"]["template"]["metadata"][
        "annotations"
    ][digest]
    assert before != after


def test_every_followups_secret_must_opt_in() -> None:
    refs = trust.secret_refs(FULL)
    assert refs["spec.followUps.tenants[0].vault.keys[1].secretRef"] == "vault"
    assert refs["spec.followUps.tenants[0].providers.sms[0].authTokenSecretRef"] == "twilio"
    assert refs["spec.followUps.tenants[0].providers.email[1].passwordSecretRef"] == "smtp"
    assert refs["spec.followUps.tenants[0].webhooks.sendgridPublicKeySecretRef"] == "sendgrid"


def _rule(channel: str, template: str) -> dict[str, Any]:
    return {"rules": [{"minScore": "0.5", "channel": channel, "template": template}]}


_KEY = {"id": "k1", "secretRef": {"name": "v", "key": "k"}}
_SENDGRID = {"type": "sendgrid", "apiKeySecretRef": {"name": "s", "key": "k"}, "from": "+1"}
_TWINS = [{"name": "hot", "body": "a"}, {"name": "hot", "body": "b"}, {"name": "warm", "body": "c"}]
INCONSISTENT = [
    (_rule("sms", "nope"), "'nope' is not a template"),
    (_rule("whatsapp", "hot"), "channel whatsapp has no providers"),
    ({"vault": {"current": "k9", "keys": [_KEY]}}, "'k9' is not in vault.keys"),
    ({"providers": {"sms": [_SENDGRID]}}, "sendgrid cannot send sms"),
    ({"providers": {"sms": [{"type": "twilio", "from": "+1"}]}}, "needs accountSid"),
    ({"templates": _TWINS}, "template names must be unique"),
]


@pytest.mark.parametrize(("overrides", "message"), INCONSISTENT)
def test_inconsistent_followups_are_invalid_spec(overrides: dict[str, Any], message: str) -> None:
    body = {
        "spec": with_followups(tenant(**overrides)).model_dump(by_alias=True, exclude_none=True)
    }
    with pytest.raises(reconcile.InvalidSpec, match=message):
        reconcile.parse(body)


@pytest.mark.parametrize(
    "body",
    [
        "Hi {{ nickname }}",  # undefined: StrictUndefined
        "{{ name.__class__.__mro__ }}",  # sandbox: attribute into Python internals
        "{{ ''.__class__.__base__.__subclasses__() }}",
        "{{ '{0.__class__}'.format(name) }}",  # str.format escape
        "{% for x in %}",  # syntax
    ],
)
def test_a_template_that_does_not_render_is_invalid_spec(body: str) -> None:
    lm = with_followups(
        tenant(templates=[{"name": "hot", "body": body}, {"name": "warm", "body": "ok"}])
    )
    (problem,) = followups_check.problems(lm)
    assert "templates[0] (hot) body does not render" in problem
    with pytest.raises(reconcile.InvalidSpec, match="does not render"):
        reconcile.parse({"spec": lm.model_dump(by_alias=True, exclude_none=True)})


@pytest.mark.parametrize("prometheus_operator", [False, True])
def test_plan_ensures_the_followups_children_and_removes_them_with_the_spec(
    prometheus_operator: bool,
) -> None:
    obs = dataclasses.replace(world(), prometheus_operator=prometheus_operator)
    ensured = {(a.kind, a.name) for a in plan(FULL, obs, NOW).of(Ensure)}
    ours = fb.child_keys("lm", prometheus_operator=prometheus_operator)
    assert set(ours) <= ensured
    assert (("ServiceMonitor", "lm-followups") in ensured) is prometheus_operator
    assert plan(spec(), obs, NOW).of(RemoveChild) == []

    def owned(uid: str) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": [{"uid": uid, "controller": True}]}}

    live = {key: owned("uid-1") for key in fb.child_keys("lm", prometheus_operator=True)}
    live[("Service", "lm-followups")] = owned("someone-else")  # a user's object stays
    obs = dataclasses.replace(obs, children=live)
    assert plan(spec(), obs, NOW).of(RemoveChild) == [
        RemoveChild(kind="ServiceMonitor", name="lm-followups"),
        RemoveChild(kind="Deployment", name="lm-followups"),
        RemoveChild(kind="ConfigMap", name="lm-followups"),
    ]
    assert not {(a.kind, a.name) for a in plan(spec(), obs, NOW).of(Ensure)} & set(ours)


def test_configmap_holds_no_secret_value() -> None:
    text = fb.configmap(OWNER, FULL.follow_ups)["data"][fb.CONFIG_KEY]
    assert json.loads(text)["tenants"]["acme"]["vault"]["keyFiles"]["k1"].startswith(fb.SECRETS_DIR)
    assert "secretKeyRef" not in text


def test_crd_patterns_keep_to_re2_repeat_limits() -> None:
    """The apiserver compiles patterns with RE2, which refuses a repeat count over 1000."""
    crd = yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "crds" / "leadmodel.yaml").read_text()
    )

    def patterns(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
            return own + [p for v in node.values() for p in patterns(v)]
        if isinstance(node, list):
            return [p for v in node for p in patterns(v)]
        return []

    found = patterns(crd)
    assert any("https?" in p for p in found)
    for pattern in found:
        counts = [int(n) for n in re.findall(r"\{(?:\d+,)?(\d+)\}", pattern)]
        assert all(n <= 1000 for n in counts), pattern


def test_a_leadmodels_follow_up_alerts_select_its_follow_ups_service() -> None:
    rule = prometheus_rule(OWNER)["spec"]
    exprs = [r["expr"] for g in rule["groups"] for r in g["rules"] if "followups" in r["expr"]]
    assert len(exprs) == 2
    for expr in exprs:
        selectors = re.findall(r"leadops_followups_total\{[^}]*\}", expr)
        assert selectors
        assert all('service="acme-followups"' in s and 'namespace="sales"' in s for s in selectors)


EXPERIMENT = {
    "name": "fast-follow-up",
    "primaryMetric": "reply",
    "variants": [
        {"name": "control", "weight": 50},
        {"name": "fast", "weight": 50, "flags": {"followUpDelayMinutes": "1"}},
    ],
}


def test_a_reply_as_primary_metric_needs_follow_ups_and_reaches_the_evaluation() -> None:
    assert "experiment.primaryMetric reply needs spec.followUps" in (
        spec(experiment=EXPERIMENT).semantic_errors()
    )
    lm = spec(
        scorer={"image": "registry.example/leadops/scorer:1.2.3"},
        pii={"keySaltSecretRef": {"name": "key-salt", "key": "salt"}},
        followUps={"tenants": [tenant()]},
        experiment=EXPERIMENT,
    )
    assert lm.semantic_errors() == []
    cronjob = experiment_cronjob(OWNER, lm, started_at="2026-12-01T00:00:00Z", active=True)
    command = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--metric reply" in command[-1]


def test_the_worker_runs_the_jobs_image_unless_the_spec_names_one() -> None:
    def images(lm: Any, jobs: str = "") -> set[str]:
        pod = fb.deployment(OWNER, lm, jobs=jobs)["spec"]["template"]["spec"]
        return {c["image"] for c in pod["containers"]}

    # The scorer image has no provider SDKs: the worker would not start on it.
    assert images(FULL) == {"registry.example/leadops/jobs:1.2.3"}
    assert images(FULL, jobs="registry.example/tools:7") == {"registry.example/tools:7"}
    named = with_followups(tenant(), image="registry.example/leadops/worker:2")
    assert images(named, jobs="registry.example/tools:7") == {"registry.example/leadops/worker:2"}
