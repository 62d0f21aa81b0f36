"""spec.training / spec.piiBackfill placement: nodeSelector, tolerations, extended resources."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from leadops.operator import builders

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
GPU = {
    "nodeSelector": {"nvidia.com/gpu.present": "true", "pool": "train"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "ml", "effect": "NoExecute", "tolerationSeconds": 60},
    ],
    "resources": {"limits": {"nvidia.com/gpu": "1", "memory": "4Gi"}},
}


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def test_training_pod_lands_where_the_spec_says_with_its_gpu() -> None:
    pod = _pod(builders.training_cronjob(OWNER, spec(training=GPU)))
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "pool": "train"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "ml",
            "effect": "NoExecute",
            "tolerationSeconds": 60,
        },
    ]
    # The spec's keys over the defaults (cpu 2 stays: docs/security.md, "Resources").
    assert pod["containers"][0]["resources"]["limits"] == {
        "cpu": "2",
        "memory": "4Gi",
        "nvidia.com/gpu": "1",
    }


def test_backfill_pod_takes_its_own_placement_and_training_keeps_none() -> None:
    lm = spec(piiBackfill={"nodeSelector": {"pool": "batch"}})
    assert _pod(builders.backfill_cronjob(OWNER, lm))["nodeSelector"] == {"pool": "batch"}
    training = _pod(builders.training_cronjob(OWNER, lm))
    assert "nodeSelector" not in training
    assert "tolerations" not in training


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"nodeSelector": {"bad key!": "x"}}, "not a Kubernetes label key"),
        ({"nodeSelector": {"pool": "not a value"}}, "nodeSelector"),
        ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "takes no value"),
        ({"tolerations": [{"value": "v"}]}, "needs operator Exists"),
        ({"tolerations": [{"key": "k", "effect": "Sometimes"}]}, "effect"),
    ],
)
def test_bad_placement_is_refused_naming_the_field(training: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(training=training)


def test_training_on_a_dask_cluster_passes_the_scheduler_to_leadops_train() -> None:
    lm = spec(training={"dask": {"scheduler": "tcp://dask-scheduler.ml.svc:8786"}})
    command = _pod(builders.training_cronjob(OWNER, lm))["containers"][0]["command"][-1]
    assert "--dask-scheduler tcp://dask-scheduler.ml.svc:8786 &&" in command
    plain = _pod(builders.training_cronjob(OWNER, spec()))["containers"][0]["command"][-1]
    assert "--dask-scheduler" not in plain
    with pytest.raises(ValidationError, match="scheduler"):
        spec(training={"dask": {"scheduler": "dask-scheduler:8786; rm -rf /"}})
