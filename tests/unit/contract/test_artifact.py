"""Artifact digest, signatures, atomic writes and the refusals with their reasons."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from leadops.contract.artifact import (
    Artifact,
    ArtifactError,
    SigningKey,
    VerifyKeys,
    canonical_bytes,
    compute_digest,
    dumps,
    load_artifact,
    seal,
    signing_key_from_env,
    verify_keys_from_env,
    write_artifact,
)
from tests.fixtures.model_artifact import make_artifact

HMAC_SECRET = b"correct horse battery staple 42"


def _pem_pair() -> tuple[bytes, bytes]:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


def test_digest_round_trip(small_artifact: Artifact, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    write_artifact(small_artifact, path)
    loaded = load_artifact(path)
    assert loaded == small_artifact
    assert loaded.digest.startswith("sha256:")
    assert len(loaded.digest) == len("sha256:") + 64
    # jq '.metrics.auc' model.json works as in the seed: plain JSON, top-level metrics.
    assert json.loads(path.read_bytes())["metrics"]["auc"] == small_artifact.metrics.auc
    assert load_artifact(path.read_bytes()) == small_artifact


def test_digest_is_stable_and_changes_with_content() -> None:
    a = seal(make_artifact())
    b = seal(make_artifact())
    assert a.digest == b.digest
    c = seal(make_artifact(version=1_730_483_821))
    assert c.digest != a.digest


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["metrics"].__setitem__("auc", 0.99),
        lambda d: d.__setitem__("version", d["version"] + 1),
        lambda d: d["model"]["learner"].__setitem__("attributes", {"x": "1"}),
        lambda d: d["features"]["columns"].pop(),
    ],
)
def test_tampered_artifact_is_refused(small_artifact: Artifact, tamper: object) -> None:
    document = json.loads(dumps(small_artifact))
    assert callable(tamper)
    tamper(document)
    with pytest.raises(ArtifactError) as info:
        load_artifact(canonical_bytes(document))
    assert info.value.reason == "DigestMismatch"
    assert "modified" in str(info.value)


def test_flipped_byte_is_refused(small_artifact: Artifact, tmp_path: Path) -> None:
    data = bytearray(dumps(small_artifact))
    at = data.index(b'"logloss":') + len('"logloss":')
    data[at] = ord("7") if data[at] != ord("7") else ord("6")
    with pytest.raises(ArtifactError) as info:
        load_artifact(bytes(data))
    assert info.value.reason == "DigestMismatch"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "CorruptArtifact"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "CorruptArtifact"),
        (b"[1, 2]", "CorruptArtifact"),
        (b'{"format": "xgboost"}', "UnsupportedFormat"),
        (b'{"format": "leadops.model/v1", "digest": "sha256:00"}', "DigestMismatch"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ArtifactError) as info:
        load_artifact(data)
    assert info.value.reason == reason


def test_schema_violation_under_a_valid_digest_is_corrupt(small_artifact: Artifact) -> None:
    document = json.loads(dumps(small_artifact))
    document["metrics"]["auc"] = "high"
    document["digest"] = ""
    document["digest"] = compute_digest(document)
    with pytest.raises(ArtifactError) as info:
        load_artifact(canonical_bytes(document))
    assert info.value.reason == "CorruptArtifact"
    assert "metrics.auc" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        load_artifact(tmp_path / "absent.json")
    assert info.value.reason == "ArtifactNotFound"


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_signature_verifies_and_wrong_key_is_refused(small_artifact: Artifact, kind: str) -> None:
    if kind == "hmac":
        key, good = SigningKey.from_bytes(HMAC_SECRET), VerifyKeys.from_bytes(HMAC_SECRET)
        wrong = VerifyKeys.from_bytes(b"another secret of enough length")
    else:
        pem, public = _pem_pair()
        key, good = SigningKey.from_bytes(pem), VerifyKeys.from_bytes(public)
        wrong = VerifyKeys.from_bytes(_pem_pair()[1])
    signed = seal(small_artifact, key=key)
    assert signed.signature is not None
    data = dumps(signed)
    assert load_artifact(data, keys=good) == signed
    with pytest.raises(ArtifactError) as info:
        load_artifact(data, keys=wrong)
    assert info.value.reason == "SignatureInvalid"
    # Without keys the digest is still checked; the signature is carried but not trusted.
    assert load_artifact(data).signature == signed.signature


def test_unsigned_artifact_refused_when_keys_configured(small_artifact: Artifact) -> None:
    with pytest.raises(ArtifactError) as info:
        load_artifact(dumps(small_artifact), keys=VerifyKeys.from_bytes(HMAC_SECRET))
    assert info.value.reason == "SignatureMissing"


def test_re_signed_tampered_artifact_fails_the_real_key(small_artifact: Artifact) -> None:
    forged = seal(
        small_artifact.model_copy(update={"version": 2_000_000_000}),
        key=SigningKey.from_bytes(b"attacker's own secret key here"),
    )
    with pytest.raises(ArtifactError) as info:
        load_artifact(dumps(forged), keys=VerifyKeys.from_bytes(HMAC_SECRET))
    assert info.value.reason == "SignatureInvalid"


def test_keys_from_env_and_file(tmp_path: Path) -> None:
    pem, public = _pem_pair()
    (tmp_path / "signing.pem").write_bytes(pem)
    key = signing_key_from_env({"LEADOPS_SIGNING_KEY_FILE": str(tmp_path / "signing.pem")})
    assert key is not None
    assert key.algorithm == "ed25519"
    assert "BEGIN" not in repr(key)
    keys = verify_keys_from_env({"LEADOPS_VERIFY_KEY": public.decode()})
    assert keys is not None
    assert signing_key_from_env({}) is None
    assert verify_keys_from_env({}) is None
    with pytest.raises(ArtifactError) as info:
        signing_key_from_env({"LEADOPS_SIGNING_KEY": "tiny-key"})
    assert info.value.reason == "SigningKeyInvalid"
    assert "tiny-key" not in str(info.value)


def test_unsealed_artifact_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        write_artifact(make_artifact(), tmp_path / "model.json")
    assert info.value.reason == "DigestMismatch"
    assert list(tmp_path.iterdir()) == []


def _write_with_file_size_limit(path: Path, limit: int) -> int:
    """Write in a child whose file-size limit is below the artifact size: a real failed write."""
    code = (
        "import resource, signal, sys\n"
        "from tests.fixtures.model_artifact import make_artifact\n"
        "from leadops.contract.artifact import seal, write_artifact\n"
        "artifact = seal(make_artifact(version=1_900_000_000))\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "try:\n"
        f"    write_artifact(artifact, {str(path)!r})\n"
        "except OSError:\n"
        "    sys.exit(3)\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=False).returncode


def test_failed_write_leaves_old_artifact_and_no_partial_file(
    small_artifact: Artifact, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    write_artifact(small_artifact, path)
    before = path.read_bytes()
    assert _write_with_file_size_limit(path, limit=1024) == 3
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]
    assert load_artifact(path).version == small_artifact.version
    # The same child without the limit succeeds: the failure above was the write, nothing else.
    assert _write_with_file_size_limit(path, limit=resource.RLIM_INFINITY) == 0
    assert load_artifact(path).version == 1_900_000_000
