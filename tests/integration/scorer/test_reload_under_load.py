"""2,000 concurrent scoring requests while the model is reloaded 20 times (good and bad files).

Every response must be 200, carry the version of a model that really served, and
carry exactly the score that version's xgboost model gives that lead: a request
that saw half of one model and half of another would fail the last check.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost

from leadops import pii
from leadops.contract import artifact, featurize
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = pytest.mark.slow

REQUESTS = 2000
RELOADS = 20
CONNECTIONS = 64
LEADS = [
    {"details": "price quote demo please", "source": "referral", "attributes": {"visits": 9.0}},
    {"details": "just browsing, student", "source": "web", "attributes": {"visits": 1.0}},
    {"details": "budget for a team of 20?", "source": "ads", "attributes": {"plan": "team"}},
    {"details": "", "source": "event", "attributes": {"visits": 15.0, "plan": "pro"}},
]


def _expected_scores(path: Path) -> list[float]:
    """What xgboost itself says for each test lead under the artifact at `path`."""
    art = artifact.load_artifact(path)
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(art.model).encode()))
    rows = [lead_to_row(Lead.model_validate(body), redact=pii.redact) for body in LEADS]
    return [float(p) for p in booster.inplace_predict(featurize.matrix(art.features, rows))]


def _swap_in(source: Path, serving: Path) -> None:
    tmp = serving.with_suffix(".tmp")
    shutil.copy(source, tmp)
    os.replace(tmp, serving)


async def _load(base: str, serving: Path, plan: list[tuple[Path, dict[str, Any], bool]]) -> Any:
    limits = httpx.Limits(max_connections=CONNECTIONS)
    # All 2,000 requests are started at once; the semaphore keeps httpx's pool from
    # queueing (its wait queue, not the server, is slow with thousands of waiters).
    in_flight = asyncio.Semaphore(CONNECTIONS)
    async with (
        httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client,
        httpx.AsyncClient(base_url=base, timeout=60) as ops,
    ):

        async def score(i: int) -> tuple[int, httpx.Response]:
            async with in_flight:
                return i % len(LEADS), await client.post("/v1/lead", json=LEADS[i % len(LEADS)])

        async def reloads() -> list[tuple[bool, httpx.Response]]:
            done = []
            for source, params, good in plan:
                _swap_in(source, serving)
                answer = await ops.post(
                    "/ops/reload-model", params=params, headers={"x-api-key": API_KEY}
                )
                done.append((good, answer))
                await asyncio.sleep(0)  # let scoring requests interleave between reloads
            return done

        scoring = asyncio.gather(*(score(i) for i in range(REQUESTS)))
        reloading = asyncio.create_task(reloads())
        return await scoring, await reloading


def test_reload_under_load(start_scorer: StartScorer, model_dir: Path, tmp_path: Path) -> None:
    models: list[Built] = [
        build_artifact(model_dir / f"load-{i}.json", version=1_800_000_000 + i, seed=10 + i)
        for i in range(3)
    ]
    low_auc = build_artifact(model_dir / "load-low.json", version=1_800_000_100, auc=0.6, seed=20)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "leadops.model/v1"')
    expected = {m.version: _expected_scores(m.path) for m in models}

    serving = tmp_path / "model.json"
    shutil.copy(models[0].path, serving)
    server = start_scorer(model=serving)
    plan: list[tuple[Path, dict[str, Any], bool]] = []
    for i in range(RELOADS):
        if i % 4 == 1:
            plan.append((low_auc.path, {"min_auc": 0.7}, False))
        elif i % 4 == 3:
            plan.append((corrupt, {}, False))
        else:
            plan.append((models[(i // 2 + 1) % 3].path, {"min_auc": 0.7}, True))

    scored, reloaded = asyncio.run(_load(server.url, serving, plan))

    assert len(scored) == REQUESTS
    failures = [r.status_code for _, r in scored if r.status_code != 200]
    assert failures == []
    seen_versions = set()
    for lead_index, response in scored:
        body = response.json()
        version = body["model_version"]
        seen_versions.add(version)
        assert version in expected, f"response from a version that never served: {version}"
        assert body["score"] == pytest.approx(expected[version][lead_index], abs=1e-6)
    assert len(reloaded) == RELOADS
    for good, answer in reloaded:
        assert answer.status_code == (200 if good else 422), answer.text
    assert len(seen_versions) >= 2  # the reloads really happened while requests were served
    with server.client() as http:
        final = http.get("/ops/model-status").json()
    last_good = [source for source, _, good in plan if good][-1]
    assert final["version"] == next(m.version for m in models if m.path == last_good)
    assert np.isfinite(final["auc"])
