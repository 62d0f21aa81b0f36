"""The CRD is generated from the pydantic models; they must never disagree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadops.operator import crd, spec

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "crds" / "leadmodel.yaml"


def _schema() -> dict[str, Any]:
    doc = yaml.safe_load(COMMITTED.read_text())
    version: dict[str, Any] = doc["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crd_is_generated_from_the_models() -> None:
    assert COMMITTED.read_text() == crd.render(), (
        "crds/leadmodel.yaml is stale: run `python -m leadops.operator.crd --write "
        "crds/leadmodel.yaml`"
    )


def _walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        out += _walk(child, f"{path}.{name}")
    if "items" in node:
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_every_field_is_typed_and_described_for_kubectl_explain() -> None:
    schema = _schema()
    for section in ("spec", "status"):
        for path, node in _walk(schema["properties"][section], section):
            assert node.get("type") in {"object", "string", "integer", "boolean", "array"}, path
            described = path.endswith(("{}", "[]")) or node.get("description")
            assert described, f"{path} has no description"
            assert not {"anyOf", "$ref"} & node.keys(), f"{path} is not structural"


def _apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """What the apiserver's structural defaulting does (enough for our schema)."""
    if node.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for name, child in (node.get("properties") or {}).items():
        if name not in out and "default" in child:
            out[name] = child["default"]
        if name in out:
            out[name] = _apply_defaults(child, out[name])
    return out


def test_schema_defaults_equal_the_model_defaults() -> None:
    minimal = {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}}
    defaulted = _apply_defaults(_schema()["properties"]["spec"], minimal)
    from_models = spec.LeadModelSpec.model_validate(minimal).model_dump(
        by_alias=True, mode="json", exclude_none=True
    )
    assert defaulted == from_models


def test_names_group_version_printer_columns_and_status_subresource() -> None:
    doc = yaml.safe_load(COMMITTED.read_text())
    assert doc["spec"]["group"] == "leadops.io"
    assert doc["spec"]["names"]["shortNames"] == ["lm"]
    version = doc["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == [
        "Serving", "AUC", "Health", "Drift", "Ready", "Experiment", "Reason", "Pinned",
        "Awaiting", "Reported", "Age",
    ]  # fmt: skip
    # What a person needs when something is off show with `kubectl get lm -o wide`.
    wide = {
        c["name"]: c["jsonPath"]
        for c in version["additionalPrinterColumns"]
        if c.get("priority") == 1
    }
    assert wide == {
        "Reason": '.status.conditions[?(@.type=="Ready")].reason',
        "Pinned": ".spec.modelVersion",
        "Awaiting": ".status.awaitingPromotion",
        "Reported": ".status.scorerPodsReported",
    }


def test_cross_field_rule_is_cel_and_matches_the_model() -> None:
    rules = _schema()["properties"]["spec"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == [spec.SIGNATURE_NEEDS_KEY_RULE]
    lm = spec.LeadModelSpec.model_validate(
        {"redis": {"urlSecretRef": {"name": "r", "key": "u"}}, "gates": {"signature": "Required"}}
    )
    assert lm.semantic_errors() == ["gates.signature Required needs signing.keySecretRef"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("minAuc", "1.5"),
        ("minAuc", "0.7x"),
        ("minAuc", "-0.1"),
        ("maxPositiveRate", "2"),
        ("maxDriftScore", "abc"),
        ("minTrainSamples", 0),
        ("maxAgeHours", 0),
        ("signature", "Sometimes"),
    ],
)
def test_bad_gate_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        spec.LeadModelSpec.model_validate(
            {"redis": {"urlSecretRef": {"name": "r", "key": "u"}}, "gates": {field: value}}
        )


def test_numeric_strings_parse_to_decimal() -> None:
    gates = spec.Gates(min_auc="0.72", max_positive_rate="0.9", max_drift_score="2.5")
    assert str(gates.min_auc_value) == "0.72"
    assert gates.max_positive_rate_value > gates.min_auc_value
    assert str(gates.max_drift_score_value) == "2.5"


@pytest.mark.parametrize(
    "schedule",
    [
        "17 3 * * *",
        "0 2 * * 0",
        "*/15 * * * *",
        "0 0 1-15/2 jan-jun mon-fri",
        "@daily",
        "0 0 * * 7",
    ],
)
def test_valid_cron(schedule: str) -> None:
    assert spec.validate_cron(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("61 * * * *", "minute 61 is outside 0-59"),
        ("0 24 * * *", "hour 24"),
        ("0 0 0 * *", "day of month 0"),
        ("0 0 * 13 *", "month 13"),
        ("0 0 * * 8", "day of week 8"),
        ("* * * *", "needs 5 fields"),
        ("*/0 * * * *", "step must be positive"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 * foo *", "not a number"),
    ],
)
def test_invalid_cron_names_the_problem(schedule: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        spec.validate_cron(schedule)


def test_schema_valid_cron_can_still_be_semantically_invalid() -> None:
    pattern = _schema()["properties"]["spec"]["properties"]["training"]["properties"]["schedule"][
        "pattern"
    ]
    assert re.match(pattern, "61 * * * *")  # the apiserver lets it through...
    with pytest.raises(ValidationError, match="minute 61"):  # ...the operator does not
        spec.LeadModelSpec.model_validate(
            {
                "redis": {"urlSecretRef": {"name": "r", "key": "u"}},
                "training": {"schedule": "61 * * * *"},
            }
        )
