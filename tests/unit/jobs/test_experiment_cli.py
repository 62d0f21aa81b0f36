"""`leadops experiment evaluate`: the verdict JSON from a CSV or URL, and bad input refused."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadops import cli
from leadops.stats import sequential

DAY = 86_400
NOW = 1_800_000_000
HEADER = ["variant", "scored_at", "outcome_at", "shadow_control", "shadow_b"]


def _experiment(
    path: Path, *, rates: dict[str, float], n: int, share_b: float = 0.5, seed: int = 0
) -> Path:
    """Leads scored over the last 30 days; conversions recorded up to 5 days later."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for _ in range(n):
            variant = "b" if rng.random() < share_b else "control"
            scored = NOW - rng.random() * 30 * DAY
            converts = rng.random() < rates[variant]
            outcome = f"{scored + rng.random() * 5 * DAY:.0f}" if converts else ""
            weak, strong = converts * 0.2 + rng.random(), converts * 0.6 + rng.random()
            writer.writerow([variant, f"{scored:.0f}", outcome, f"{weak:.4f}", f"{strong:.4f}"])
    return path


def _expected_counts(path: Path, window_days: float) -> dict[str, tuple[int, int, int]]:
    """Assigned, matured and converted-within-window per variant, counted the plain way."""
    counts: dict[str, list[int]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            c = counts.setdefault(row["variant"], [0, 0, 0])
            c[0] += 1
            if NOW - float(row["scored_at"]) >= window_days * DAY:
                c[1] += 1
                c[2] += bool(row["outcome_at"])  # all recorded within 5 days < window
    return {k: (v[0], v[1], v[2]) for k, v in counts.items()}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main(["experiment", "evaluate", *argv])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


def test_a_clear_winner_is_promoted_with_the_numbers_to_check_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.30, "b": 0.40}, n=6000)
    code, out, err = _run(
        capsys, "--input", str(data), "--look", "3", "--of", "5", "--now", str(NOW),
        "--window-days", "7",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (out["verdict"], out["variant"], out["reason"]) == (
        "promote",
        "b",
        "SignificantlyBetter",
    )
    expected = _expected_counts(data, 7)
    got = {v["name"]: (v["assigned"], v["leads"], v["conversions"]) for v in out["variants"]}
    assert got == expected
    assert out["boundary"] == pytest.approx(
        sequential.boundaries(sequential.equally_spaced(5), 0.05)[2], abs=1e-6
    )
    (comparison,) = out["comparisons"]
    assert comparison["z"] >= comparison["boundary"]
    # The shadow model of b ranks leads better: the paired interval sits above zero.
    assert comparison["auc_ci"][0] > 0 < comparison["auc_difference"]


def test_immature_leads_are_not_counted_as_no(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.3}, n=3000, seed=1)
    _, short, _ = _run(capsys, "--input", str(data), "--now", str(NOW), "--window-days", "7")
    _, long, _ = _run(capsys, "--input", str(data), "--now", str(NOW), "--window-days", "21")
    short_rates = [v["rate"] for v in short["variants"]]
    long_leads = sum(v["leads"] for v in long["variants"])
    short_leads = sum(v["leads"] for v in short["variants"])
    assert long_leads < short_leads < 3000
    assert all(abs(r - 0.3) < 0.04 for r in short_rates)  # not dragged down by fresh leads


def test_a_reply_decides_with_metric_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scorer's export with follow-ups: `replied_at` is the success, conversions ignored."""
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.30, "b": 0.40}, n=6000)
    with data.open() as handle:
        rows = list(csv.reader(handle))
    # The replies are the conversions' times; every lead also "converted" (ignored: reply).
    renamed = [["variant", "scored_at", "replied_at", "converted"]]
    renamed += [[r[0], r[1], r[2], "1"] for r in rows[1:]]
    replies = _write(tmp_path / "replies.csv", renamed)
    argv = ["--input", str(replies), "--now", str(NOW), "--window-days", "7"]
    code, out, err = _run(capsys, *argv, "--metric", "reply")
    assert (code, err) == (0, "")
    assert (out["verdict"], out["variant"]) == ("promote", "b")
    got = {v["name"]: (v["assigned"], v["leads"], v["conversions"]) for v in out["variants"]}
    assert got == _expected_counts(data, 7)
    _, by_conversion, _ = _run(capsys, *argv)  # every lead converted: no difference
    assert by_conversion["verdict"] != "promote"
    code, _, err = _run(capsys, "--input", str(data), "--metric", "reply")
    assert code == 2
    assert "no 'replied_at' column" in err


