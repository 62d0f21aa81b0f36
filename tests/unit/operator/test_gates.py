"""The gate chain as a table: facts x gates x clock -> verdict and reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leadops.operator import gates, reasons
from leadops.operator.spec import Gates, SignaturePolicy

from .worlds import NOW, V1, V3, facts

CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("good model passes", {}, {}, reasons.GATES_PASSED),
    ("AUC below bar", {"auc": "0.68"}, {}, reasons.AUC_BELOW_THRESHOLD),
    ("AUC exactly at bar passes", {"auc": "0.70"}, {}, reasons.GATES_PASSED),
    ("stricter bar", {"auc": "0.74"}, {"min_auc": "0.75"}, reasons.AUC_BELOW_THRESHOLD),
    ("too few leads", {"n_train": 99}, {}, reasons.TOO_FEW_TRAIN_SAMPLES),
    ("exactly enough leads", {"n_train": 100}, {}, reasons.GATES_PASSED),
    ("class imbalance", {"positive_rate": "0.95"}, {}, reasons.POSITIVE_RATE_TOO_HIGH),
    ("bad digest first", {"load_error": "DigestMismatch", "auc": "0.1"}, {}, "DigestMismatch"),
    ("bad signature", {"load_error": "SignatureInvalid"}, {}, "SignatureInvalid"),
    (
        "feature spec the scorer cannot serve",
        {"feature_spec_problem": "unknown encoder 'hash'"},
        {},
        reasons.FEATURE_SPEC_INCOMPATIBLE,
    ),
    ("unsigned but required", {}, {"signature": SignaturePolicy.REQUIRED}, "SignatureMissing"),
    (
        "signed, verified, required",
        {"signed": True, "signature_verified": True},
        {"signature": SignaturePolicy.REQUIRED},
        reasons.GATES_PASSED,
    ),
    ("AUC is checked before samples", {"auc": "0.5", "n_train": 3}, {}, "AucBelowThreshold"),
]


@pytest.mark.parametrize(("name", "fact_kw", "gate_kw", "reason"), CASES, ids=[c[0] for c in CASES])
def test_gate_chain(
    name: str, fact_kw: dict[str, Any], gate_kw: dict[str, Any], reason: str
) -> None:
    verdict = gates.evaluate(
        gates.GateInput(
            facts=facts(V3, **fact_kw),
            gates=Gates(**gate_kw),
            now=NOW,
            # Required needs a key (a CEL rule); the other rows are namespaces without one.
            signing_key_configured="signature" in gate_kw,
        )
    )
    assert verdict.reason == reason
    assert verdict.passed is (reason == reasons.GATES_PASSED)
    assert verdict.message


def test_age_gate_uses_the_clock_passed_in() -> None:
    inp = gates.GateInput(facts=facts(V1), gates=Gates(max_age_hours=24), now=NOW)
    assert gates.evaluate(inp).reason == reasons.ARTIFACT_TOO_OLD  # 30 h old
    younger = gates.GateInput(
        facts=facts(V1), gates=Gates(max_age_hours=24), now=NOW - timedelta(hours=8)
    )
    assert gates.evaluate(younger).passed


def test_pinned_versions_skip_only_the_age_gate() -> None:
    old = gates.GateInput(facts=facts(V1), gates=Gates(max_age_hours=24), now=NOW)
    assert gates.evaluate(old, chain=gates.PINNED_CHAIN).passed
    bad = gates.GateInput(facts=facts(V1, auc="0.6"), gates=Gates(max_age_hours=24), now=NOW)
    assert gates.evaluate(bad, chain=gates.PINNED_CHAIN).reason == reasons.AUC_BELOW_THRESHOLD


def test_message_names_the_numbers() -> None:
    verdict = gates.evaluate(gates.GateInput(facts=facts(V3, auc="0.68"), gates=Gates(), now=NOW))
    assert "0.68" in verdict.message
    assert "0.70" in verdict.message


KEYED: list[tuple[str, dict[str, Any], str]] = [
    ("unsigned never passes with a key", {}, reasons.SIGNATURE_MISSING),
    ("signed and verified passes", {"signed": True, "signature_verified": True}, "GatesPassed"),
    ("signed, not verified", {"signed": True}, reasons.SIGNATURE_INVALID),
    ("wrongly signed", {"load_error": "SignatureInvalid"}, reasons.SIGNATURE_INVALID),
]


@pytest.mark.parametrize("policy", list(SignaturePolicy))
@pytest.mark.parametrize(("name", "fact_kw", "reason"), KEYED, ids=[c[0] for c in KEYED])
def test_with_a_signing_key_only_verified_signatures_pass_whatever_the_policy(
    name: str, fact_kw: dict[str, Any], reason: str, policy: SignaturePolicy
) -> None:
    inp = gates.GateInput(
        facts=facts(V3, **fact_kw),
        gates=Gates(signature=policy),
        now=NOW,
        signing_key_configured=True,
    )
    assert gates.evaluate(inp).reason == reason
    assert gates.evaluate(inp, chain=gates.PINNED_CHAIN).reason == reason


def test_without_a_key_a_pass_says_any_configmap_writer_can_publish() -> None:
    unkeyed = gates.evaluate(gates.GateInput(facts=facts(V3), gates=Gates(), now=NOW))
    assert unkeyed.passed
    assert "anyone who can write ConfigMaps in this namespace can publish" in unkeyed.message
    keyed = gates.evaluate(
        gates.GateInput(
            facts=facts(V3, signed=True, signature_verified=True),
            gates=Gates(),
            now=NOW,
            signing_key_configured=True,
        )
    )
    assert keyed.passed
    assert "anyone" not in keyed.message
