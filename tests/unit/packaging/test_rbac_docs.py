"""docs/operator.md's RBAC table is the chart's rules, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from .chart import one, render

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "operator.md"

Rule = tuple[str, str, str, frozenset[str]]


def _chart_rules(helm_bin: Path) -> set[Rule]:
    objects = render(helm_bin)
    out: set[Rule] = set()
    for role in ("application", "framework"):
        for rule in one(objects, "ClusterRole", f"-{role}")["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.add((role, group or "core", resource, frozenset(rule["verbs"])))
    return out


def _doc_rules() -> set[Rule]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## RBAC", 1)[1].split("\n## ", 1)[0]
    out: set[Rule] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in {"role", "---"} or set(cells[0]) <= {"-", " "}:
            continue
        role, group, resources, verbs = (re.sub(r"`", "", c) for c in cells[:4])
        for resource in resources.split(","):
            out.add((role, group, resource.strip(), frozenset(v.strip() for v in verbs.split(","))))
    return out


def test_the_documented_rbac_table_is_the_charts(helm_bin: Path) -> None:
    documented, rendered = _doc_rules(), _chart_rules(helm_bin)
    assert documented, "no RBAC table in docs/operator.md"
    assert documented - rendered == set(), "documented but not in the chart"
    assert rendered - documented == set(), "in the chart but not documented"
