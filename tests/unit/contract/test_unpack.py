"""Bounded unpacking and the validated-digest pin (`leadops unpack-model`, the init container)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from leadops import cli
from leadops.contract import artifact as contract
from leadops.contract import unpack
from tests.fixtures.model_artifact import make_artifact


def _sealed(version: int = 1_730_483_820) -> bytes:
    return contract.dumps(contract.seal(make_artifact(n=120, version=version)))


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    with pytest.raises(contract.ArtifactError) as caught:
        contract.gunzip_bounded(bomb, limit=1024 * 1024)
    assert caught.value.reason == "ArtifactTooLarge"


def test_exactly_the_limit_unpacks_and_garbage_is_corrupt() -> None:
    data = b"x" * 4096
    assert contract.gunzip_bounded(gzip.compress(data), limit=4096) == data
    with pytest.raises(contract.ArtifactError) as caught:
        contract.gunzip_bounded(b"not gzip at all", limit=4096)
    assert caught.value.reason == "CorruptArtifact"
    with pytest.raises(contract.ArtifactError) as truncated:
        contract.gunzip_bounded(gzip.compress(data)[:-12], limit=4096)
    assert truncated.value.reason == "CorruptArtifact"


def test_unpack_writes_only_the_validated_artifact(tmp_path: Path) -> None:
    data = _sealed()
    digest = contract.load_artifact(data).digest
    packed = tmp_path / "model.json.gz"
    packed.write_bytes(gzip.compress(data))
    target = tmp_path / "model.json"
    assert cli.main(["unpack-model", "--digest", digest, str(packed), str(target)]) == 0
    assert target.read_bytes() == data


def test_unpack_refuses_other_bytes_with_digest_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    validated = contract.load_artifact(_sealed()).digest
    packed = tmp_path / "model.json.gz"
    packed.write_bytes(gzip.compress(_sealed(version=1_730_483_999)))  # swapped behind the name
    target = tmp_path / "model.json"
    code = cli.main(["unpack-model", "--digest", validated, str(packed), str(target)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "DigestMismatch" in err[0]
    assert not target.exists()


def test_unpack_refuses_a_bomb_before_reading_it_whole(tmp_path: Path) -> None:
    packed = tmp_path / "model.json.gz"
    packed.write_bytes(gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9))
    with pytest.raises(contract.ArtifactError) as caught:
        unpack.unpack(packed, digest="sha256:" + "0" * 64, limit=1024 * 1024)
    assert caught.value.reason == "ArtifactTooLarge"


def test_load_artifact_pins_the_digest() -> None:
    data = _sealed()
    art = contract.load_artifact(data, expect_digest=contract.load_artifact(data).digest)
    with pytest.raises(contract.ArtifactError) as caught:
        contract.load_artifact(data, expect_digest="sha256:" + "1" * 64)
    assert caught.value.reason == "DigestMismatch"
    assert art.digest.startswith("sha256:")
