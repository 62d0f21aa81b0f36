"""`leadops inspect`: readable table, --json, and refusals for tampered or wrongly signed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadops.contract.artifact import SigningKey, dumps, load_artifact, seal, write_artifact
from leadops.jobs import inspect

SECRET = b"inspect test secret, long enough"


def test_table_shows_version_metrics_card_and_digest(
    trained_artifact_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inspect.main([str(trained_artifact_path)]) == 0
    out = capsys.readouterr().out
    artifact = load_artifact(trained_artifact_path)
    assert str(artifact.version) in out
    assert f"{artifact.metrics.auc:.4f}" in out
    assert f"{artifact.digest}  ok" in out
    assert "unsigned" in out
    assert "lead_id" in out
    assert "identifier" in out
    assert artifact.card.features[0].name in out


def test_json_output(trained_artifact_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect.main([str(trained_artifact_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    artifact = load_artifact(trained_artifact_path)
    assert data["version"] == artifact.version
    assert data["metrics"]["auc"] == artifact.metrics.auc
    assert data["digest_status"] == "ok"
    assert data["card"]["intended_use"] == artifact.card.intended_use


def test_tampered_artifact_is_exit_2(
    trained_artifact_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(trained_artifact_path.read_bytes())
    document["metrics"]["auc"] = 0.99
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(document))
    assert inspect.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "DigestMismatch" in err
    assert err.count("\n") == 1


def test_signature_verified_or_refused(
    trained_artifact_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed = seal(load_artifact(trained_artifact_path), key=SigningKey.from_bytes(SECRET))
    path = tmp_path / "model.json"
    write_artifact(signed, path)
    assert path.read_bytes() == dumps(signed)
    (tmp_path / "right").write_bytes(SECRET)
    (tmp_path / "wrong").write_bytes(b"some other secret, long enough")
    assert inspect.main([str(path)]) == 0
    assert "hmac-sha256: present, not verified (no key)" in capsys.readouterr().out
    assert inspect.main([str(path), "--verify-key-file", str(tmp_path / "right")]) == 0
    assert "hmac-sha256: verified" in capsys.readouterr().out
    monkeypatch.setenv("LEADOPS_VERIFY_KEY_FILE", str(tmp_path / "wrong"))
    assert inspect.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "SignatureInvalid" in err
    assert "other secret" not in err
