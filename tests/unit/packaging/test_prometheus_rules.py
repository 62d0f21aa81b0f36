"""The LeadOps alert rules: valid for promtool, unit-tested per alert, one source, documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadops.operator import builders
from tests.unit.packaging.promql import OPERATIONS_DOC, known_metrics, metric_names

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "operator" / "leadops" / "operator" / "manifests" / "prometheus-rules.yaml"
CHART_RULES = ROOT / "charts" / "leadops" / "files" / "prometheus-rules.yaml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "leadops-rules.test.yaml"
EXPECTED_ALERTS = {
    "LeadModelHighDrift",
    "LeadModelStale",
    "LeadModelLowAuc",
    "LeadModelCriticalAuc",
    "LeadModelEstimatedAucLow",
    "LeadModelReloadFailed",
    "LeadModelBackfillFailed",
    "LeadStoreDown",
    "LeadRecordsDropped",
    "LeadFollowUpFailureRateHigh",
    "LeadFollowUpBounceRateHigh",
}
RUNBOOK_PREFIX = "https://github.com/leadops/leadops/blob/main/docs/operations.md#"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run hack/ensure-system.sh (Debian package prometheus)"
        )
    return path


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings: lower-case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_promtool_check_rules_accepts_the_rule_file() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS


def test_the_alerts_are_the_agreed_set_with_severity_and_annotations() -> None:
    alerts = _alerts()
    assert {a["alert"] for a in alerts} == EXPECTED_ALERTS
    for alert in alerts:
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), alert
    by_name = {a["alert"]: a for a in alerts}
    # The seed's alert, as the seed wrote it: drift above 3.0 for one hour, warning.
    drift = by_name["LeadModelHighDrift"]
    assert "lead_model_drift_score) > 3.0" in drift["expr"]
    assert drift["for"] == "1h"
    assert drift["labels"]["severity"] == "warning"
    assert "172800" in by_name["LeadModelStale"]["expr"]
    assert by_name["LeadModelCriticalAuc"]["labels"]["severity"] == "critical"


def test_runbook_links_point_at_existing_sections_of_the_operations_guide() -> None:
    anchors = _github_anchors(OPERATIONS_DOC.read_text())
    for alert in _alerts():
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), url
        anchor = url.removeprefix(RUNBOOK_PREFIX)
        assert anchor == alert["alert"].lower()
        assert anchor in anchors, f"docs/operations.md has no section for {alert['alert']}"


def test_alerts_use_only_metrics_that_exist() -> None:
    known, origin = known_metrics()
    for alert in _alerts():
        missing = metric_names(alert["expr"]) - known
        assert not missing, f"{alert['alert']} uses unknown metrics {missing} (from {origin})"


def test_chart_ships_an_identical_copy_of_the_rules() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), (
        "charts/leadops/files/prometheus-rules.yaml differs from the operator's; "
        "copy operator/leadops/operator/manifests/prometheus-rules.yaml over it"
    )


def _scoped(
    namespace: str, leadmodel: str, durations: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    owner = builders.Owner(name=leadmodel, namespace=namespace, uid="uid-1")
    rule: dict[str, Any] = builders.prometheus_rule(owner, durations=durations)["spec"]
    return rule


def _drift_annotations(where: str) -> dict[str, str]:
    """LeadModelHighDrift's annotations as Prometheus renders them for drift 4.5 at `where`."""
    return {
        "summary": f"Lead model drift above 3.0 for an hour ({where})",
        "description": f"Production features served by {where} are 4.50 standard deviations "
        "from the training distribution (threshold 3.0). Lead patterns changed; retrain with "
        "recent data.",
        "runbook_url": RUNBOOK_PREFIX + "leadmodelhighdrift",
    }


