"""spec.experiment and spec.outcomes: the models, and the CEL rules the CRD carries for them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadops.operator import spec

ROOT = Path(__file__).resolve().parents[3]
REDIS = {"urlSecretRef": {"name": "r", "key": "u"}}


def _experiment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "memory-on",
        "variants": [
            {"name": "control", "weight": 50},
            {"name": "memory", "weight": 50, "flags": {"memory": "on"}},
        ],
    }
    return body | overrides


def _spec(experiment: dict[str, Any]) -> spec.LeadModelSpec:
    return spec.LeadModelSpec.model_validate({"redis": REDIS, "experiment": experiment})


def test_defaults_of_an_experiment_and_the_maturity_window() -> None:
    lm = _spec(_experiment())
    assert lm.outcomes.window_days == 14
    exp = lm.experiment
    assert exp is not None
    assert (exp.unit, exp.primary_metric, exp.promotion) == (
        spec.ExperimentUnit.LEAD,
        spec.PrimaryMetric.CONVERSION,
        spec.Promotion.AUTOMATIC,
    )
    assert exp.alpha_value == Decimal("0.05")
    assert exp.variants[1].flags == {"memory": "on"}
    assert lm.semantic_errors() == []
    assert spec.LeadModelSpec.model_validate({"redis": REDIS}).experiment is None


@pytest.mark.parametrize(
    ("variants", "error"),
    [
        ([{"name": "a", "weight": 60}, {"name": "b", "weight": 50}], "weights must sum to 100"),
        ([{"name": "a", "weight": 50}, {"name": "a", "weight": 50}], "names must be unique"),
    ],
)
def test_cross_field_rules_are_reported_like_the_cel_rules(
    variants: list[dict[str, Any]], error: str
) -> None:
    errors = _spec(_experiment(variants=variants)).semantic_errors()
    assert len(errors) == 1
    assert error in errors[0]


@pytest.mark.parametrize(
    "experiment",
    [
        _experiment(variants=[{"name": "a", "weight": 99}]),  # one variant
        _experiment(variants=[{"name": f"v{i}", "weight": 20} for i in range(5)]),  # five
        _experiment(variants=[{"name": "a", "weight": 100}, {"name": "b", "weight": 0}]),
        _experiment(variants=[{"name": "A", "weight": 50}, {"name": "b", "weight": 50}]),
        _experiment(unit="session"),
        _experiment(alpha="0.05x"),
        _experiment(primaryMetric="revenue"),
    ],
)
def test_shapes_the_schema_refuses(experiment: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _spec(experiment)


def test_alpha_above_the_cap_is_a_semantic_error() -> None:
    assert _spec(_experiment(alpha="0.5")).semantic_errors() == [
        "experiment alpha must be above 0 and at most 0.2"
    ]


def test_the_crd_carries_the_rules_and_bounds() -> None:
    doc = yaml.safe_load((ROOT / "crds" / "leadmodel.yaml").read_text())
    props = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    experiment = props["properties"]["experiment"]
    assert [r["rule"] for r in experiment["x-kubernetes-validations"]] == [
        spec.VARIANT_COUNT_RULE,
        spec.VARIANT_WEIGHTS_RULE,
        spec.VARIANT_NAMES_RULE,
        spec.ALPHA_RULE,
    ]
    variants = experiment["properties"]["variants"]
    # Bounded lists and maps keep the CEL rules within the apiserver's cost budget.
    assert (variants["minItems"], variants["maxItems"]) == (2, 4)
    assert variants["items"]["properties"]["flags"]["maxProperties"] == 16
    assert props["properties"]["outcomes"]["properties"]["windowDays"]["default"] == 14
