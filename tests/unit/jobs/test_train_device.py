"""`leadops train --device`: the device is resolved before reading, recorded in the artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadops.contract.artifact import load_artifact
from leadops.jobs import synth
from leadops.jobs.training import command as train
from leadops.jobs.training import device

GPU = device.gpu_visible()


@pytest.fixture(scope="module")
def leads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("device") / "leads.csv"
    assert synth.main(["--n", "3000", "--seed", "5", "--output", str(data)]) == 0
    return data


def _train(tmp_path: Path, leads: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / f"model-{'-'.join(extra) or 'default'}.json"
    return train.main(["--input", str(leads), "--output", str(out), *extra]), out


def test_cpu_and_auto_record_the_device_they_used_and_agree_on_auc(
    tmp_path: Path, leads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code_cpu, cpu_path = _train(tmp_path, leads, "--device", "cpu")
    code_auto, auto_path = _train(tmp_path, leads, "--device", "auto")
    capsys.readouterr()
    assert code_cpu == code_auto == 0
    cpu, auto = load_artifact(cpu_path), load_artifact(auto_path)
    assert cpu.training.params["device"] == "cpu"
    assert auto.training.params["device"] == ("cuda" if GPU else "cpu")
    assert abs(cpu.metrics.auc - auto.metrics.auc) <= 0.005


@pytest.mark.skipif(GPU, reason="this machine has a GPU xgboost can use")
def test_cuda_without_a_gpu_is_exit_2_in_one_line_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _train(tmp_path, tmp_path / "absent.csv", "--device", "cuda")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "--device cuda: xgboost sees no GPU" in err
    assert not out.exists()


def test_unknown_device_is_a_usage_error(
    tmp_path: Path, leads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path, leads, "--device", "tpu")
    assert exit_info.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
    assert json.dumps(device.CHOICES) == '["auto", "cpu", "cuda"]'
