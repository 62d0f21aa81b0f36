"""Manifest builders against golden YAML (LEADOPS_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadops.operator import builders

from .worlds import spec

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
FULL = spec(
    scorer={
        "replicas": 3,
        "image": "registry.example/leadops/scorer:1.2.3",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "apiKeySecretRef": {"name": "scorer-api", "key": "key"},
        "progressDeadlineSeconds": 90,
    },
    signing={"keySecretRef": {"name": "model-signing", "key": "signing.pem"}},
    gates={"signature": "Required"},
    piiBackfill={"dryRun": True, "keyPattern": "mem:acme:*"},
)
DIGEST = "sha256:" + "ab" * 32
PREVIOUS_DIGEST = "sha256:" + "cd" * 32
ROLLOUT = builders.Rollout(
    version=1764158400,
    previous=1764072000,
    started_at="2026-11-26T12:00:00Z",
    digest=DIGEST,
    previous_digest=PREVIOUS_DIGEST,
)


def _cases() -> dict[str, dict[str, Any]]:
    return {
        "scorer-deployment-serving": builders.scorer_deployment(OWNER, FULL, ROLLOUT),
        "scorer-deployment-no-model": builders.scorer_deployment(OWNER, spec(), builders.Rollout()),
        "scorer-service": builders.scorer_service(OWNER),
        "training-cronjob": builders.training_cronjob(OWNER, FULL),
        "backfill-cronjob": builders.backfill_cronjob(OWNER, FULL),
        "jobs-rbac": {
            "items": [
                builders.service_account(OWNER),
                builders.role(OWNER),
                builders.role_binding(OWNER),
            ]
        },
        "service-monitor": builders.service_monitor(OWNER),
        "prometheus-rule": builders.prometheus_rule(OWNER),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_golden(name: str) -> None:
    rendered = yaml.safe_dump(_cases()[name], sort_keys=True, width=100)
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("LEADOPS_UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path}; run with LEADOPS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), f"{name} differs from {path}"


def test_jobs_may_only_create_configmaps() -> None:
    assert builders.role(OWNER)["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}
    ]


def test_training_runs_train_then_publish_against_the_scorer_export() -> None:
    script = builders.training_cronjob(OWNER, FULL)["spec"]["jobTemplate"]["spec"]["template"][
        "spec"
    ]["containers"][0]["command"][2]
    train, publish = script.split(" && ")
    assert train.startswith("leadops train --input http://acme-scorer.sales.svc:8080/ops/export/")
    assert publish.startswith("leadops publish --artifact /work/model.json --leadmodel acme")


def test_deployment_selector_is_stable_across_versions() -> None:
    a = builders.scorer_deployment(OWNER, FULL, ROLLOUT)
    b = builders.scorer_deployment(OWNER, FULL, builders.Rollout(version=1))
    assert a["spec"]["selector"] == b["spec"]["selector"]
    labels = a["spec"]["template"]["metadata"]["labels"]
    assert a["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_rules_include_the_seed_drift_alert() -> None:
    rules = [r for g in builders.prometheus_rule(OWNER)["spec"]["groups"] for r in g["rules"]]
    drift = next(r for r in rules if r["alert"] == "LeadModelHighDrift")
    assert "lead_model_drift_score" in drift["expr"]
    assert "> 3.0" in drift["expr"]
    assert drift["for"] == "1h"
    assert {"LeadModelStale", "LeadModelLowAuc"} <= {r["alert"] for r in rules}


@pytest.mark.parametrize("prometheus_operator", [False, True])
@pytest.mark.parametrize("alert_rules", [False, True])
def test_child_keys_name_what_children_builds(prometheus_operator: bool, alert_rules: bool) -> None:
    owner = builders.Owner(name="lm", namespace="ns", uid="u")
    built = builders.children(
        owner,
        spec(),
        builders.Rollout(),
        prometheus_operator=prometheus_operator,
        alert_rules=alert_rules,
    )
    assert [(m["kind"], m["metadata"]["name"]) for m in built] == builders.child_keys(
        "lm", prometheus_operator=prometheus_operator, alert_rules=alert_rules
    )
