"""Manifest builders against golden YAML (LEADOPS_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadops.operator import builders
from leadops.operator.spec import Autoscaling

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
BOOTSTRAP_CM = spec(
    scorer={"apiKeySecretRef": {"name": "scorer-api", "key": "key"}},
    training={"bootstrap": {"configMapKeyRef": {"name": "history", "key": "outcomes.csv"}}},
)
AUTOSCALED = spec(
    scorer={
        "autoscaling": {"minReplicas": 3, "maxReplicas": 12, "targetCPUUtilizationPercentage": 60}
    }
)
AUTOSCALING = Autoscaling.model_validate(
    {"minReplicas": 3, "maxReplicas": 12, "targetCPUUtilizationPercentage": 60}
)
S3 = spec(
    scorer={"image": "registry.example/leadops/scorer:1.2.3"},
    artifacts={
        "s3": {
            "bucket": "leadops-models",
            "prefix": "prod/",
            "endpoint": "https://minio.storage.svc:9000",
            "region": "eu-west-1",
            "credentialsSecretRef": {"name": "leadops-s3", "key": "credentials"},
        }
    },
)
REPLAYED = spec(
    scorer={"apiKeySecretRef": {"name": "scorer-api", "key": "key"}},
    guards={"replay": {"days": 14, "minLeads": 500, "maxScorePsi": "0.25"}},
)
REPLAYED_S3 = spec(
    scorer={"image": "registry.example/leadops/scorer:1.2.3"},
    artifacts=S3.artifacts.model_dump(by_alias=True, exclude_none=True),
    guards={"replay": {}},
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


def _cases() -> dict[str, dict[str, Any] | None]:
    return {
        "scorer-deployment-serving": builders.scorer_deployment(OWNER, FULL, ROLLOUT),
        "scorer-deployment-no-model": builders.scorer_deployment(OWNER, spec(), builders.Rollout()),
        "scorer-deployment-cold-start": builders.scorer_deployment(
            OWNER, spec(scorer={"coldStart": "AcceptUnscored"}), builders.Rollout()
        ),
        "scorer-deployment-s3": builders.scorer_deployment(
            OWNER,
            S3,
            ROLLOUT,
            objects={1764158400: "s3://leadops-models/prod/sales/acme/1764158400.json.gz"},
        ),
        "training-cronjob-s3": builders.training_cronjob(OWNER, S3),
        "replay-job": builders.replay_job(
            OWNER, REPLAYED, candidate=(1764158400, DIGEST), baseline=(1764072000, PREVIOUS_DIGEST)
        ),
        "replay-job-s3": builders.replay_job(
            OWNER,
            REPLAYED_S3,
            candidate=(1764158400, DIGEST),
            baseline=(1764072000, PREVIOUS_DIGEST),
            objects={
                1764158400: "s3://leadops-models/prod/sales/acme/1764158400.json.gz",
                1764072000: "s3://leadops-models/prod/sales/acme/1764072000.json.gz",
            },
        ),
        "bootstrap-job-configmap": builders.bootstrap_job(OWNER, BOOTSTRAP_CM),
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
        "pod-accounts": {
            "items": [
                builders.tokenless_service_account(
                    OWNER, account="scorer_account", component="scorer"
                ),
                builders.tokenless_service_account(
                    OWNER, account="backfill_account", component="pii-backfill"
                ),
            ]
        },
        "scorer-autoscaler": builders.scorer_autoscaler(OWNER, AUTOSCALING),
        "scorer-disruption-budget": builders.scorer_disruption_budget(OWNER),
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


def test_jobs_may_only_create_configmaps_and_read_their_own_leadmodel() -> None:
    assert builders.role(OWNER)["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {
            "apiGroups": ["leadops.io"],
            "resources": ["leadmodels"],
            "resourceNames": ["acme"],
            "verbs": ["get"],
        },
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


@pytest.mark.parametrize(
    ("spool", "volume"),
    [
        ({}, {"name": "spool", "emptyDir": {"sizeLimit": "128Mi"}}),
        (
            {"claimName": "acme-spool"},
            {"name": "spool", "persistentVolumeClaim": {"claimName": "acme-spool"}},
        ),
    ],
)
def test_spooled_durability_mounts_the_spool(spool: dict[str, str], volume: dict[str, Any]) -> None:
    lm = spec(scorer={"durability": "spooled", "spool": spool})
    pod = builders.scorer_deployment(OWNER, lm, builders.Rollout())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["LEADOPS_DURABILITY"] == "spooled"
    assert env["LEADOPS_SPOOL_DIR"] == builders.SPOOL_DIR
    assert volume in pod["volumes"]
    assert {"name": "spool", "mountPath": builders.SPOOL_DIR} in container["volumeMounts"]


def test_other_durabilities_mount_no_spool() -> None:
    lm = spec(scorer={"durability": "bestEffort", "spool": {"claimName": "unused"}})
    pod = builders.scorer_deployment(OWNER, lm, builders.Rollout())["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["LEADOPS_DURABILITY"] == "bestEffort"
    assert "LEADOPS_SPOOL_DIR" not in env
    assert all(v["name"] != "spool" for v in pod["volumes"])


def _container(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def test_cold_start_is_set_only_while_nothing_serves() -> None:
    cold = spec(scorer={"coldStart": "AcceptUnscored"})

    def env(rollout: builders.Rollout) -> dict[str, str]:
        deployment = builders.scorer_deployment(OWNER, cold, rollout)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    assert env(builders.Rollout())["LEADOPS_COLD_START"] == "true"
    assert "LEADOPS_COLD_START" not in env(ROLLOUT)
    refuse = builders.scorer_deployment(OWNER, spec(), builders.Rollout())
    names = [e["name"] for e in refuse["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "LEADOPS_COLD_START" not in names


def test_bootstrap_is_the_training_template_on_the_historical_outcomes() -> None:
    cron = builders.training_cronjob(OWNER, BOOTSTRAP_CM)["spec"]["jobTemplate"]["spec"]
    job = builders.bootstrap_job(OWNER, BOOTSTRAP_CM)
    assert job is not None
    assert job["metadata"]["name"] == "acme-bootstrap"
    assert job["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert "ttlSecondsAfterFinished" not in job["spec"]  # the record that it ran
    assert job["spec"]["activeDeadlineSeconds"] == cron["activeDeadlineSeconds"]
    container = _container(job)
    script = container["command"][2]
    assert f"--input {builders.BOOTSTRAP_DIR}/outcomes.csv" in script
    assert "leadops publish" in script
    assert container["image"] == _container({"spec": cron})["image"]
    # The scorer's API key is not handed to the bootstrap input.
    assert "env" not in container


def test_bootstrap_from_a_url_or_a_secret() -> None:
    by_url = builders.bootstrap_job(
        OWNER,
        spec(
            scorer={"apiKeySecretRef": {"name": "scorer-api", "key": "key"}},
            training={"bootstrap": {"url": "https://data.example/outcomes.csv"}},
        ),
    )
    assert by_url is not None
    assert "--input https://data.example/outcomes.csv" in _container(by_url)["command"][2]
    assert [v["name"] for v in by_url["spec"]["template"]["spec"]["volumes"]] == ["work"]
    assert "env" not in _container(by_url)
    by_secret = builders.bootstrap_job(
        OWNER, spec(training={"bootstrap": {"secretKeyRef": {"name": "hist", "key": "o.csv"}}})
    )
    assert by_secret is not None
    volumes = by_secret["spec"]["template"]["spec"]["volumes"]
    assert {"name": "bootstrap", "secret": {"secretName": "hist"}} in volumes
    assert builders.bootstrap_job(OWNER, spec()) is None


def test_with_autoscaling_the_deployment_never_names_replicas() -> None:
    """The HorizontalPodAutoscaler owns them: a merge patch without the field leaves its value."""
    assert "replicas" not in builders.scorer_deployment(OWNER, AUTOSCALED, ROLLOUT)["spec"]
    assert builders.scorer_deployment(OWNER, FULL, ROLLOUT)["spec"]["replicas"] == 3
    made = builders.children(
        OWNER, AUTOSCALED, ROLLOUT, prometheus_operator=False, alert_rules=False
    )
    kinds = [(m["kind"], m["metadata"]["name"]) for m in made]
    assert ("HorizontalPodAutoscaler", "acme-scorer") in kinds
    assert kinds == builders.child_keys(
        "acme", prometheus_operator=False, alert_rules=False, autoscaling=True
    )
