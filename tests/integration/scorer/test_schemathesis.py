"""Fuzzing the live scorer from its own OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.artifacts import Built
from tests.fixtures.metrics import metric_value
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
    assert "No issues found" in done.stdout
    # The run really reached the routes, with valid and invalid inputs.
    with server.client() as http:
        metrics = http.get("/metrics").text
    for route, status in [("/v1/lead", "200"), ("/v1/lead", "422"), ("/v1/outcome", "404")]:
        labels = {"route": route, "method": "POST", "status": status}
        assert metric_value(metrics, "leadops_http_requests_total", labels) > 0, (route, status)
    server_errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("leadops_http_requests_total") and 'status="5' in line
    ]
    assert server_errors == []
