"""`leadops train`: quality on real and synthetic data, and every bad input refused cleanly."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadops.contract import quality
from leadops.contract.artifact import VerifyKeys, load_artifact
from leadops.jobs import synth
from leadops.jobs.training import command as train
from leadops.stats import cbpe


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = train.main(list(argv))
    captured = capsys.readouterr()
    summary = json.loads(captured.out) if code == 0 else {}
    return code, summary, captured.err


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.slow
def test_x_education_reaches_the_auc_bar(
    x_education_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    code, summary, _ = _run(
        capsys, "--input", str(x_education_csv), "--output", str(out), "--label", "Converted"
    )
    assert code == 0
    artifact = load_artifact(out)
    assert artifact.metrics.auc >= 0.975
    assert summary["auc"] == artifact.metrics.auc
    low, high = artifact.metrics.auc_ci95
    assert low < artifact.metrics.auc < high
    assert artifact.training.holdout == "stratified"  # the file has no timestamp column
    n_rows = artifact.metrics.n_train + artifact.metrics.n_test
    assert abs(artifact.metrics.n_test - 0.25 * n_rows) <= 1  # 25 % of each class, rounded
    reasons = {e.column: e.reason for e in artifact.features.excluded}
    # The two id columns go, found from their values alone; so do the single-valued ones.
    assert sorted(c for c, r in reasons.items() if r == "identifier") == [
        "Lead Number",
        "Prospect ID",
    ]
    assert sum(1 for r in reasons.values() if r == "constant") >= 3


def test_x_education_default_label_is_refused_naming_the_last_column(
    x_education_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    code, _, err = _run(capsys, "--input", str(x_education_csv), "--output", str(out))
    assert code == 2
    assert err.count("\n") == 1
    header = x_education_csv.read_text(encoding="utf-8").splitlines()[0]
    assert repr(header.split(",")[-1]) in err
    assert "--label" in err
    assert not out.exists()


def test_synthetic_auc_is_within_003_of_the_achievable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, truth_path, out = tmp_path / "s.csv", tmp_path / "truth.json", tmp_path / "model.json"
    argv = ["--n", "10000", "--seed", "11", "--output", str(data), "--truth", str(truth_path)]
    assert synth.main(argv) == 0
    capsys.readouterr()
    code, summary, _ = _run(capsys, "--input", str(data), "--output", str(out))
    assert code == 0
    truth = json.loads(truth_path.read_text())
    labels = [int(line[-1]) for line in list(csv.reader(data.open()))[1:]]
    probabilities = truth["probabilities"]
    achievable = truth["achievable_auc"]
    assert abs(achievable - quality.auc(labels, probabilities)) < 1e-4
    auc = float(str(summary["auc"]))
    assert abs(auc - achievable) <= 0.03
    # The fairer ceiling: the true probabilities on the same hold-out, the newest quarter
    # (synth writes rows in time order).
    assert summary["holdout"] == "time"
    n_test = int(str(summary["n_test"]))
    assert abs(auc - quality.auc(labels[-n_test:], probabilities[-n_test:])) <= 0.03
    excluded = summary["excluded"]
    assert isinstance(excluded, dict)
    assert excluded["lead_id"].startswith("identifier")
    assert excluded["received_at"].startswith("timestamp")


def test_signed_training_and_segment_card(
    synthetic_outcomes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = tmp_path / "key"
    secret.write_bytes(b"a long enough HMAC secret for tests")
    out = tmp_path / "model.json"
    monkeypatch.setenv("LEADOPS_SIGNING_KEY_FILE", str(secret))
    code, summary, _ = _run(
        capsys, "--input", str(synthetic_outcomes), "--output", str(out), "--segment", "tenant"
    )
    assert code == 0
    assert summary["signed"] == "hmac-sha256"
    artifact = load_artifact(out, keys=VerifyKeys.from_bytes(secret.read_bytes()))
    fairness = artifact.card.fairness
    assert fairness.segment_column == "tenant"
    assert {s.value for s in fairness.segments} == {"acme", "globex", "initech", "umbrella"}
    assert sum(s.n for s in fairness.segments) == artifact.metrics.n_test
    assert any(s.auc is not None for s in fairness.segments)


def _table_with(tmp_path: Path, n: int, *, converted: list[str] | None = None) -> list[list[str]]:
    rows = [["visits", "source", "converted"]]
    for i in range(n):
        label = converted[i] if converted else ("yes" if i % 3 == 0 else "no")
        rows.append([str(i % 9), ["web", "ads", "referral"][i % 3], label])
    return rows


BAD_INPUTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "header only": (lambda p: p.write_text("visits,source,converted\n"), "no data rows"),
    "binary": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50), "binary"),
    "not utf-8": (lambda p: p.write_bytes(b"a,b,converted\n\xff\xfe,1,yes\n" * 3), "not UTF-8"),
    "ragged": (
        lambda p: p.write_text("visits,source,converted\n1,web,yes\n2,ads\n3,web,no\n"),
        "line 3: 2 fields but the header has 3",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_malformed_files_exit_2_with_one_line_and_no_artifact(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], small_artifact_file: Path
) -> None:
    write, message = BAD_INPUTS[case]
    data = tmp_path / "in.csv"
    write(data)
    before = small_artifact_file.read_bytes()
    code, _, err = _run(capsys, "--input", str(data), "--output", str(small_artifact_file))
    assert code == 2
    assert err.count("\n") == 1
    assert message in err
    assert small_artifact_file.read_bytes() == before  # the serving artifact is untouched
    assert sorted(p.name for p in small_artifact_file.parent.iterdir()) == ["model.json"]


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        (lambda t: [r[:2] for r in t], (), "not binary"),  # last column is 'source'
        (lambda t: t, ("--label", "outcome"), "no column 'outcome'"),
        (lambda t: [*t[:1], *([r[0], r[1], "yes"] for r in t[1:])], (), "only one class"),
        (
            lambda t: [
                *t[:1],
                *([r[0], r[1], "no" if i % 20 else "yes"] for i, r in enumerate(t[1:])),
            ],
            (),
            "class imbalance",
        ),
        (lambda t: t[:60], (), "too few samples: 59 labelled rows"),
        (
            lambda t: [
                *t[:1],
                *([r[0], r[1], "maybe" if i == 7 else r[2]] for i, r in enumerate(t[1:])),
            ],
            (),
            "'maybe'",
        ),
    ],
    ids=[
        "label-not-binary",
        "missing-label-column",
        "one-class",
        "imbalance",
        "too-few",
        "odd-label",
    ],
)
def test_data_quality_gate(
    rows: object,
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert callable(rows)
    data = _write(tmp_path / "in.csv", rows(_table_with(tmp_path, 300)))
    out = tmp_path / "model.json"
    code, _, err = _run(capsys, "--input", str(data), "--output", str(out), *args)
    assert code == 2, err
    assert err.count("\n") == 1
    assert message in err
    assert not out.exists()


def test_label_spellings_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spellings = ["Yes", "no", "TRUE", "false", "1", "0", "y", "N"]
    labels = [spellings[(i * 7) % 8] for i in range(400)]
    data = _write(tmp_path / "in.csv", _table_with(tmp_path, 400, converted=labels))
    code, summary, err = _run(
        capsys, "--input", str(data), "--output", str(tmp_path / "m.json"), "--min-samples", "50"
    )
    assert code == 0, err
    assert summary["n_train"] == 300


def test_junk_in_numeric_column_is_missing_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _table_with(tmp_path, 400)
    for i in (5, 50, 77):
        table[i][0] = "lots"
    data = _write(tmp_path / "in.csv", table)
    out = tmp_path / "m.json"
    code, summary, _ = _run(capsys, "--input", str(data), "--output", str(out))
    assert code == 0
    assert summary["columns"] == {"visits": "numeric", "source": "categorical"}
    warnings = summary["warnings"]
    assert isinstance(warnings, list)
    assert any("'visits'" in w and "non-numeric" in w for w in warnings)


def test_one_gigabyte_file_is_refused_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "huge.csv"
    with big.open("wb") as handle:
        handle.write(b"visits,source,converted\n")
        handle.truncate(1 << 30)  # sparse: 1 GiB on paper, no disk used
    assert big.stat().st_size == 1 << 30
    code, _, err = _run(capsys, "--input", str(big), "--output", str(tmp_path / "m.json"))
    assert code == 2
    assert "1.0 GiB, over the input limit" in err
    assert err.count("\n") == 1


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        capsys, "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "m.json")
    )
    assert code == 2
    assert "does not exist" in err


def test_bad_signing_key_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADOPS_SIGNING_KEY", "short")
    data = _write(tmp_path / "in.csv", _table_with(tmp_path, 200))
    code, _, err = _run(capsys, "--input", str(data), "--output", str(tmp_path / "m.json"))
    assert code == 2
    assert "SigningKeyInvalid" in err
    assert not (tmp_path / "m.json").exists()
    assert os.environ["LEADOPS_SIGNING_KEY"] not in err.replace("shorter", "")


def test_time_aware_holdout_takes_the_newest_rows_even_when_shuffled() -> None:
    import numpy as np  # noqa: PLC0415

    from leadops.jobs.training import fit  # noqa: PLC0415

    rng = np.random.default_rng(0)
    days = rng.permutation(400)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    columns = {
        # Mixed precision on purpose: dates and datetimes sort together by their instant.
        "when": [
            (start + timedelta(days=int(d))).strftime("%Y-%m-%d" if d % 2 else "%Y-%m-%dT%H:%M:%SZ")
            for d in days
        ],
        "x": [str(v) for v in rng.normal(size=400)],
    }
    labels = rng.integers(0, 2, 400).astype(np.int64)
    warnings: list[str] = []
    split = fit._split(columns, labels, fit.TrainOptions(), rng, warnings)
    assert split.holdout == "time"
    assert split.timestamp == "when"
    assert len(split.test) == 100
    newest_train = max(split.times[i] for i in split.train)
    oldest_test = min(split.times[i] for i in split.test)
    assert oldest_test >= newest_train
    assert warnings == []


def test_unwritable_output_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path / "in.csv", _table_with(tmp_path, 200))
    code, _, err = _run(capsys, "--input", str(data), "--output", str(tmp_path / "no" / "m.json"))
    assert code == 2
    assert "not a writable directory" in err


def test_artifact_model_reproduces_the_reported_holdout_auc(
    trained_artifact_path: Path, synthetic_outcomes: Path
) -> None:
    """What the scorer will load is exactly the model the metrics describe."""
    import xgboost as xgb  # noqa: PLC0415

    from leadops.contract.featurize import matrix  # noqa: PLC0415

    artifact = load_artifact(trained_artifact_path)
    rows = list(csv.DictReader(synthetic_outcomes.open(encoding="utf-8")))
    test = rows[-artifact.metrics.n_test :]  # time hold-out: the newest rows, file is in time order
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(artifact.model).encode()))
    scores = booster.predict(xgb.DMatrix(matrix(artifact.features, test)))
    labels = [int(row["converted"]) for row in test]
    assert quality.auc(labels, scores) == pytest.approx(artifact.metrics.auc, abs=1e-6)
    # The calibration map (for estimating AUC before outcomes arrive) is fitted on the same
    # hold-out: monotone, and its expected AUC there is the measured one.
    calibration = artifact.calibration
    assert calibration is not None
    probabilities = cbpe.calibrate(calibration.scores, calibration.probabilities, scores)
    assert cbpe.expected_auc(scores, probabilities) == pytest.approx(artifact.metrics.auc, abs=0.02)


def test_console_script_reports_bad_input_as_exit_2_and_one_line(tmp_path: Path) -> None:
    """The installed `leadops` command, as the CronJob runs it."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    (tmp_path / "empty.csv").write_bytes(b"")
    leadops = Path(sys.executable).parent / "leadops"
    done = subprocess.run(
        [
            str(leadops),
            "train",
            "--input",
            str(tmp_path / "empty.csv"),
            "--output",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("leadops: error: train: input ")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("option", "value"),
    [("--trees", "0"), ("--depth", "40"), ("--learning-rate", "0"), ("--test-size", "0.9")],
)
def test_out_of_range_options_are_exit_2(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path / "in.csv", _table_with(tmp_path, 200))
    code, _, err = _run(
        capsys, "--input", str(data), "--output", str(tmp_path / "m.json"), option, value
    )
    assert code == 2
    assert option in err
    assert err.count("\n") == 1
