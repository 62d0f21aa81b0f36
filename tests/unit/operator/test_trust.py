"""What a LeadModel author may make LeadOps do (the pure checks; the cluster suite is
tests/integration/test_trust.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from leadops.operator import apply, builders, settings, spec, trust

from .worlds import spec as make_spec

UID = "6f1c2d0e-0000-4000-8000-000000000001"


def test_the_name_limit_fits_every_child_name() -> None:
    assert trust.max_name_length() == spec.MAX_NAME_LENGTH
    longest = "a" * spec.MAX_NAME_LENGTH
    assert trust.name_problems(longest) == []
    assert len(builders.names(longest)["backfill"]) == 52
    assert "at most 39" in trust.name_problems(longest + "b")[0]
    assert trust.name_problems("1abc")  # a Service name starts with a letter
    assert trust.name_problems("a.b")


@pytest.mark.parametrize(
    ("image", "allowed", "ok"),
    [
        ("leadops/scorer:0.1.0", settings.DEFAULT_ALLOWED_IMAGES, True),
        ("docker.io/leadops/scorer@sha256:" + "a" * 64, settings.DEFAULT_ALLOWED_IMAGES, True),
        ("evil.example/leadops/scorer:1", settings.DEFAULT_ALLOWED_IMAGES, False),
        ("busybox", settings.DEFAULT_ALLOWED_IMAGES, False),
        ("registry.example/team/scorer:2", ("registry.example/team/scorer",), True),
        ("registry.example/team/scorer-evil:2", ("registry.example/team/scorer",), False),
        ("anything.example/x:1", ("*",), True),
    ],
)
def test_images_only_from_allowed_prefixes(image: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert trust.image_allowed(image, allowed) is ok


def test_image_problems_name_the_field_and_the_setting() -> None:
    lm = make_spec(training={"image": "evil.example/miner:1"})
    (problem,) = trust.image_problems(lm, settings.DEFAULT_ALLOWED_IMAGES)
    assert "spec.training.image" in problem
    assert "allowedImages" in problem
    loaded = settings.load({"LEADOPS_ALLOWED_IMAGES": " a/, b/c "})
    assert loaded.allowed_images == ("a/", "b/c")
    assert settings.load({}).allowed_images == settings.DEFAULT_ALLOWED_IMAGES


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("prometheus.io/scrape", True),
        ("sidecar.istio.io/inject", True),
        ("sidecar.istio.io/proxyImage", False),  # would pick the sidecar's image
        ("container.apparmor.security.beta.kubernetes.io/scorer", False),
        ("seccomp.security.alpha.kubernetes.io/pod", False),
        ("leadops.io/model-digest", False),
    ],
)
def test_pod_annotations_from_the_allowlist_only(key: str, ok: bool) -> None:
    lm = make_spec(scorer={"podAnnotations": {key: "unconfined"}})
    assert (trust.metadata_problems(lm) == []) is ok


def test_pod_labels_must_be_valid_labels() -> None:
    assert trust.metadata_problems(make_spec(scorer={"podLabels": {"team": "sales"}})) == []
    assert trust.metadata_problems(make_spec(scorer={"podLabels": {"bad key!": "x"}}))
    assert trust.metadata_problems(make_spec(scorer={"podLabels": {"team": "-x"}}))


def test_free_maps_are_bounded_in_the_schema() -> None:
    many = {f"prometheus.io/k{i}": "v" for i in range(spec.MAX_MAP_ENTRIES + 1)}
    with pytest.raises(ValueError, match="at most 32"):
        make_spec(scorer={"podAnnotations": many})


def test_secrets_opt_in_by_name_or_star() -> None:
    def secret(value: str | None) -> dict[str, object]:
        ann = {} if value is None else {trust.USABLE_BY: value}
        return {"metadata": {"name": "s", "annotations": ann}}

    assert trust.usable_by(secret("acme"), "acme")
    assert trust.usable_by(secret("other, acme"), "acme")
    assert trust.usable_by(secret("*"), "acme")
    assert not trust.usable_by(secret("acme-2"), "acme")
    assert not trust.usable_by(secret(None), "acme")
    lm = make_spec(
        scorer={"apiKeySecretRef": {"name": "api", "key": "k"}},
        signing={"keySecretRef": {"name": "sig", "key": "k"}},
        pii={"keySaltSecretRef": {"name": "salt", "key": "k"}},
    )
    assert set(trust.secret_refs(lm).values()) == {"redis", "api", "sig", "salt"}


def test_only_a_controller_reference_with_our_uid_counts() -> None:
    ours = {"metadata": {"ownerReferences": [{"uid": UID, "controller": True}]}}
    plain = {"metadata": {"ownerReferences": [{"uid": UID}]}}
    other = {"metadata": {"ownerReferences": [{"uid": "x", "controller": True, "kind": "K"}]}}
    assert apply.controlled_by(ours, UID)
    assert not apply.controlled_by(plain, UID)
    assert apply.owned_by(plain, UID)
    assert not apply.controlled_by(other, UID)
    assert not apply.controlled_by({"metadata": {}}, UID)
    assert not apply.controlled_by(ours, "")


def test_an_admin_may_add_annotation_keys_but_never_loosen_confinement() -> None:
    env = {
        "LEADOPS_ALLOWED_POD_ANNOTATIONS": "leadops.io/fault, "
        "container.apparmor.security.beta.kubernetes.io/scorer"
    }
    extra = settings.load(env).extra_pod_annotations
    fault = make_spec(scorer={"podAnnotations": {"leadops.io/fault": "never-ready"}})
    assert trust.metadata_problems(fault, extra=extra) == []
    assert trust.metadata_problems(fault)
    loose = make_spec(
        scorer={"podAnnotations": {"container.apparmor.security.beta.kubernetes.io/scorer": "x"}}
    )
    assert trust.metadata_problems(loose, extra=extra)


def test_a_missing_secret_or_key_is_missing_naming_both_and_one_not_opted_in_is_refused() -> None:
    lm = make_spec(scorer={"apiKeySecretRef": {"name": "api", "key": "token"}})
    refs = trust.secret_key_refs(lm)
    redis_ok = {"metadata": {"annotations": {trust.USABLE_BY: "*"}}, "data": {"url": "eA=="}}

    def judge(**secrets: Mapping[str, Any] | None) -> trust.Findings:
        return trust.judge_secrets(refs, secrets, namespace="ns", leadmodel="acme")

    assert judge(redis=redis_ok, api=redis_ok) == trust.Findings(
        missing=["spec.scorer.apiKeySecretRef: Secret ns/api has no key 'token'"]
    )
    assert judge(redis=redis_ok, api=None) == trust.Findings(
        missing=["spec.scorer.apiKeySecretRef: Secret ns/api (key 'token') does not exist"]
    )
    with_token = {**redis_ok, "data": {"token": "eA=="}}
    assert judge(redis=redis_ok, api=with_token) == trust.Findings()
    closed = {"metadata": {}, "data": {"token": "eA=="}}
    refused = judge(redis=redis_ok, api=closed)
    assert refused.missing == []
    assert "does not opt in to LeadModel acme" in refused.refused[0]