def test_for_overrides_change_only_the_named_alerts_and_promtool_accepts_them(
    tmp_path: Path,
) -> None:
    durations = (("LeadModelCriticalAuc", "10s"), ("LeadModelHighDrift", "20s"))
    scoped = _scoped("sales", "acme", durations)
    fors = {r["alert"]: r.get("for") for g in scoped["groups"] for r in g["rules"]}
    shipped = {r["alert"]: r.get("for") for r in _alerts()}
    assert shipped["LeadModelHighDrift"] == "1h"
    assert shipped["LeadModelCriticalAuc"] == "5m"
    assert fors == {**shipped, "LeadModelCriticalAuc": "10s", "LeadModelHighDrift": "20s"}
    rules = tmp_path / "acme-rules.yaml"
    rules.write_text(yaml.safe_dump(scoped))
    check = subprocess.run(
        [_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # promtool evaluates the shortened hold: drift 4.5 fires after 20 s, not after an hour.
    series = 'lead_model_drift_score{namespace="sales", service="acme-scorer", pod="p"}'
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": [{"series": series, "values": "4.5x20"}],
                "alert_rule_test": [
                    {"alertname": "LeadModelHighDrift", "eval_time": "15s", "exp_alerts": []},
                    {
                        "alertname": "LeadModelHighDrift",
                        "eval_time": "25s",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "namespace": "sales",
                                    "service": "acme-scorer",
                                },
                                "exp_annotations": _drift_annotations("sales/acme-scorer"),
                            }
                        ],
                    },
                ],
            }
        ],
    }
    spec = tmp_path / "acme-rules.test.yaml"
    spec.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [_promtool(), "test", "rules", spec.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_leadmodels_rule_names_only_its_own_series() -> None:
    for group in _scoped("sales", "acme")["groups"]:
        for rule in group["rules"]:
            for metric in metric_names(rule["expr"]):
                selectors = re.findall(rf"\b{metric}(?![\w:])(\{{[^}}]*\}})?", rule["expr"])
                assert selectors, (rule["alert"], metric)
                for selector in selectors:
                    assert 'namespace="sales"' in selector, (rule["alert"], selector)
                    assert "acme-" in selector or metric == "kube_job_status_failed", selector


def test_a_leadmodels_rule_fires_for_its_scorer_and_backfill_only(tmp_path: Path) -> None:
    """promtool evaluates the scoped rules over three LeadModels' series: only acme's count."""
    rules = tmp_path / "acme-rules.yaml"
    rules.write_text(yaml.safe_dump(_scoped("sales", "acme")))
    check = subprocess.run(
        [_promtool(), "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    drift = [
        {
            "series": f'lead_model_drift_score{{namespace="{ns}", service="{svc}", pod="{svc}-a"}}',
            "values": "4.5x90",
        }
        for ns, svc in [
            ("sales", "acme-scorer"),
            ("sales", "beta-scorer"),
            ("other", "acme-scorer"),
        ]
    ]
    jobs = [
        series
        for ns, cronjob, job in [
            ("sales", "acme-pii-backfill", "acme-pii-backfill-1"),
            ("sales", "beta-pii-backfill", "beta-pii-backfill-1"),
            ("other", "acme-pii-backfill", "acme-pii-backfill-2"),
        ]
        for series in (
            {
                "series": f'kube_job_status_failed{{namespace="{ns}", job_name="{job}"}}',
                "values": "1x30",
            },
            {
                "series": f'kube_job_owner{{namespace="{ns}", job_name="{job}", '
                f'owner_kind="CronJob", owner_name="{cronjob}"}}',
                "values": "1x30",
            },
        )
    ]
    exprs = {r["alert"]: r["expr"] for g in _scoped("sales", "acme")["groups"] for r in g["rules"]}
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": drift + jobs,
                # The expressions themselves (alert tests would also pin the annotations' text).
                "promql_expr_test": [
                    {
                        "expr": exprs["LeadModelHighDrift"],
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": '{namespace="sales", service="acme-scorer"}', "value": 4.5}
                        ],
                    },
                    {
                        "expr": exprs["LeadModelBackfillFailed"],
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": '{namespace="sales", owner_name="acme-pii-backfill"}',
                                "value": 1,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    spec = tmp_path / "acme-rules.test.yaml"
    spec.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [_promtool(), "test", "rules", spec.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
