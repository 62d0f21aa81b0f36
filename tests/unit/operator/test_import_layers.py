"""Pure planning code imports no Kubernetes client, no kopf and no network library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE = [
    "leadops.operator.spec",
    "leadops.operator.crd",
    "leadops.operator.reasons",
    "leadops.operator.conditions",
    "leadops.operator.gates",
    "leadops.operator.registry",
    "leadops.operator.artifact_facts",
    "leadops.operator.builders",
    "leadops.operator.followups_builders",
    "leadops.operator.followups_check",
    "leadops.operator.followups_templates",
    "leadops.operator.network_policy",
    "leadops.operator.world",
    "leadops.operator.actions",
    "leadops.operator.settings",
    "leadops.operator.plan",
    "leadops.operator.trust",
    "leadops.operator.rollbacks",
    "leadops.operator.early_auc",
    "leadops.operator.pii_gate",
    "leadops.operator.replay_gate",
    "leadops.operator.cron_period",
    "leadops.contract.health",
]
FORBIDDEN = [
    "kubernetes",
    "kopf",
    "aiohttp",
    "urllib3",
    "requests",
    "httpx",
    "http.client",
    "xgboost",
    "numpy",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_impure(module: str) -> None:
    code = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, module], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert not bad, f"{module} pulls in {bad}"
