"""LEADOPS_MODEL_DIGEST: the scorer serves the validated artifact and no other, at start and on
every reload (the operator sets it to the digest it validated)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from leadops.contract import artifact as contract
from leadops.scorer.app import create_app
from leadops.scorer.settings import Settings
from tests.fixtures.artifacts import Built


def test_a_swapped_model_file_is_refused_on_reload_and_the_old_one_keeps_serving(
    good_model: Built, other_model: Built, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    shutil.copy(good_model.path, path)
    digest = contract.load_artifact(path).digest
    app = create_app(Settings(model_path=path, model_digest=digest, dev_open_ops=True))
    with TestClient(app) as client:
        assert client.get("/ops/model-status").json()["version"] == good_model.version
        shutil.copy(other_model.path, path)  # the bytes behind the name change
        refused = client.post("/ops/reload-model")
        assert refused.status_code == 422
        assert refused.json()["rejected"] is True
        assert "validated digest" in refused.json()["error"]
        assert client.get("/ops/model-status").json()["version"] == good_model.version
        assert client.post("/v1/lead", json={"details": "hello"}).status_code == 200


def test_a_model_with_another_digest_is_not_loaded_at_start(
    good_model: Built, other_model: Built
) -> None:
    validated = contract.load_artifact(good_model.path).digest
    app = create_app(
        Settings(model_path=other_model.path, model_digest=validated, dev_open_ops=True)
    )
    with TestClient(app) as client:
        status = client.get("/ops/model-status").json()
        assert status["loaded"] is False
        assert status["health"] == "no_model"
