"""docs/operations.md's curl, jq, wc, awk and pii-backfill commands, run verbatim against a
real scorer (uvicorn subprocess) and a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import API_KEY, ScorerServer, StartScorer
from tests.integration.guide import bash_blocks, commands

pytestmark = pytest.mark.redis

SEED_STATUS_FIELDS = {
    "loaded", "version", "version_date", "auc", "n_train", "load_time", "age_hours",
    "drift_score", "health",
}  # fmt: skip
GUIDE_REDIS_URL = "redis://localhost:6379/0"


def run_guide(lines: list[str], *, env: dict[str, str], cwd: Path) -> str:
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, f"{script}\n{result.stderr}"
    return result.stdout


def scorer_env(server: ScorerServer) -> dict[str, str]:
    return {"SCORER": server.url, "API_KEY": API_KEY}


def test_model_status_and_reload_commands_against_the_scorer(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path
) -> None:
    server = start_scorer(model=good_model.path)
    env = scorer_env(server)
    verify = commands(bash_blocks("Emergency rollback")[0], r"curl .*")
    assert len(verify) == 1
    version, auc, health = run_guide(verify, env=env, cwd=tmp_path).splitlines()
    assert int(version) == good_model.version
    assert float(auc) == pytest.approx(good_model.auc)
    assert health == '"ok"'
    status = commands(bash_blocks("Model status")[0], r"curl .*")
    assert set(json.loads(run_guide(status, env=env, cwd=tmp_path))) == SEED_STATUS_FIELDS
    reload = commands(bash_blocks("Lock the minimum AUC")[1], r"curl .*")
    assert len(reload) == 1
    body = json.loads(run_guide(reload, env=env, cwd=tmp_path))
    if good_model.auc >= 0.70:
        assert body["ok"] is True
    else:
        assert body["rejected"] is True
        assert body["error"] == "Model AUC below threshold"
    # The same command with a bar the model cannot clear: the guide's rejection body.
    strict = [line.replace("min_auc=0.70", "min_auc=0.99") for line in reload]
    body = json.loads(run_guide(strict, env=env, cwd=tmp_path))
    assert body["ok"] is False
    assert body["rejected"] is True
    assert body["error"] == "Model AUC below threshold"
    assert body["min_auc"] == 0.99


def test_outcome_data_checks_from_the_reload_failed_runbook(
    start_scorer: StartScorer, good_model: Built, redis_url: str, tmp_path: Path
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    labels = [True, False, False, True, False]
    with server.client() as http:
        for i, converted in enumerate(labels):
            lead = {"name": f"Lead {i}", "phone": "555", "details": "pricing for 5 seats"}
            lead_id = http.post("/v1/lead", json=lead).json()["lead_id"]
            assert http.post("/v1/outcome", json={"lead_id": lead_id, "converted": converted})
    checks = commands(bash_blocks("LeadModelReloadFailed")[0], r".*outcomes\.csv.*")
    assert len(checks) == 3
    out = run_guide(checks, env=scorer_env(server), cwd=tmp_path).splitlines()
    assert out[0] == f"{len(labels) + 1} outcomes.csv"
    counts = {line.split()[1]: int(line.split()[0]) for line in out[1:]}
    assert counts == {"0": 3, "1": 2}


def test_pii_backfill_dry_run_then_real_run(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    message = "call me on +44 20 7946 0958 or mail jane.doe@example.com"
    r.rpush("mem:tenant1:chat1", message)
    dry_run, real = (
        line.replace(GUIDE_REDIS_URL, redis_url)
        for block in bash_blocks("PII backfill by hand")
        for line in commands(block, r"REDIS_URL=\S+ leadops pii-backfill.*")
    )
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    run_guide([dry_run], env={"PATH": path}, cwd=tmp_path)
    assert r.lrange("mem:tenant1:chat1", 0, -1) == [message], "a dry run writes nothing"
    run_guide([real], env={"PATH": path}, cwd=tmp_path)
    (scrubbed,) = [str(m) for m in r.lrange("mem:tenant1:chat1", 0, -1)]
    assert "7946" not in scrubbed
    assert "jane.doe@example.com" not in scrubbed
    assert scrubbed.startswith("call me on")
