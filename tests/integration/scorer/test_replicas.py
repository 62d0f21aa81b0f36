"""Several real scorers (uvicorn processes) sharing one real redis-server agree on the model:
a reload that reaches one of them is announced on Redis and every other one loads exactly it."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from leadops.contract import artifact
from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.replicas import RoundRobinProxy, reloads_under_load, swap_in
from tests.fixtures.scorer import API_KEY, ScorerServer, StartScorer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REPLICAS = 3
REQUESTS = 300
RELOADS = 10


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Built]:
    where = tmp_path_factory.mktemp("replica-models")
    return (
        build_artifact(where / "v1.json", version=1_800_000_001, seed=31),
        build_artifact(where / "v2.json", version=1_800_000_002, seed=32),
    )


def status(server: ScorerServer) -> dict[str, object]:
    with server.client() as http:
        body: dict[str, object] = http.get("/ops/model-status").json()
        return body


def wait_version(server: ScorerServer, version: int, *, timeout: float = 30.0) -> None:
    """Poll (bounded) until `server` serves `version`."""
    with server.client() as http:
        for _ in range(int(timeout / 0.05)):
            if http.get("/ops/model-status").json()["version"] == version:
                return
            time.sleep(0.05)
    raise AssertionError(f"{server.url} never served {version}: {status(server)}")


def test_reloads_through_one_address_reach_every_replica_under_load(
    start_scorer: StartScorer, redis_url: str, two_versions: tuple[Built, Built], tmp_path: Path
) -> None:
    v1, v2 = two_versions
    serving = tmp_path / "model.json"
    shutil.copy(v1.path, serving)
    scorers = [
        start_scorer(model=serving, redis_url=redis_url, replicas="3", follow_poll_seconds="0.5")
        for _ in range(REPLICAS)
    ]
    proxy = RoundRobinProxy([s.port for s in scorers])
    try:
        report = asyncio.run(
            reloads_under_load(
                address=proxy.url,
                replicas=[s.url for s in scorers],
                serving=serving,
                models=[(v1.path, v1.version), (v2.path, v2.version)],
                requests=REQUESTS,
                reloads=RELOADS,
                api_key=API_KEY,
            )
        )
    finally:
        proxy.stop()
    assert report.errors == []
    assert report.responses == REQUESTS
    assert set(report.versions) <= {v1.version, v2.version}
    assert report.reload_answers == [200] * RELOADS
    assert report.unsettled == []
    # RELOADS is even: the last reload put v1 back, and no replica is left on v2.
    assert report.final_versions == [v1.version] * REPLICAS


def test_replicas_load_the_announced_bytes_even_when_their_own_file_differs(
    start_scorer: StartScorer, redis_url: str, two_versions: tuple[Built, Built], tmp_path: Path
) -> None:
    """B's file still holds v1: B serves v2 from the announcement, digest-checked; a replica
    that starts afterwards (with v1 on disk) serves v2 from its first request."""
    v1, v2 = two_versions
    files = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]
    for path in files:
        shutil.copy(v1.path, path)
    a = start_scorer(model=files[0], redis_url=redis_url, replicas="3")
    b = start_scorer(model=files[1], redis_url=redis_url, replicas="3")
    swap_in(v2.path, files[0])
    with a.client() as http:
        answer = http.post("/ops/reload-model")
    assert answer.status_code == 200, answer.text
    assert answer.json()["announced"] is True
    wait_version(b, v2.version)
    digest = artifact.load_artifact(v2.path).digest
    with b.client() as http:
        assert http.get("/ops/model-card").json()["digest"] == digest
    c = start_scorer(model=files[2], redis_url=redis_url, replicas="3")
    assert status(c)["version"] == v2.version
    assert "followed announcement" in b.log()


def test_a_replica_refuses_an_announcement_it_would_not_load_itself(
    start_scorer: StartScorer, redis_url: str, tmp_path: Path
) -> None:
    """B's AUC floor is higher than A's: B keeps its model and says why (and A's answer
    still says it was announced)."""
    low = build_artifact(tmp_path / "low.json", version=1_800_000_010, auc=0.7, seed=33)
    good = build_artifact(tmp_path / "good.json", version=1_800_000_009, auc=0.8, seed=34)
    a_file, b_file = tmp_path / "a.json", tmp_path / "b.json"
    shutil.copy(good.path, a_file)
    shutil.copy(good.path, b_file)
    a = start_scorer(model=a_file, redis_url=redis_url, replicas="2")
    b = start_scorer(
        model=b_file, redis_url=redis_url, replicas="2", auc_critical="0.75", auc_warning="0.8"
    )
    swap_in(low.path, a_file)
    with a.client() as http:
        assert http.post("/ops/reload-model").status_code == 200
    for _ in range(600):  # bounded: the refusal is logged within a poll
        if "refused here (AucBelowThreshold)" in b.log():
            break
        time.sleep(0.05)
    assert "refused here (AucBelowThreshold)" in b.log()
    assert status(b)["version"] == good.version


def test_without_redis_several_replicas_refuse_a_reload_with_409(
    start_scorer: StartScorer, two_versions: tuple[Built, Built], tmp_path: Path
) -> None:
    v1, v2 = two_versions
    serving = tmp_path / "model.json"
    shutil.copy(v1.path, serving)
    scorer = start_scorer(model=serving, replicas="3")
    swap_in(v2.path, serving)
    with scorer.client() as http:
        answer = http.post("/ops/reload-model")
    assert answer.status_code == 409
    assert "up to 3 replicas" in answer.json()["detail"]
    assert "without Redis" in answer.json()["detail"]
    assert status(scorer)["version"] == v1.version


def test_a_reload_that_cannot_be_announced_changes_nothing(
    start_scorer: StartScorer,
    redis_server: RedisServer,
    redis_url: str,
    two_versions: tuple[Built, Built],
    tmp_path: Path,
) -> None:
    v1, v2 = two_versions
    serving = tmp_path / "model.json"
    shutil.copy(v1.path, serving)
    scorer = start_scorer(model=serving, redis_url=redis_url, replicas="2")
    swap_in(v2.path, serving)
    redis_server.stop()
    try:
        with scorer.client() as http:
            answer = http.post("/ops/reload-model")
    finally:
        redis_server.start()
    assert answer.status_code == 503
    assert "could not be announced" in answer.json()["detail"]
    assert status(scorer)["version"] == v1.version
    with httpx.Client(base_url=scorer.url, headers={"x-api-key": API_KEY}) as http:
        assert http.post("/ops/reload-model").json()["version"] == v2.version


def test_on_redis_cluster_replicas_follow_a_reload_by_polling(
    start_scorer: StartScorer,
    redis_cluster_url: str,
    two_versions: tuple[Built, Built],
    tmp_path: Path,
) -> None:
    """The same agreement on a 3+3 Redis Cluster, where followers poll the announcement (the
    asyncio cluster client has no pub/sub)."""
    v1, v2 = two_versions
    files = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]
    for path in files:
        shutil.copy(v1.path, path)
    settings = {"replicas": "3", "redis_mode": "cluster", "follow_poll_seconds": "0.3"}
    a = start_scorer(model=files[0], redis_url=redis_cluster_url, **settings)
    b = start_scorer(model=files[1], redis_url=redis_cluster_url, **settings)
    assert status(b)["version"] == v1.version
    swap_in(v2.path, files[0])
    with a.client() as http:
        answer = http.post("/ops/reload-model")
    assert answer.status_code == 200, answer.text
    assert answer.json()["announced"] is True
    wait_version(b, v2.version)
    c = start_scorer(model=files[2], redis_url=redis_cluster_url, **settings)
    assert status(c)["version"] == v2.version