def test_a_skewed_split_is_invalid_even_with_a_winner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.45}, n=6000, share_b=0.56)
    code, out, _ = _run(capsys, "--input", str(data), "--now", str(NOW), "--window-days", "7")
    assert code == 0
    assert (out["verdict"], out["reason"], out["variant"]) == (
        "invalid",
        "SampleRatioMismatch",
        None,
    )
    assert out["srm_p_value"] < 0.001


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


GOOD = [["control", "1000", ""], ["b", "1000", "1100"]]


@pytest.mark.parametrize(
    ("rows", "argv", "message"),
    [
        ([["variant", "outcome_at"], ["b", ""]], [], "no 'scored_at' column"),
        ([["variant", "scored_at"], ["b", "1"]], [], "neither"),
        ([["variant", "scored_at", "outcome_at"], ["b", "yesterday", ""]], [], "ISO-8601"),
        ([["variant", "scored_at", "converted"], ["b", "1", "maybe"]], [], "converted"),
        ([["variant", "scored_at", "outcome_at"], *GOOD], ["--look", "2"], "go together"),
        ([["variant", "scored_at", "outcome_at"], *GOOD], ["--look", "3", "--of", "2"], "--look"),
        ([["variant", "scored_at", "outcome_at"], *GOOD], ["--alpha", "0"], "--alpha"),
        ([["variant", "scored_at", "outcome_at"], *GOOD], ["--control", "a"], "--control"),
        (
            [["variant", "scored_at", "outcome_at"], *GOOD],
            ["--weights", "control=50"],
            "undeclared 'b'",
        ),
        (
            [["variant", "scored_at", "outcome_at"], *GOOD, *[[v, "1", ""] for v in "cde"]],
            [],
            "2 to 4 variants",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[list[str]],
    argv: list[str],
    message: str,
) -> None:
    data = _write(tmp_path / "bad.csv", rows)
    code, _, err = _run(capsys, "--input", str(data), "--now", "5000", *argv)
    assert code == 2
    assert err.count("\n") == 1
    assert message in err


class _Export(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        ok = self.headers.get("x-api-key") == "k-123"
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(self.body if ok else b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def export_url(tmp_path: Path) -> Iterator[str]:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.3}, n=500, seed=4)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("E", (_Export,), {"body": data.read_bytes()})
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ops/export/experiment.csv"
    finally:
        server.shutdown()


def test_reads_the_scorers_export_over_http_with_the_api_key(
    export_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADOPS_API_KEY", "k-123")
    code, out, _ = _run(capsys, "--input", export_url, "--now", str(NOW), "--window-days", "7")
    assert code == 0
    assert sum(v["assigned"] for v in out["variants"]) == 500
    monkeypatch.setenv("LEADOPS_API_KEY", "wrong")
    code, _, err = _run(capsys, "--input", export_url)
    assert code == 2
    assert "HTTP 401" in err


def test_the_look_is_the_whole_days_since_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.3}, n=400)
    looks = []
    for days in (0.2, 5.5, 40):
        code, out, err = _run(
            capsys, "--input", str(data), "--now", str(NOW), "--of", "28",
            "--started-at", str(NOW - days * DAY),
        )  # fmt: skip
        assert (code, err) == (0, "")
        looks.append((out["look"], out["looks"]))
    # At least look 1; then one per whole day; never past the planned looks.
    assert looks == [(1, 28), (5, 28), (28, 28)]
    code, _, err = _run(
        capsys, "--input", str(data), "--started-at", str(NOW), "--look", "2", "--of", "5"
    )
    assert code == 2
    assert (
        err.strip()
        == "leadops: error: experiment evaluate: --started-at needs --of and replaces --look"
    )


def test_a_score_psi_over_the_guardrail_aborts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # b's model scores its leads higher (strong shadow scores): its served scores shift.
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.30, "b": 0.40}, n=6000)
    base = ["--input", str(data), "--look", "3", "--of", "5", "--now", str(NOW)]
    code, loose, _ = _run(capsys, *base, "--max-score-psi", "100")
    assert code == 0
    (comparison,) = loose["comparisons"]
    assert comparison["score_psi"] > 0.05
    assert loose["verdict"] == "promote"  # a winner on conversions...
    code, tight, _ = _run(capsys, *base, "--max-score-psi", "0.05")
    assert code == 0
    # ...is aborted when its scores breach the guardrail.
    assert (tight["verdict"], tight["reason"], tight["variant"]) == (
        "abort",
        "ScorePsiGuardrail",
        None,
    )
    assert tight["message"].startswith("variant b: score PSI ")
    code, _, err = _run(capsys, *base, "--max-score-psi", "0")
    assert (code, err.strip()) == (
        2,
        "leadops: error: experiment evaluate: --max-score-psi must be above 0",
    )


