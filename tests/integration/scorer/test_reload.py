"""Validated hot reload: every refusal leaves the old model serving; success swaps it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leadops.contract import artifact
from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.metrics import metric_value
from tests.fixtures.scorer import StartScorer

HMAC_SECRET = "verify-secret-0123456789abcdef"


def _resealed(source: Path, target: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A properly sealed artifact whose content was changed by `change`."""
    document = json.loads(source.read_bytes())
    change(document)
    art = artifact.Artifact.model_validate(document)
    artifact.write_artifact(artifact.seal(art), target)
    return target


def _tampered(source: Path, target: Path) -> Path:
    """Content changed after sealing: the digest no longer matches."""
    document = json.loads(source.read_bytes())
    document["metrics"]["auc"] = 0.99
    target.write_text(json.dumps(document))
    return target


def _corrupt(_: Path, target: Path) -> Path:
    target.write_bytes(b'{"format": "leadops.model/v1", "version": ')
    return target


def _wrong_feature_count(source: Path, target: Path) -> Path:
    def change(doc: dict[str, Any]) -> None:
        param = doc["model"]["learner"]["learner_model_param"]
        param["num_feature"] = str(int(param["num_feature"]) + 3)

    return _resealed(source, target, change)


def _multiclass_objective(source: Path, target: Path) -> Path:
    def change(doc: dict[str, Any]) -> None:
        doc["model"]["learner"]["objective"]["name"] = "reg:squarederror"

    return _resealed(source, target, change)


def _categorical_split(source: Path, target: Path) -> Path:
    """A split the compiled tree path cannot take (features must be numeric)."""

    def change(doc: dict[str, Any]) -> None:
        tree = doc["model"]["learner"]["gradient_booster"]["model"]["trees"][0]
        tree["split_type"] = [1, *tree["split_type"][1:]]

    return _resealed(source, target, change)


@pytest.mark.parametrize(
    "case",
    [
        (_tampered, "DigestMismatch", "Model digest does not match its contents"),
        (_corrupt, "CorruptArtifact", "Model file is corrupt"),
        (_wrong_feature_count, "FeatureSpecMismatch", "Model and feature spec disagree"),
        (_multiclass_objective, "UnsupportedModel", "Model cannot be served"),
        (_categorical_split, "UnsupportedModel", "Model cannot be served: categorical splits"),
    ],
)
def test_bad_files_are_refused_and_the_old_model_keeps_serving(
    start_scorer: StartScorer,
    good_model: Built,
    tmp_path: Path,
    case: tuple[Callable[[Path, Path], Path], str, str],
) -> None:
    make_bad, reason, error = case
    serving = tmp_path / "model.json"
    shutil.copy(good_model.path, serving)
    server = start_scorer(model=serving)
    with server.client() as http:
        before = http.post("/v1/lead", json={"details": "price please"}).json()
        make_bad(good_model.path, serving)
        refused = http.post("/ops/reload-model")
        assert refused.status_code == 422
        body = refused.json()
        assert body["ok"] is False
        assert body["rejected"] is True
        assert body["reason"] == reason
        assert body["error"].startswith(error)
        after = http.post("/v1/lead", json={"details": "price please"}).json()
        status = http.get("/ops/model-status").json()
        metrics = http.get("/metrics").text
    assert after["model_version"] == good_model.version
    assert after["score"] == before["score"]
    assert status["version"] == good_model.version
    assert status["health"] == "ok"
    assert f'leadops_model_reloads_total{{reason="{reason}",result="rejected"}} 1.0' in metrics


def test_missing_file_is_refused(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path
) -> None:
    serving = tmp_path / "model.json"
    shutil.copy(good_model.path, serving)
    server = start_scorer(model=serving)
    serving.unlink()
    with server.client() as http:
        refused = http.post("/ops/reload-model")
        assert refused.status_code == 422
        assert refused.json()["reason"] == "ArtifactNotFound"
        assert refused.json()["error"] == "Model file not found"
        assert http.get("/ops/model-status").json()["version"] == good_model.version


def test_auc_gate_answers_the_seed_body(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path
) -> None:
    serving = tmp_path / "model.json"
    shutil.copy(good_model.path, serving)
    server = start_scorer(model=serving)
    build_artifact(serving, auc=0.68, seed=3)
    with server.client() as http:
        refused = http.post("/ops/reload-model", params={"min_auc": 0.70})
        assert refused.status_code == 422
        assert refused.json() == {
            "ok": False,
            "error": "Model AUC below threshold",
            "auc": 0.68,
            "min_auc": 0.70,
            "rejected": True,
            "reason": "AucBelowThreshold",
        }
        assert http.get("/ops/model-status").json()["version"] == good_model.version
        # The same file passes a lower bar, as the guide's "lower threshold temporarily".
        accepted = http.post("/ops/reload-model", params={"min_auc": 0.55})
        assert accepted.status_code == 200, accepted.text
        status = http.get("/ops/model-status").json()
    assert status["auc"] == 0.68
    assert status["health"] == "ok"


def test_success_swaps_and_reports_previous_version(
    start_scorer: StartScorer, good_model: Built, other_model: Built, tmp_path: Path
) -> None:
    serving = tmp_path / "model.json"
    shutil.copy(good_model.path, serving)
    server = start_scorer(model=serving)
    shutil.copy(other_model.path, serving)
    with server.client() as http:
        loaded = http.post("/ops/reload-model", params={"min_auc": 0.7})
        assert loaded.status_code == 200, loaded.text
        body = loaded.json()
        assert body["ok"] is True
        assert body["version"] == other_model.version
        assert body["previous_version"] == good_model.version
        scored = http.post("/v1/lead", json={"details": "demo"}).json()
        assert scored["model_version"] == other_model.version
        # Rollback as in the guide: restore the previous file and reload.
        shutil.copy(good_model.path, serving)
        assert http.post("/ops/reload-model").json()["version"] == good_model.version
        metrics = http.get("/metrics").text
    assert metric_value(metrics, "lead_model_version") == good_model.version


def test_signatures_are_checked_when_a_verify_key_is_configured(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path
) -> None:
    signed = tmp_path / "model.json"
    key = artifact.SigningKey.from_bytes(HMAC_SECRET.encode())
    art = artifact.load_artifact(good_model.path)
    artifact.write_artifact(artifact.seal(art, key=key), signed)
    server = start_scorer(model=signed, verify_key=HMAC_SECRET)
    with server.client() as http:
        card = http.get("/ops/model-card").json()
        assert card["signature"]["status"] == "verified"
        assert card["signature"]["algorithm"] == "hmac-sha256"
        other_key = artifact.SigningKey.from_bytes(b"someone-elses-secret-key")
        artifact.write_artifact(artifact.seal(art, key=other_key), signed)
        wrong = http.post("/ops/reload-model")
        assert wrong.status_code == 422
        assert wrong.json()["reason"] == "SignatureInvalid"
        artifact.write_artifact(artifact.seal(art), signed)
        unsigned = http.post("/ops/reload-model")
        assert unsigned.status_code == 422
        assert unsigned.json()["reason"] == "SignatureMissing"
        assert http.get("/ops/model-status").json()["loaded"] is True
    assert HMAC_SECRET not in server.log()
