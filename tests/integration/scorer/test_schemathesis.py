"""Fuzzing the live scorer from its own OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_schemathesis_finds_no_server_error(
    start_scorer: StartScorer, good_model: Built, redis_url: str, tmp_path: Path
) -> None:
    serving = tmp_path / "model.json"
    shutil.copy(good_model.path, serving)
    server = start_scorer(model=serving, redis_url=redis_url, docs="true")
    cli = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [
            str(cli),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            f"x-api-key: {API_KEY}",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "/v1/lead" in done.stdout  # the run really covered the scoring route