def _counts(path: Path, **variants: tuple[int, int, dict[int, int]]) -> Path:
    """A scorer's GET /ops/experiment/guardrails answer: (answers, failures, {bucket: n})."""
    bounds = [0.001 * 2**k for k in range(8)]  # 1 ms .. 128 ms
    body = {
        "experiment": "t",
        "bounds": bounds,
        "variants": [
            {
                "name": name,
                "answers": answers,
                "failures": failures,
                "answer_seconds": [hist.get(i, 0) for i in range(len(bounds) + 1)],
            }
            for name, (answers, failures, hist) in variants.items()
        ],
    }
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize(
    ("b", "reason", "words"),
    [
        # 300 leads answered within 2 ms, as the control's: no guardrail.
        ((300, 3, {1: 300}), "promote", ""),
        # 10 of 310 leads failed: 3.2 % > 2 %.
        ((300, 10, {1: 300}), "ErrorRateGuardrail", "variant b: error rate 0.0323 (10 of 310"),
        # Its p99 in the 8-16 ms bucket, the control's in 1-2 ms: far over 1.5 x.
        ((300, 0, {1: 200, 4: 100}), "P99LatencyGuardrail", "variant b: p99 answer time"),
        # Too few leads to judge either way (under --min-guardrail-leads 100).
        ((50, 40, {4: 50}), "promote", ""),
    ],
)
def test_error_rate_and_p99_latency_guardrails_abort_naming_the_variant(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    b: tuple[int, int, dict[int, int]],
    reason: str,
    words: str,
) -> None:
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.30, "b": 0.40}, n=6000)
    counts = _counts(tmp_path / "g.json", control=(300, 0, {1: 300}), b=b)
    code, result, err = _run(
        capsys,
        *("--input", str(data), "--look", "3", "--of", "5", "--now", str(NOW)),
        *("--guardrails", str(counts), "--max-error-rate", "0.02"),
        *("--max-p99-latency-ratio", "1.5", "--min-guardrail-leads", "100"),
    )
    assert code == 0, err
    assert (result["verdict"] == "abort") == (reason != "promote")
    assert result["reason"] == ("SignificantlyBetter" if reason == "promote" else reason)
    assert result["message"].startswith(words)
    assert [g["variant"] for g in result["guardrails"]] == ["control", "b"]


def test_a_failing_variant_is_an_error_rate_abort_not_a_split_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # b's failed leads are never stored: the export shows a skewed split.
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.3}, n=4000, share_b=0.3)
    counts = _counts(tmp_path / "g.json", control=(2800, 0, {1: 2800}), b=(1200, 800, {1: 1200}))
    argv = ["--input", str(data), "--now", str(NOW), "--guardrails", str(counts)]
    code, without, _ = _run(capsys, *argv)
    assert (code, without["verdict"]) == (0, "invalid")  # no limit given: the split speaks
    code, result, _ = _run(
        capsys, *argv, "--max-error-rate", "0.02", "--output", str(tmp_path / "v.json")
    )
    assert (code, result["verdict"], result["reason"]) == (0, "abort", "ErrorRateGuardrail")
    assert (
        "variant b: error rate 0.4000 (800 of 2000 leads failed) above maxErrorRate 0.02"
        in (result["message"])
    )
    assert json.loads((tmp_path / "v.json").read_text()) == result


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--max-error-rate", "0.1"],
            "--max-error-rate and --max-p99-latency-ratio need --guardrails",
        ),
        (
            ["--guardrails", "g.json", "--max-error-rate", "2"],
            "--max-error-rate must be between 0 and 1",
        ),
        (["--guardrails", "nope.json"], "--guardrails nope.json is not a file"),
        (["--guardrails", "bad.json"], "--guardrails bad.json: not the scorer's guardrail counts"),
    ],
)
def test_bad_guardrail_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _experiment(tmp_path / "e.csv", rates={"control": 0.3, "b": 0.3}, n=200)
    _counts(tmp_path / "g.json", control=(1, 0, {}), b=(1, 0, {}))
    (tmp_path / "bad.json").write_text('{"bounds": [1, 0.5], "variants": []}')
    code, _, err = _run(capsys, "--input", str(data), *extra)
    assert code == 2
    assert err.count("\n") == 1
    assert f"experiment evaluate: {message}" in err
