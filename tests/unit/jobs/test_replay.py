"""`leadops replay`: the real CLI on real trained artifacts and an outcomes CSV.

The leads carry two signals of known strength: `strong` separates conversions with AUC about
0.80, `weak` is `strong` plus noise, about 0.03 AUC weaker. A model trained without `weak`
is the baseline; one trained without `strong` is a candidate worse by about 0.03.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from leadops import cli
from leadops.contract import quality
from leadops.jobs.training import command as train
from leadops.stats import replay

# Normal shift 1.19 -> AUC 0.80; the noise (sd 0.545) takes it to about 0.77.
SHIFT = 1.19
NOISE = 0.545


def write_leads(path: Path, n: int, *, seed: int) -> None:
    rng = np.random.default_rng(seed)
    converted = rng.random(n) < 0.35
    strong = rng.normal(size=n) + SHIFT * converted
    weak = strong + rng.normal(scale=NOISE, size=n)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "strong", "weak", "converted"])
        for i in range(n):
            writer.writerow(["web", f"{strong[i]:.5f}", f"{weak[i]:.5f}", int(converted[i])])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("replay")
    history = where / "history.csv"
    write_leads(history, 3000, seed=1)
    out: dict[str, Path] = {}
    for name, args in {
        "baseline": ["--exclude", "weak", "--seed", "0"],
        "equal": ["--exclude", "weak", "--seed", "1"],  # the same data, another seed
        "worse": ["--exclude", "strong", "--seed", "0"],
    }.items():
        out[name] = where / f"{name}.json"
        argv = ["--input", str(history), "--output", str(out[name]), *args]
        assert train.main([*argv, "--trees", "40", "--threads", "1", "--depth", "3"]) == 0
    recent = where / "recent.csv"
    write_leads(recent, 6000, seed=2)
    out["recent"] = recent
    few = where / "few.csv"
    write_leads(few, 150, seed=3)
    out["few"] = few
    return out


def run(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path], candidate: str, data: str
) -> dict[str, object]:
    argv = ["replay", "--candidate", str(models[candidate]), "--baseline"]
    code = cli.main([*argv, str(models["baseline"]), "--input", str(models[data])])
    out = capsys.readouterr()
    assert code == 0, out.err
    verdict: dict[str, object] = json.loads(out.out)
    return verdict


def test_a_candidate_worse_by_about_003_fails(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path]
) -> None:
    got = run(capsys, models, "worse", "recent")
    assert (got["verdict"], got["reason"]) == ("Fail", "ReplayWorse")
    difference = got["difference"]
    assert isinstance(difference, float)
    assert -0.045 < difference < -0.02
    ci = got["ci"]
    assert isinstance(ci, list)
    assert ci[1] < 0
    assert got["leads"] == 6000


def test_an_equal_candidate_passes(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path]
) -> None:
    got = run(capsys, models, "equal", "recent")
    assert (got["verdict"], got["reason"]) == ("Pass", "NotWorse")
    ci = got["ci"]
    assert isinstance(ci, list)
    assert ci[0] > -0.02
    psi = got["score_psi"]
    assert isinstance(psi, float)
    assert psi < 0.25


def test_a_score_shift_fails_only_when_a_max_psi_is_set(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path]
) -> None:
    """The weaker model's scores are less extreme (PSI about 0.8 against the baseline's)."""
    argv = ["replay", "--candidate", str(models["worse"]), "--baseline", str(models["baseline"])]
    argv += ["--input", str(models["recent"]), "--max-psi", "0.25"]
    assert cli.main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["verdict"], got["reason"]) == ("Fail", "ScoreShift")
    assert got["score_psi"] > 0.25


def test_too_few_leads_with_outcomes_is_inconclusive(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path]
) -> None:
    got = run(capsys, models, "worse", "few")
    assert (got["verdict"], got["reason"]) == ("Inconclusive", "TooFewLeads")
    assert (got["leads"], got["difference"], got["ci"]) == (150, None, None)


def test_rows_without_an_outcome_are_left_out(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path], tmp_path: Path
) -> None:
    lines = models["recent"].read_text().splitlines()
    blanked = [lines[0]] + [line.rsplit(",", 1)[0] + "," for line in lines[1:5801]] + lines[5801:]
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join(blanked) + "\n")
    models = {**models, "partial": partial}
    got = run(capsys, models, "worse", "partial")
    assert (got["verdict"], got["leads"]) == ("Inconclusive", 200)
    assert got["reason"] == "Uncertain"  # 200 leads: an interval too wide to tell


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"--input": "missing.csv"}, "does not exist"),
        ({"--candidate": "missing.json"}, "--candidate"),
        ({"--input": "labels.csv"}, "not binary"),
        ({"--max-drop": "1.5"}, "--max-drop"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    models: dict[str, Path],
    tmp_path: Path,
    change: dict[str, str],
    said: str,
) -> None:
    (tmp_path / "labels.csv").write_text("source,strong,converted\nweb,1.0,maybe\n")
    options = {
        "--candidate": str(models["worse"]),
        "--baseline": str(models["baseline"]),
        "--input": str(models["recent"]),
    }
    for key, value in change.items():
        options[key] = value if key.startswith("--max") else str(tmp_path / value)
    code = cli.main(["replay", *(x for pair in options.items() for x in pair)])
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    assert said in out.err


def test_days_keeps_the_leads_received_in_the_window_and_the_termination_log_has_the_verdict(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path], tmp_path: Path
) -> None:
    """The operator's replay Job: `--days` counts back from `--now` over received_at (the
    scorer's export has it); the verdict also goes to the termination log, as one line."""
    lines = models["recent"].read_text().splitlines()
    dated = tmp_path / "dated.csv"
    old, recent = "2026-08-01T09:00:00Z", "2026-11-20T09:00:00Z"
    rows = [f"received_at,{lines[0]}"]
    rows += [f"{old if i < 1000 else recent},{line}" for i, line in enumerate(lines[1:])]
    dated.write_text("\n".join(rows) + "\n")
    log = tmp_path / "termination-log"
    argv = ["replay", "--candidate", str(models["worse"]), "--baseline", str(models["baseline"])]
    argv += ["--input", str(dated), "--days", "30", "--now", "2026-11-26T12:00:00Z"]
    assert cli.main([*argv, "--termination-log", str(log)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["leads"], printed["days"]) == (5000, 30)
    written = log.read_text()
    assert written.count("\n") == 1
    assert json.loads(written) == printed
    assert len(written.encode()) < 4096  # what the kubelet keeps of a termination message
    everything = ["--days", "365", "--now", "2026-11-26T12:00:00Z"]
    assert cli.main([*argv[:-4], *everything]) == 0
    assert json.loads(capsys.readouterr().out)["leads"] == 6000


def test_days_needs_received_at(
    capsys: pytest.CaptureFixture[str], models: dict[str, Path]
) -> None:
    argv = ["replay", "--candidate", str(models["worse"]), "--baseline", str(models["baseline"])]
    assert cli.main([*argv, "--input", str(models["recent"]), "--days", "30"]) == 2
    assert "--days needs a received_at column" in capsys.readouterr().err


def test_decide_on_scores_of_known_quality() -> None:
    """The verdict rule alone: equal scorers pass, a 0.03-weaker one fails, a wide interval
    (few leads) is inconclusive rather than a pass."""
    rng = np.random.default_rng(5)
    n = 8000
    y = rng.random(n) < 0.3
    latent = rng.normal(size=n) + SHIFT * y
    baseline = 1 / (1 + np.exp(-(latent + rng.normal(scale=0.1, size=n))))
    worse = 1 / (1 + np.exp(-(latent + rng.normal(scale=NOISE, size=n))))
    design = replay.Design()
    gap = quality.auc(y, baseline) - quality.auc(y, worse)
    assert 0.02 < gap < 0.045
    assert replay.decide(y, worse, baseline, design).verdict is replay.Verdict.FAIL
    assert replay.decide(y, baseline, baseline, design).verdict is replay.Verdict.PASS
    small = replay.decide(y[:300], worse[:300], baseline[:300], design)
    assert small.verdict is replay.Verdict.INCONCLUSIVE
    assert small.reason is replay.Reason.UNCERTAIN
