"""Render the leadops chart with the real helm binary."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "leadops"


def helm(helm_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_bin), *args], capture_output=True, text=True, check=False)


def render(
    helm_bin: Path, *sets: str, namespace: str = "leadops-system", release: str = "lo"
) -> list[dict[str, Any]]:
    """`helm template` with `--set` pairs; the rendered objects (templates only, no CRDs)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for pair in sets:
        args += ["--set", pair]
    result = helm(helm_bin, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
    return found[0]
