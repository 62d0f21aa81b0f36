"""Generate the LeadModel CRD from the pydantic models in `spec`.

`python -m leadops.operator.crd > crds/leadmodel.yaml` (or `--write PATH`). The JSON schema
pydantic emits is turned into a structural schema: refs inlined, optionals unwrapped, titles
dropped, every property typed and described. Pure: needs only pydantic and the stdlib
(PyYAML only for writing the file).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

from leadops.operator import spec

_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minItems",
    "maxItems",
    "format",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "x-kubernetes-validations",
}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Serving",
        "type": "string",
        "jsonPath": ".status.servingVersion",
        "description": "Model version the scorer serves",
    },
    {"name": "AUC", "type": "string", "jsonPath": ".status.auc", "description": "Serving AUC"},
    {
        "name": "Health",
        "type": "string",
        "jsonPath": ".status.health",
        "description": "Scorer-reported health",
    },
    {
        "name": "Drift",
        "type": "string",
        "jsonPath": ".status.driftScore",
        "description": "Scorer-reported drift score",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Ready condition",
    },
    {
        "name": "Experiment",
        "type": "string",
        "jsonPath": ".status.experiment.phase",
        "description": "Phase of the A/B experiment",
    },
    # -o wide: what a person needs when something is off.
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "description": "Why Ready is what it is (e.g. NoModel, MissingSecret)",
        "priority": 1,
    },
    {
        "name": "Pinned",
        "type": "string",
        "jsonPath": ".spec.modelVersion",
        "description": "Version pinned in spec.modelVersion (empty: newest passing)",
        "priority": 1,
    },
    {
        "name": "Awaiting",
        "type": "string",
        "jsonPath": ".status.awaitingPromotion",
        "description": "Candidate that passed the gates and waits for Manual promotion",
        "priority": 1,
    },
    {
        "name": "Reported",
        "type": "integer",
        "jsonPath": ".status.scorerPodsReported",
        "description": "Scorer Pods whose report health and drift combine",
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0912
    """Rewrite one pydantic JSON-schema node as a structural Kubernetes schema node."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        # Optional[X] is X that may be absent; Kubernetes has no null-typed branch.
        choices = [c for c in node.pop("anyOf") if c.get("type") != "null"]
        if len(choices) != 1:
            raise ValueError(f"cannot express union {choices} structurally")
        inner = choices[0]
        if "$ref" in inner:
            inner = {**defs[inner["$ref"].split("/")[-1]]}
        node = {**inner, **{k: v for k, v in node.items() if k != "default" or v is not None}}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    # Shared lists would be dumped as YAML aliases.
    if "enum" in out:
        out["enum"] = list(out["enum"])
    if "x-kubernetes-validations" in out:
        out["x-kubernetes-validations"] = [dict(r) for r in out["x-kubernetes-validations"]]
    if out.get("default") is None:
        out.pop("default", None)
    if "properties" in out:
        out["properties"] = {
            name: _structural(child, defs) for name, child in out["properties"].items()
        }
        out["type"] = "object"
    if "items" in out:
        out["items"] = _structural(out["items"], defs)
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"], defs)
    elif "additionalProperties" in out:
        out.pop("additionalProperties")
    if out.get("type") == "integer":
        out["format"] = "int64"
    if "description" not in out and node.get("title"):
        out["description"] = node["title"]
    return out


def schema_of(model: type[spec._Model]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _spec_schema() -> dict[str, Any]:
    out = schema_of(spec.LeadModelSpec)
    out["description"] = "Desired state: which model serves and the bar candidates must clear."
    return out


def _status_schema() -> dict[str, Any]:
    out = schema_of(spec.LeadModelStatus)
    out["description"] = "Observed state, rebuilt from the cluster on every reconcile."
    # Conditions are a map keyed by type (API conventions).
    out["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    out["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return out


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict (what `kubectl apply` wants)."""
    schema = {
        "type": "object",
        "description": "A lead-scoring model served on Kubernetes with gates, rollout "
        "and automatic rollback.",
        "required": ["spec"],
        "x-kubernetes-validations": [
            {
                "rule": spec.NAME_RULE,
                "message": spec.NAME_RULE_MESSAGE,
                "reason": "FieldValueInvalid",
            }
        ],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of this object."},
            "kind": {"type": "string", "description": "Kind of this object (LeadModel)."},
            "metadata": {"type": "object"},
            "spec": _spec_schema(),
            "status": _status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.PLURAL}.{spec.GROUP}",
            "labels": {"app.kubernetes.io/name": "leadops", "app.kubernetes.io/part-of": "leadops"},
        },
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": list(spec.SHORT_NAMES),
                "categories": ["leadops"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


HEADER = (
    "# Generated by `python -m leadops.operator.crd --write crds/leadmodel.yaml` from\n"
    "# operator/leadops/operator/spec.py. Do not edit by hand: edit the models and regenerate.\n"
)


def render() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=4096)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if args[:1] == ["--write"] and len(args) == 2:
        with open(args[1], "w", encoding="utf-8") as fh:
            fh.write(text)
        return 0
    if args == ["--json"]:
        print(json.dumps(build_crd(), indent=2))
        return 0
    if args:
        print("usage: python -m leadops.operator.crd [--write PATH | --json]", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
