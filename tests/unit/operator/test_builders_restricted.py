"""Every Pod the operator builds is admitted by Pod Security "restricted", fits a quota (requests
and a memory limit on every container) and gets Secrets only as files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadops.operator import builders
from leadops.operator import spec as spec_module

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
ROLLOUT = builders.Rollout(version=1764158400, digest="sha256:" + "ab" * 32)
SECRETS = {
    "scorer": {
        "apiKeySecretRef": {"name": "scorer-api", "key": "key"},
        "ingestKeysSecretRef": {"name": "ingest", "key": "keys"},
    },
    "signing": {"keySecretRef": {"name": "signing", "key": "k.pem"}},
    "pii": {"keySaltSecretRef": {"name": "salt", "key": "salt"}},
}


def _pods(lm: spec_module.LeadModelSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    """(child, Pod spec) of every workload the operator builds."""
    for child in builders.children(OWNER, lm, ROLLOUT, prometheus_operator=True, alert_rules=True):
        if child["kind"] == "Deployment":
            yield child["metadata"]["name"], child["spec"]["template"]["spec"]
        elif child["kind"] == "CronJob":
            pod = child["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            yield child["metadata"]["name"], pod
    # The replay Job (spec.guards.replay), made per candidate by the plan, not a child.
    guarded = lm.model_copy(update={"guards": spec_module.Guards(replay=spec_module.ReplayGuard())})
    job = builders.replay_job(
        OWNER, guarded, candidate=(1764158400, "sha256:" + "ab" * 32), baseline=(1, "sha256:00")
    )
    yield "acme-replay", job["spec"]["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("lm", [spec(), spec(**SECRETS)], ids=["minimal", "every-secret"])
def test_every_pod_meets_the_restricted_profile(lm: spec_module.LeadModelSpec) -> None:
    pods = dict(_pods(lm))
    assert sorted(pods) == ["acme-pii-backfill", "acme-replay", "acme-scorer", "acme-train"]
    for name, pod in pods.items():
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), name
        for container in _containers(pod):
            assert container["securityContext"] == {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, (name, container["name"])
            assert "ports" not in container or all(
                "hostPort" not in port for port in container["ports"]
            )


def test_the_init_container_counts_too() -> None:
    pod = dict(_pods(spec()))["acme-scorer"]
    assert [c["name"] for c in _containers(pod)] == ["unpack-model", "scorer"]


@pytest.mark.parametrize("lm", [spec(), spec(**SECRETS)], ids=["minimal", "every-secret"])
def test_every_container_has_requests_and_a_memory_limit(lm: spec_module.LeadModelSpec) -> None:
    for name, pod in _pods(lm):
        for container in _containers(pod):
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}, (name, container["name"])
            assert "memory" in resources["limits"], (name, container["name"])


def test_the_scorer_has_no_cpu_limit_and_the_jobs_have_one() -> None:
    limits = {
        container["name"]: container["resources"]["limits"]
        for _, pod in _pods(spec())
        for container in _containers(pod)
    }
    assert "cpu" not in limits["scorer"]
    assert "cpu" not in limits["unpack-model"]
    assert limits["train"]["cpu"] == "2"
    assert limits["pii-backfill"]["cpu"] == "1"
    assert limits["replay"]["cpu"] == "2"  # the training Job's resources
    # Every container of a batch Job has a CPU limit, the replay's unpacking ones too.
    assert limits["unpack-candidate"]["cpu"] == limits["unpack-baseline"]["cpu"] == "2"


def test_a_partial_override_keeps_the_other_defaults() -> None:
    lm = spec(
        scorer={
            "resources": {"requests": {"cpu": "1"}},
            "unpackResources": {"limits": {"memory": "512Mi"}},
        },
        training={"resources": {"limits": {"memory": "4Gi"}}},
    )
    resources = {
        container["name"]: container["resources"]
        for _, pod in _pods(lm)
        for container in _containers(pod)
    }
    assert resources["scorer"] == {
        "requests": {"cpu": "1", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert resources["unpack-model"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert resources["train"]["limits"] == {"cpu": "2", "memory": "4Gi"}


def test_uid_and_groups_only_where_the_spec_sets_them() -> None:
    lm = spec(podSecurityContext={"runAsUser": 1000680000, "fsGroup": 1000680000})
    for name, pod in _pods(lm):
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "runAsUser": 1000680000,
            "fsGroup": 1000680000,
        }, name


def test_root_cannot_be_asked_for() -> None:
    with pytest.raises(ValueError, match=r"runAsUser|run_as_user"):
        spec(podSecurityContext={"runAsUser": 0})


def test_secrets_are_files_never_env_values() -> None:
    pods = dict(_pods(spec(**SECRETS)))
    for name, pod in pods.items():
        for container in _containers(pod):
            for env in container.get("env", []):
                assert "valueFrom" not in env, (name, container["name"], env["name"])
    env = {
        container["name"]: {e["name"]: e["value"] for e in container.get("env", [])}
        for pod in pods.values()
        for container in _containers(pod)
    }
    assert env["scorer"]["LEADOPS_REDIS_URL_FILE"] == "/var/run/secrets/leadops/redis-url/url"
    assert env["pii-backfill"]["LEADOPS_REDIS_URL_FILE"] == (
        "/var/run/secrets/leadops/redis-url/url"
    )
    assert env["train"]["LEADOPS_API_KEY_FILE"] == "/var/run/secrets/leadops/api-key/key"
    assert env["replay"]["LEADOPS_API_KEY_FILE"] == "/var/run/secrets/leadops/api-key/key"
    for name, pod in pods.items():
        mounted = {m["name"] for c in _containers(pod) for m in c.get("volumeMounts", [])}
        secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
        assert secrets <= mounted, name


def test_only_the_training_pod_holds_an_api_token() -> None:
    pods = dict(_pods(spec()))
    tokens = {name: pod["automountServiceAccountToken"] for name, pod in pods.items()}
    # The replay runs as the jobs' account without its token: it never calls the API.
    assert tokens == {
        "acme-scorer": False,
        "acme-train": True,
        "acme-pii-backfill": False,
        "acme-replay": False,
    }
    accounts = {name: pod["serviceAccountName"] for name, pod in pods.items()}
    assert accounts == {
        "acme-scorer": "acme-scorer",
        "acme-train": "acme-jobs",
        "acme-pii-backfill": "acme-pii-backfill",
        "acme-replay": "acme-jobs",
    }
    children = builders.children(
        OWNER, spec(), ROLLOUT, prometheus_operator=False, alert_rules=False
    )
    made = {c["metadata"]["name"]: c for c in children if c["kind"] == "ServiceAccount"}
    assert {n: a["automountServiceAccountToken"] for n, a in made.items()} == {
        "acme-jobs": True,
        "acme-scorer": False,
        "acme-pii-backfill": False,
    }
    bound = [s["name"] for c in children if c["kind"] == "RoleBinding" for s in c["subjects"]]
    assert bound == ["acme-jobs"]
