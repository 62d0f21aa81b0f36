"""`leadops train --dask-scheduler`: xgboost.dask on a real distributed.LocalCluster (2 workers)
gives the AUC local training gives on the same data (within 0.005)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadops.contract.artifact import load_artifact
from leadops.jobs import synth
from leadops.jobs.training import command as train

distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("rows", [4_000, 70_000])  # refit on all below 50k training rows; not above
def test_two_worker_cluster_matches_local_auc(
    rows: int,
    scheduler: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
) -> None:
    data = tmp_path / "leads.csv"
    assert synth.main(["--n", str(rows), "--seed", "9", "--output", str(data)]) == 0
    local, remote = tmp_path / "local.json", tmp_path / "dask.json"
    base = ["--input", str(data), "--device", "cpu", "--max-input-mb", "64"]
    assert train.main([*base, "--output", str(local)]) == 0
    assert train.main([*base, "--output", str(remote), "--dask-scheduler", scheduler]) == 0
    summaries = [json.loads(line) for line in capsys.readouterr().out.splitlines()[-2:]]
    assert summaries[1]["auc"] == load_artifact(remote).metrics.auc
    assert abs(load_artifact(local).metrics.auc - load_artifact(remote).metrics.auc) <= 0.005
    # The matrix went to the workers, not through the scheduler inside the task graph.
    assert not [w for w in recwarn if "large graph" in str(w.message)]


def test_unreachable_scheduler_is_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "leads.csv"
    assert synth.main(["--n", "1000", "--seed", "9", "--output", str(data)]) == 0
    capsys.readouterr()
    out = tmp_path / "model.json"
    argv = ["--input", str(data), "--output", str(out), "--dask-scheduler", "tcp://127.0.0.1:9"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--dask-scheduler tcp://127.0.0.1:9: no scheduler answers" in err
    assert not out.exists()
