"""The Grafana dashboard: the seed's panels are there and every query names real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.unit.packaging.promql import documented_metrics, known_metrics, metric_names

DASHBOARD = (
    Path(__file__).resolve().parents[3]
    / "charts"
    / "leadops"
    / "files"
    / "grafana"
    / "leadops.json"
)


def _panels() -> list[dict[str, Any]]:
    doc = json.loads(DASHBOARD.read_text())
    return [p for p in doc["panels"] if p["type"] != "row"]


def _exprs(title: str) -> list[str]:
    panel = next(p for p in _panels() if p["title"] == title)
    return [t["expr"] for t in panel["targets"]]


def test_every_panel_query_names_only_metrics_that_exist() -> None:
    known, origin = known_metrics()
    queries = [(p["title"], t["expr"]) for p in _panels() for t in p["targets"]]
    doc = json.loads(DASHBOARD.read_text())
    for var in doc["templating"]["list"]:
        if isinstance(var.get("query"), dict):
            # Grafana's label_values(SELECTOR, LABEL): the selector is PromQL.
            selector = re.fullmatch(r"label_values\((.*),\s*\w+\)", var["query"]["query"])
            assert selector, var["query"]
            queries.append((var["name"], selector.group(1)))
    assert len(queries) >= 12
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= known, f"{title}: unknown metrics {names - known} (known from {origin})"


def test_the_seed_panels_with_their_threshold_lines() -> None:
    auc = _exprs("AUC over time")
    assert any(e.startswith("lead_model_auc{") and e.endswith("* 0 + 0.65") for e in auc)
    assert _exprs("Model age (hours)") == [
        '(time() - lead_model_version{namespace=~"$namespace", service=~"$service"}) / 3600'
    ]
    drift = _exprs("Drift score")
    assert any(e.endswith("* 0 + 3.0") for e in drift)
    assert metric_names(_exprs("Training samples")[0]) == {"lead_model_n_train"}


def test_traffic_latency_and_lifecycle_panels() -> None:
    assert metric_names(_exprs("Request rate")[0]) == {"leadops_http_requests_total"}
    latency = _exprs("Latency p50 / p99")
    assert [e.split(",")[0] for e in latency] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
    ]
    assert set().union(*map(metric_names, _exprs("Rollouts and rollbacks"))) == {
        "leadops_operator_rollouts_total",
        "leadops_operator_rollbacks_total",
    }


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not area & cells, f"panel {panel['title']} overlaps another"
        cells |= area


def test_documented_metrics_exist_in_the_metrics_modules_once_merged() -> None:
    known, origin = known_metrics()
    for source, names in documented_metrics().items():
        missing = names - known
        assert not missing, f"docs/operations.md lists {missing} ({source}) not in {origin[source]}"


def test_follow_up_panels_show_the_alert_thresholds_and_the_latency_target() -> None:
    rates = _exprs("Follow-up failure and bounce rate")
    assert any(e.endswith("* 0 + 0.10") for e in rates)
    assert any(e.endswith("* 0 + 0.05") and 'channel="email"' in e for e in rates)
    assert any(e.endswith("* 0 + 0.1") for e in _exprs("Follow-up enqueue-to-send p99"))
    replies = _exprs("Follow-up open, click and reply rate")
    assert any('outcome=~"replied"' in e for e in replies)
    assert metric_names(_exprs("Dead-lettered follow-ups")[0]) == {"leadops_followups_total"}
