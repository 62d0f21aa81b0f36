"""The demo creates every Secret the acme example names, or its LeadModel stops at
Ready=False/MissingSecret (which broke `make demo` once, unseen by the suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hack.demo_operator import tenant_secrets

ROOT = Path(__file__).resolve().parents[3]


def _secret_refs(node: Any) -> set[tuple[str, str]]:
    """(name, key) of every `*SecretRef` in a manifest, however deep."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        for field, value in node.items():
            if field.endswith("SecretRef") and isinstance(value, dict):
                found.add((value["name"], value["key"]))
            else:
                found |= _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _secret_refs(item)
    return found


def test_the_demo_creates_exactly_the_secrets_the_acme_example_names() -> None:
    leadmodel = yaml.safe_load((ROOT / "examples/tenants/acme/leadmodel.yaml").read_text())
    named = _secret_refs(leadmodel["spec"])
    assert named, "the example names no Secret: the parser is wrong"
    assert set(tenant_secrets()) == named


def test_the_demo_secrets_are_fresh_each_run() -> None:
    first, second = tenant_secrets(), tenant_secrets()
    assert first[("acme-scorer-api-key", "key")] != second[("acme-scorer-api-key", "key")]
    assert first[("acme-key-salt", "salt")] != second[("acme-key-salt", "salt")]
