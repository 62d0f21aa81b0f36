"""spec.training.bootstrap and spec.scorer.coldStart in the plan: a new LeadModel's start."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from leadops.operator import plan, reasons
from leadops.operator.actions import CreateOnce, EmitEvent, EnsureDeployment, Plan
from leadops.operator.spec import Condition
from leadops.operator.world import Observed

from .worlds import NOW, V1, entry, spec, world

BOOT = spec(training={"bootstrap": {"url": "https://data.example/outcomes.csv"}})
JOB = ("Job", "lm-bootstrap")


def _with_job(obs: Observed, conditions: list[dict[str, Any]] | None = None) -> Observed:
    job = {"metadata": {"name": "lm-bootstrap"}, "status": {"conditions": conditions or []}}
    return replace(obs, children=MappingProxyType({JOB: job}))


def _condition(p: Plan, kind: str) -> Condition:
    return next(c for c in p.conditions if c.type == kind)


def test_no_bootstrap_no_job() -> None:
    p = plan.plan(spec(), world(), NOW)
    assert not p.of(CreateOnce)
    assert _condition(p, reasons.TRAINED).reason == reasons.NO_ARTIFACT


def test_an_empty_registry_starts_the_bootstrap_job_once() -> None:
    p = plan.plan(BOOT, world(), NOW)
    [create] = p.of(CreateOnce)
    assert (create.kind, create.name) == JOB
    assert (
        "https://data.example/outcomes.csv"
        in create.manifest["spec"]["template"]["spec"]["containers"][0]["command"][2]
    )
    trained = _condition(p, reasons.TRAINED)
    assert (trained.status, trained.reason) == ("False", reasons.BOOTSTRAPPING)
    [event] = [e for e in p.of(EmitEvent) if e.reason == reasons.BOOTSTRAPPING]
    assert event.once_key  # posted once, even when a pass is repeated
    # Exactly one Trained condition: the bootstrap's replaces "no version yet".
    assert [c.type for c in p.conditions].count(reasons.TRAINED) == 1


@pytest.mark.parametrize(
    ("job_conditions", "reason"),
    [
        ([], reasons.BOOTSTRAPPING),
        ([{"type": "Complete", "status": "True"}], reasons.BOOTSTRAPPING),
        ([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}],
         reasons.BOOTSTRAP_FAILED),
    ],
)  # fmt: skip
def test_a_bootstrap_job_that_exists_is_never_created_again(
    job_conditions: list[dict[str, Any]], reason: str
) -> None:
    p = plan.plan(BOOT, _with_job(world(), job_conditions), NOW)
    assert not p.of(CreateOnce)
    assert _condition(p, reasons.TRAINED).reason == reason


def test_a_failed_bootstrap_says_how_to_retry_once() -> None:
    failed = _with_job(world(), [{"type": "Failed", "status": "True", "message": "boom"}])
    p = plan.plan(BOOT, failed, NOW)
    trained = _condition(p, reasons.TRAINED)
    assert "kubectl delete job lm-bootstrap" in trained.message
    assert [e.type for e in p.of(EmitEvent) if e.reason == reasons.BOOTSTRAP_FAILED] == ["Warning"]
    said = replace(
        failed, status={"conditions": [{"type": "Trained", "reason": reasons.BOOTSTRAP_FAILED}]}
    )
    assert not [
        e for e in plan.plan(BOOT, said, NOW).of(EmitEvent) if e.reason == reasons.BOOTSTRAP_FAILED
    ]


def test_once_a_version_is_published_bootstrap_is_done() -> None:
    p = plan.plan(BOOT, world(entry(V1)), NOW)
    assert not p.of(CreateOnce)
    assert _condition(p, reasons.TRAINED).reason == reasons.ARTIFACT_PUBLISHED


def test_cold_start_is_ready_false_cold_start_and_the_deployment_accepts_unscored() -> None:
    cold = spec(scorer={"coldStart": "AcceptUnscored"})
    p = plan.plan(cold, world(), NOW)
    ready = _condition(p, reasons.READY)
    assert (ready.status, ready.reason) == ("False", reasons.COLD_START)
    [deployment] = p.of(EnsureDeployment)
    env = deployment.manifest["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "LEADOPS_COLD_START", "value": "true"} in env
    assert _condition(plan.plan(spec(), world(), NOW), reasons.READY).reason == reasons.NO_MODEL


@pytest.mark.parametrize(
    "bootstrap",
    [{}, {"url": "https://x.example/a.csv", "configMapKeyRef": {"name": "h", "key": "k"}}],
)
def test_bootstrap_names_exactly_one_source(bootstrap: dict[str, Any]) -> None:
    errors = spec(training={"bootstrap": bootstrap}).semantic_errors()
    assert errors == ["bootstrap names exactly one of url, configMapKeyRef, secretKeyRef"]
