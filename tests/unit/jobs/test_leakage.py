"""The trainer warns about columns that look too good (known only after the outcome)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from leadops.contract.artifact import load_artifact
from leadops.jobs import inspect, synth
from leadops.jobs.training import command as train
from leadops.jobs.training import leakage


def _synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    path = tmp_path / "s.csv"
    assert synth.main(["--n", "4000", "--seed", "5", "--output", str(path)]) == 0
    capsys.readouterr()
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[list[str]]
) -> dict[str, object]:
    data, out = tmp_path / "in.csv", tmp_path / "model.json"
    with data.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    assert train.main(["--input", str(data), "--output", str(out), "--threads", "1"]) == 0
    summary: dict[str, object] = json.loads(capsys.readouterr().out)
    return summary


def _with_column(rows: list[list[str]], name: str, cells: list[str]) -> list[list[str]]:
    """A column inserted before the label (the last column)."""
    return [[*row[:-1], cell, row[-1]] for row, cell in zip(rows, [name, *cells], strict=True)]


def test_honest_features_raise_no_leak_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _train(tmp_path, capsys, _synthetic(tmp_path, capsys))
    assert summary["leakage"] == []
    assert not [w for w in summary["warnings"] if "leak" in str(w)]  # type: ignore[attr-defined]


def test_a_post_outcome_duration_is_named_in_summary_card_and_inspect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _synthetic(tmp_path, capsys)
    rng = np.random.default_rng(3)
    # Like a bank call's duration: long calls are the ones that converted, known only after.
    labels = [int(row[-1]) for row in rows[1:]]
    duration = [f"{rng.normal(600 if y else 120, 60):.0f}" for y in labels]
    summary = _train(tmp_path, capsys, _with_column(rows, "call_duration", duration))
    leaks = summary["leakage"]
    assert isinstance(leaks, list)
    assert [s["column"] for s in leaks] == ["call_duration"]
    assert leaks[0]["auc_alone"] >= 0.95
    assert any("call_duration" in str(w) for w in summary["warnings"])  # type: ignore[attr-defined]

    artifact = load_artifact(tmp_path / "model.json")
    assert [s.column for s in artifact.card.leakage] == ["call_duration"]
    assert any("call_duration" in note for note in artifact.card.limitations)
    text = inspect.render(artifact, verified=False)
    assert "possible leaks" in text
    assert "call_duration" in text.split("possible leaks")[1].split("\n")[1]


def test_a_sales_note_category_is_caught_through_its_conversion_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _synthetic(tmp_path, capsys)
    rng = np.random.default_rng(4)
    won = ["Closed won", "Will revert after reading the email"]
    lost = ["Ringing", "Not interested", "Already a student"]
    notes = [
        str(rng.choice(won if int(row[-1]) else lost)) if rng.random() < 0.97 else "Ringing"
        for row in rows[1:]
    ]
    summary = _train(tmp_path, capsys, _with_column(rows, "sales_note", notes))
    leaks = summary["leakage"]
    assert isinstance(leaks, list)
    assert [s["column"] for s in leaks] == ["sales_note"]


def test_row_keys_group_rows_exactly_as_a_row_sort_does() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 3, size=(5_000, 8)).astype(np.float32)
    rows[:, 0] = np.where(rows[:, 0] == 0, -0.0, rows[:, 0])  # -0.0 groups with 0.0
    rows[::7, 1] = 0.0
    ours = leakage._row_keys(rows)
    _, exact = np.unique(rows, axis=0, return_inverse=True)
    pairs = set(zip(ours.tolist(), exact.reshape(-1).tolist(), strict=True))
    assert len(pairs) == len(set(ours.tolist())) == len(set(exact.reshape(-1).tolist()))
