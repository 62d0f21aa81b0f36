"""Artifacts in object storage (spec.artifacts.s3) against a real S3 server (SeaweedFS): a 2 MB
gzipped model goes into the bucket through `leadops publish`'s code, comes out through the
scorer's init container command (`leadops unpack-model s3://...`) and serves; a replaced
object is refused (DigestMismatch) and the model already loaded keeps serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadops import objectstore
from leadops.contract import artifact as contract
from leadops.operator import publish, registry
from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.s3_server import S3Server
from tests.fixtures.scorer import StartScorer

pytestmark = pytest.mark.slow
LEAD = {"details": "quote for 20 seats", "source": "referral", "chat_id": "c1"}
TWO_MB = 2_000_000


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A model whose gzip is over 2 MB: more than twice what a ConfigMap version may hold."""
    path = tmp_path_factory.mktemp("big") / "big.json"
    built = build_artifact(
        path, version=int(time.time()) - 600, trees=2000, depth=8, rows=8000, seed=3
    )
    assert len(registry.pack(path.read_bytes())) >= TWO_MB
    return built


def _unpack(
    server: S3Server, url: str, digest: str, into: Path
) -> subprocess.CompletedProcess[str]:
    """The scorer's init container command, with the credentials as a mounted file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEADOPS_"))}
    env[objectstore.ENV_CREDENTIALS_FILE] = str(server.credentials_file)
    argv = [sys.executable, "-m", "leadops.cli", "unpack-model", "--digest", digest]
    argv += ["--s3-endpoint", server.endpoint, url, str(into)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _publish(server: S3Server, store: objectstore.Store, path: Path) -> tuple[str, str]:
    """Publish as `leadops publish` does: the object first, then the metadata ConfigMap (whose
    object URL and digest are returned)."""
    cm = publish.stored(
        path.read_bytes(), store, leadmodel="acme", namespace="sales", s3=server.client()
    )
    assert registry.DATA_KEY not in (cm.get("binaryData") or {})  # the bytes are not in it
    ann = cm["metadata"]["annotations"]
    return ann[registry.ANN_ARTIFACT_OBJECT], ann[registry.ANN_DIGEST]


def test_a_2mb_artifact_round_trips_through_s3_into_a_scorer(
    s3_server: S3Server, big_model: Built, start_scorer: StartScorer, tmp_path: Path
) -> None:
    store = s3_server.bucket("roundtrip")
    url, digest = _publish(s3_server, store, big_model.path)
    assert url == f"s3://roundtrip/sales/acme/{big_model.version}.json.gz"
    assert s3_server.keys("roundtrip") == [f"sales/acme/{big_model.version}.json.gz"]

    model = tmp_path / "model.json"
    done = _unpack(s3_server, url, digest, model)
    assert done.returncode == 0, done.stderr
    assert model.read_bytes() == big_model.path.read_bytes()

    server = start_scorer(model=model, model_digest=digest)
    with server.client() as http:
        answer = http.post("/v1/lead", json=LEAD)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == big_model.version
        assert http.get("/ops/model-status").json()["version"] == big_model.version


def test_a_replaced_object_is_refused_and_the_old_model_keeps_serving(
    s3_server: S3Server, good_model: Built, other_model: Built, start_scorer: StartScorer,
    tmp_path: Path,
) -> None:  # fmt: skip
    store = s3_server.bucket("tamper")
    old_url, old_digest = _publish(s3_server, store, good_model.path)
    new_url, new_digest = _publish(s3_server, store, other_model.path)
    model = tmp_path / "model.json"
    assert _unpack(s3_server, old_url, old_digest, model).returncode == 0
    server = start_scorer(model=model, model_digest=old_digest)

    # Someone with write access to the bucket swaps the new version's object for another
    # validly sealed artifact (here: the old model under the new version's key).
    _, key = objectstore.split_url(new_url)
    objectstore.put(s3_server.client(), store, key, registry.pack(good_model.path.read_bytes()))
    refused = _unpack(s3_server, new_url, new_digest, model)
    assert refused.returncode == 2
    assert "DigestMismatch" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert model.read_bytes() == good_model.path.read_bytes()  # nothing written over it

    # Bytes that are not a sealed artifact at all are refused the same way.
    objectstore.put(s3_server.client(), store, key, registry.pack(b'{"format": "x"}'))
    assert _unpack(s3_server, new_url, new_digest, model).returncode == 2

    with server.client() as http:
        answer = http.post("/v1/lead", json=LEAD)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == good_model.version


def test_missing_object_and_wrong_credentials_fail_in_one_line(
    s3_server: S3Server, good_model: Built, tmp_path: Path
) -> None:
    store = s3_server.bucket("failures")
    url, digest = _publish(s3_server, store, good_model.path)
    missing = _unpack(s3_server, url.replace(".json.gz", "0.json.gz"), digest, tmp_path / "m")
    assert missing.returncode == 2
    assert "ArtifactNotFound" in missing.stderr
    s3_server.credentials_file.write_bytes(s3_server.credentials.replace(b"secret", b"wrong"))
    try:
        denied = _unpack(s3_server, url, digest, tmp_path / "m")
    finally:
        s3_server.credentials_file.write_bytes(s3_server.credentials)
    assert denied.returncode == 2
    assert "ArtifactStoreUnavailable" in denied.stderr
    assert "wrong" not in denied.stderr  # never the credentials
    assert not (tmp_path / "m").exists()


def test_too_large_for_the_configmap_store_names_spec_artifacts_s3(big_model: Built) -> None:
    with pytest.raises(registry.RegistryError) as refused:
        publish.stored(big_model.path.read_bytes(), None, leadmodel="acme", namespace="sales")
    assert refused.value.reason == "ArtifactTooLarge"
    assert "spec.artifacts.s3" in str(refused.value)
    # The same bytes are a valid artifact: only the store is too small.
    contract.load_artifact(big_model.path.read_bytes())
