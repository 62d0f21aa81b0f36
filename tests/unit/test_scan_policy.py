"""The policy scan's bookkeeping: checkov's failures held to hack/scan/accepted.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hack.scan import policy

SCORER = policy.Failure("CKV_K8S_11", "Deployment.sales.acme-scorer", "golden:x.yaml", "CPU")
OPERATOR = policy.Failure("CKV_K8S_11", "Deployment.ops.leadops", "chart:default", "CPU")


def accepted(**fields: object) -> policy.Accepted:
    base: dict[str, object] = {"check": "CKV_K8S_11", "resources": ("*",), "sources": ("*",)}
    return policy.Accepted(**{**base, **fields, "reason": "because"})  # type: ignore[arg-type]


def test_a_failure_nothing_accepts_is_reported() -> None:
    only_scorer = accepted(resources=("Deployment.*.acme-scorer",))
    unaccepted, stale = policy.judge([SCORER, OPERATOR], [only_scorer])
    assert unaccepted == [OPERATOR]
    assert stale == []


def test_an_entry_that_accepts_nothing_is_stale() -> None:
    other_check = accepted(check="CKV_K8S_15")
    by_source = accepted(sources=("chart:*",))
    unaccepted, stale = policy.judge([OPERATOR], [other_check, by_source])
    assert unaccepted == []
    assert stale == [other_check]


def test_every_entry_needs_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text(yaml.safe_dump([{"check": "CKV_K8S_11", "reason": " "}]))
    with pytest.raises(ValueError, match="needs a reason"):
        policy.load_accepted(path)


def test_the_committed_list_loads_and_names_real_checks() -> None:
    entries = policy.load_accepted()
    assert entries
    assert all(e.check.startswith(("CKV_K8S_", "CKV2_K8S_")) for e in entries)


def test_checkov_reports_become_failures_with_their_source() -> None:
    report = {
        "results": {
            "failed_checks": [
                {
                    "check_id": "CKV2_K8S_6",
                    "check_name": "NetworkPolicy",
                    "resource": "Pod.sales.acme-scorer.app.kubernetes.io/name-leadops",
                    "file_path": "/golden-scorer.yaml",
                },
                {
                    "check_id": "CKV_K8S_11",
                    "check_name": "CPU",
                    "resource": "Deployment.ops.leadops",
                    "file_path": "/chart-namespaced.yaml",
                },
            ]
        }
    }
    assert [(f.resource, f.source) for f in policy.failures_of([report])] == [
        ("Pod.sales.acme-scorer", "golden:golden-scorer.yaml"),
        ("Deployment.ops.leadops", "chart:namespaced"),
    ]


def test_golden_lists_are_split_into_documents() -> None:
    docs = policy.golden_documents()
    accounts = list(yaml.safe_load_all(docs["pod-accounts.yaml"]))
    assert [d["kind"] for d in accounts] == ["ServiceAccount", "ServiceAccount"]
    assert "scorer-deployment-serving.yaml" in docs
