"""Follow-up templates from ConfigMaps (`templates[].configMapRef`) and e-mail replies
(`emailReplies`) in spec.followUps: the schema's one-source rules, the text resolved into the
worker's config and checked like an inline template, every problem naming the ConfigMap and
key, and the reply credentials mounted for the webhooks app only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leadops.followups import config as followups_config
from leadops.operator import followups_builders as fb
from leadops.operator import followups_templates, reconcile, trust
from leadops.operator.builders import Rollout, scorer_deployment
from leadops.operator.handlers import _template_configmaps

from .test_followups_builders import OWNER, tenant, with_followups

REF = {"name": "acme-templates", "key": "warm.txt", "subjectKey": "warm.subject"}


def _from_configmap(ref: dict[str, Any] = REF, **template: Any) -> Any:
    return with_followups(
        tenant(
            templates=[
                {"name": "hot", "body": "Hi {{ name }}, thanks!"},
                {"name": "warm", "configMapRef": ref, **template},
            ]
        )
    )


def _cm(**data: str) -> dict[str, Any]:
    return {"metadata": {"name": "acme-templates"}, "data": data}


GOOD = _cm(**{"warm.txt": "Dear {{ name }},\nmore news.\n", "warm.subject": "Hello {{ name }}\n"})


def _parse(lm: Any) -> Any:
    return reconcile.parse({"spec": lm.model_dump(by_alias=True, exclude_none=True)})


def test_a_configmap_template_passes_parse_and_is_resolved_into_the_config() -> None:
    lm = _parse(_from_configmap())  # not read yet: parse cannot check it, and does not fail
    assert lm.follow_ups.template_configmaps() == {"acme-templates"}
    with pytest.raises(ValueError, match="not resolved"):
        fb.config(lm.follow_ups)
    resolved, problems = followups_templates.resolve(lm, {"acme-templates": GOOD}, namespace="ns")
    assert problems == []
    assert resolved.follow_ups is not None
    config = fb.config(resolved.follow_ups)
    warm = config["tenants"]["acme"]["templates"]["warm"]
    assert warm == {"body": "Dear {{ name }},\nmore news.\n", "subject": "Hello {{ name }}"}
    loaded = followups_config.parse(config)  # the worker's own check passes too
    assert loaded.tenants["acme"].templates["warm"].subject == "Hello {{ name }}"
    # An inline subject with a ConfigMap body.
    inline_subject = _from_configmap({"name": "acme-templates", "key": "warm.txt"}, subject="Hi")
    resolved2, _ = followups_templates.resolve(inline_subject, {"acme-templates": GOOD},
                                               namespace="ns")  # fmt: skip
    assert resolved2.follow_ups is not None
    warm2 = fb.config(resolved2.follow_ups)["tenants"]["acme"]["templates"]["warm"]
    assert warm2["subject"] == "Hi"


def test_a_changed_configmap_changes_the_digest_so_worker_and_scorer_roll() -> None:
    lm = _from_configmap()
    first, _ = followups_templates.resolve(lm, {"acme-templates": GOOD}, namespace="ns")
    edited = _cm(**{"warm.txt": "Dear {{ name }}, edited", "warm.subject": "Hello"})
    second, _ = followups_templates.resolve(lm, {"acme-templates": edited}, namespace="ns")

    def digests(spec: Any) -> tuple[str, str]:
        worker = fb.deployment(OWNER, spec)["spec"]["template"]["metadata"]["annotations"]
        scorer = scorer_deployment(OWNER, spec, Rollout())["spec"]["template"]["metadata"]
        return worker[fb.ANN_CONFIG_DIGEST], scorer["annotations"][fb.ANN_CONFIG_DIGEST]

    assert digests(first)[0] == digests(first)[1]
    assert digests(first) != digests(second)


@pytest.mark.parametrize(
    ("configmaps", "message"),
    [
        ({}, "ConfigMap ns/acme-templates does not exist"),
        ({"acme-templates": _cm(**{"warm.subject": "x"})}, "has no key 'warm.txt'"),
        ({"acme-templates": _cm(**{"warm.txt": "x"})}, "has no key 'warm.subject'"),
        (
            {"acme-templates": {"binaryData": {"warm.txt": "eA=="}, "data": {}}},
            "key 'warm.txt' is binaryData",
        ),
        ({"acme-templates": _cm(**{"warm.txt": "  \n", "warm.subject": "x"})}, "is empty"),
        ({"acme-templates": _cm(**{"warm.txt": "x" * 9000, "warm.subject": "x"})}, "over 8192"),
        (
            {"acme-templates": _cm(**{"warm.txt": "Dear {{ nmae }}", "warm.subject": "x"})},
            "templates[1] (warm) body from ConfigMap acme-templates key 'warm.txt' does not "
            "render on a sample lead: undefined in template: 'nmae' is undefined",
        ),
        (
            {"acme-templates": _cm(**{"warm.txt": "ok", "warm.subject": "{{ ''.__class__ }}"})},
            "(warm) subject from ConfigMap acme-templates key 'warm.subject' does not render",
        ),
    ],
)
def test_configmap_problems_name_the_template_the_configmap_and_the_key(
    configmaps: dict[str, Any], message: str
) -> None:
    lm = _from_configmap()
    same, problems = followups_templates.resolve(lm, configmaps, namespace="ns")
    assert len(problems) == 1
    assert message in problems[0]
    assert problems[0].startswith("spec.followUps.tenants[0].templates[1] (warm)")
    if "does not render" not in message:
        assert same is lm  # nothing resolved: the children stay as they were


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"name": "warm", "body": "x", "configMapRef": REF}, "exactly one of body and config"),
        ({"name": "warm"}, "exactly one of body and configMapRef"),
        ({"name": "warm", "subject": "S", "configMapRef": REF}, "subject or configMapRef.subj"),
    ],
)
def test_one_source_per_template_is_invalid_spec_otherwise(
    template: dict[str, Any], message: str
) -> None:
    lm = with_followups(tenant(templates=[{"name": "hot", "body": "Hi"}, template]))
    with pytest.raises(reconcile.InvalidSpec, match=message):
        _parse(lm)


def test_email_reply_credentials_reach_the_webhooks_app_only() -> None:
    secret = {"name": "inbound", "key": "credentials"}
    lm = with_followups(
        tenant(emailReplies={"domain": "reply.example.com", "credentialsSecretRef": secret})
    )
    assert trust.secret_refs(lm)["spec.followUps.tenants[0].emailReplies.credentialsSecretRef"] == (
        "inbound"
    )
    replies = fb.config(lm.follow_ups)["tenants"]["acme"]["emailReplies"]
    assert replies == {
        "domain": "reply.example.com",
        "inboundParseCredentialsFile": f"{fb.SECRETS_DIR}/inbound/credentials",
    }
    pod = fb.deployment(OWNER, lm)["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in pod["containers"][1]["volumeMounts"]}
    assert str(Path(replies["inboundParseCredentialsFile"]).parent) in mounts
    scorer = scorer_deployment(OWNER, lm, Rollout())["spec"]["template"]["spec"]["volumes"]
    assert "inbound" not in {v.get("secret", {}).get("secretName") for v in scorer}


def test_the_operator_watches_the_configmaps_a_leadmodel_names() -> None:
    body = _from_configmap().model_dump(by_alias=True, exclude_none=True)
    assert _template_configmaps({"spec": body}) == {"acme-templates"}
    assert _template_configmaps({"spec": {}}) == set()
