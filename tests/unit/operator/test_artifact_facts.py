"""Real artifacts (tiny xgboost models) through the registry codec into gate facts."""

from __future__ import annotations

import json

from leadops.contract import artifact as contract
from leadops.operator import artifact_facts, registry
from tests.fixtures.model_artifact import make_artifact

HMAC_KEY = b"k" * 32


def _cm(art: contract.Artifact) -> dict[str, object]:
    return registry.encode(contract.dumps(art), leadmodel="acme", namespace="sales")


def test_sealed_artifact_round_trips_into_facts() -> None:
    art = contract.seal(make_artifact(n=200))
    got = artifact_facts.facts_from_bytes(registry.decode(_cm(art)), version=art.version)
    assert got.load_error is None
    assert got.feature_spec_problem is None
    assert str(got.auc) == "0.8"
    assert got.n_train == 200
    assert got.digest == art.digest
    assert not got.signed


def test_tampered_artifact_is_a_digest_mismatch() -> None:
    art = contract.seal(make_artifact(n=200))
    doc = json.loads(contract.dumps(art))
    doc["metrics"]["auc"] = 0.99
    got = artifact_facts.facts_from_bytes(json.dumps(doc).encode(), version=art.version)
    assert got.load_error == "DigestMismatch"


def test_signature_checked_with_the_configured_key() -> None:
    signer = contract.SigningKey.from_bytes(HMAC_KEY)
    art = contract.seal(make_artifact(n=200), key=signer)
    raw = contract.dumps(art)
    good = artifact_facts.facts_from_bytes(
        raw, version=art.version, keys=contract.VerifyKeys.from_bytes(HMAC_KEY)
    )
    assert (good.signed, good.signature_verified, good.load_error) == (True, True, None)
    bad = artifact_facts.facts_from_bytes(
        raw, version=art.version, keys=contract.VerifyKeys.from_bytes(b"x" * 32)
    )
    assert bad.load_error == "SignatureInvalid"


def test_model_and_feature_spec_must_agree() -> None:
    art = make_artifact(n=200)
    model = json.loads(json.dumps(art.model))
    model["learner"]["learner_model_param"]["num_feature"] = "99"
    broken = contract.seal(art.model_copy(update={"model": model}))
    got = artifact_facts.facts_from_bytes(contract.dumps(broken), version=art.version)
    assert got.feature_spec_problem is not None
    assert "expects 99 features" in got.feature_spec_problem


def test_registry_label_must_match_the_artifact_version() -> None:
    art = contract.seal(make_artifact(n=200))
    got = artifact_facts.facts_from_bytes(contract.dumps(art), version=art.version + 1)
    assert got.feature_spec_problem is not None
    assert "registry label" in got.feature_spec_problem
