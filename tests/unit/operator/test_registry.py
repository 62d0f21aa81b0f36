"""Registry codec round trip and history GC rules."""

from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path

import pytest

from leadops import cli
from leadops.contract import artifact as contract
from leadops.operator import registry

DOC = {
    "format": "leadops-model/1",
    "version": 1764158400,
    "created_at": "2026-11-26T12:00:00Z",
    "metrics": {"auc": 0.78, "n_train": 523, "positive_rate": 0.38},
    "digest": "sha256:abc",
    "model": {"trees": ["x" * 50] * 100},
}


def test_encode_decode_round_trip_keeps_exact_bytes() -> None:
    raw = json.dumps(DOC).encode()
    cm = registry.encode(raw, leadmodel="acme", namespace="sales")
    assert cm["immutable"] is True
    assert cm["metadata"]["name"] == "acme-model-1764158400"
    assert cm["metadata"]["labels"][registry.MODEL_VERSION] == "1764158400"
    assert cm["metadata"]["labels"][registry.LABEL_LEADMODEL] == "acme"
    ann = cm["metadata"]["annotations"]
    assert (ann[registry.ANN_AUC], ann[registry.ANN_N_TRAIN], ann[registry.ANN_DIGEST]) == (
        "0.78",
        "523",
        "sha256:abc",
    )
    assert registry.decode(cm) == raw
    assert len(cm["binaryData"][registry.DATA_KEY]) < len(raw)  # gzip pays off
    entry = registry.entry_of(cm)
    assert (entry.version, entry.auc, entry.n_train) == (1764158400, "0.78", 523)


@pytest.mark.parametrize(
    ("raw", "words"),
    [(b"not json", "not JSON"), (json.dumps({"version": 1}).encode(), "lacks")],
)
def test_encode_refuses_what_is_not_an_artifact(raw: bytes, words: str) -> None:
    with pytest.raises(registry.RegistryError, match=words) as info:
        registry.encode(raw, leadmodel="acme", namespace="sales")
    assert info.value.reason == "CorruptArtifact"


def test_decode_refuses_damaged_data() -> None:
    cm = registry.encode(json.dumps(DOC).encode(), leadmodel="acme", namespace="sales")
    cm["binaryData"][registry.DATA_KEY] = "AAAA"
    with pytest.raises(registry.RegistryError, match="cannot unpack"):
        registry.decode(cm)
    with pytest.raises(registry.RegistryError, match="has no"):
        registry.decode({"metadata": {"name": "x"}})


def test_oversized_artifact_is_refused_not_truncated() -> None:
    doc = dict(DOC, model={"noise": os.urandom(1_200_000).hex()})
    with pytest.raises(registry.RegistryError, match="over the"):
        registry.encode(json.dumps(doc).encode(), leadmodel="a", namespace="b")


@pytest.mark.parametrize(
    ("versions", "limit", "keep", "doomed"),
    [
        ([1, 2, 3], 5, [], []),
        ([1, 2, 3, 4, 5], 3, [], [1, 2]),
        ([1, 2, 3, 4, 5], 3, [1], [2]),
        ([1, 2, 3, 4, 5], 2, [1, 2, None], [3]),
        ([5, 4, 3, 2, 1, 1], 4, [], [1]),
    ],
)
def test_gc_rules(
    versions: list[int], limit: int, keep: list[int | None], doomed: list[int]
) -> None:
    assert registry.garbage(versions, limit=limit, keep=keep) == doomed


def test_a_gzip_bomb_in_a_configmap_is_too_large_not_unpacked() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = b"".join(packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()
    cm = {
        "metadata": {"name": "lm-model-1"},
        "binaryData": {registry.DATA_KEY: base64.b64encode(packed).decode()},
    }
    with pytest.raises(registry.RegistryError) as info:
        registry.decode(cm, limit=4 << 20)
    assert info.value.reason == "ArtifactTooLarge"
    assert "lm-model-1" in str(info.value)


def test_an_artifact_the_operator_would_refuse_unpacked_is_not_published() -> None:
    doc = dict(DOC, model={"zeros": "0" * (contract.MAX_UNPACKED_BYTES + 1)})
    with pytest.raises(registry.RegistryError) as info:
        registry.encode(json.dumps(doc).encode(), leadmodel="a", namespace="b")
    assert info.value.reason == "ArtifactTooLarge"


def test_publish_refuses_an_oversized_file_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "model.json"
    with big.open("wb") as out:
        out.truncate(contract.MAX_UNPACKED_BYTES + 1)  # sparse: nothing is written or read
    code = cli.main(["publish", "--artifact", str(big), "--leadmodel", "a", "--namespace", "b"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "ArtifactTooLarge" in line
