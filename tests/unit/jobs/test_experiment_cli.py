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
