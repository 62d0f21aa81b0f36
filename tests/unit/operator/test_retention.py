"""spec.retention: its floor (the longest window that reads leads), the InvalidSpec it gives,
and the scorer env it becomes (read back through the scorer's own Settings)."""

from __future__ import annotations

from typing import Any

import pytest

from leadops.operator import builders, reconcile
from leadops.scorer import retention
from leadops.scorer.settings import Settings

from .worlds import spec

OWNER = builders.Owner(name="acme", namespace="sales", uid="6f1c2d0e-0000-4000-8000-000000000001")
EXPERIMENT = {
    "name": "memory-on",
    "variants": [{"name": "control", "weight": 50}, {"name": "memory", "weight": 50}],
}


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({}, None),  # defaults: 90 days, the floor 14 (outcomes.windowDays)
        ({"retention": {"leadDays": 14}}, None),
        ({"retention": {"leadDays": 13}}, "retention.leadDays 13 is below 14, the longest "
         "window that reads leads (outcomes.windowDays)"),
        ({"outcomes": {"windowDays": 30}, "retention": {"leadDays": 20}}, "below 30"),
        ({"experiment": EXPERIMENT, "retention": {"leadDays": 28}}, None),
        ({"experiment": EXPERIMENT, "retention": {"leadDays": 27}},
         "below 28, the longest window that reads leads (experiment.maxDurationDays)"),
        ({"experiment": EXPERIMENT | {"maxDurationDays": 10}, "outcomes": {"windowDays": 21},
          "retention": {"leadDays": 20}}, "(outcomes.windowDays)"),
        ({"retention": {"leadDays": 400}},
         "retention.outcomeDays 365 is below retention.leadDays 400"),
        ({"retention": {"leadDays": 100, "outcomeDays": 99}},
         "retention.outcomeDays 99 is below retention.leadDays 100"),
    ],
)  # fmt: skip
def test_retention_below_its_floor_is_an_invalid_spec(
    fields: dict[str, Any], refusal: str | None
) -> None:
    body = {"spec": {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}, **fields}}
    if refusal is None:
        reconcile.parse(body)
        return
    with pytest.raises(reconcile.InvalidSpec) as info:
        reconcile.parse(body)
    assert refusal in str(info.value)


def test_the_scorer_reads_the_retention_the_deployment_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = spec(retention={"leadDays": 30, "outcomeDays": 400})
    deployment = builders.scorer_deployment(OWNER, lm, builders.Rollout())
    (scorer,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in scorer["env"] if "value" in e}
    assert env["LEADOPS_RETENTION_DAYS"] == "30"
    assert env["LEADOPS_OUTCOME_RETENTION_DAYS"] == "400"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    keep = Settings().retention()
    assert keep == retention.Retention(lead_seconds=30 * 86_400, outcome_seconds=400 * 86_400)
