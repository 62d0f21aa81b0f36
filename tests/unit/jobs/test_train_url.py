"""`leadops train --input http://.../ops/export/outcomes.csv`: a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadops.contract.artifact import load_artifact
from leadops.jobs.training import command as train_command

API_KEY = "test-api-key-123"


class _Export(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.headers.get("x-api-key") != API_KEY:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"detail":"invalid API key"}')
            return
        if self.path.startswith("/endless"):
            # Far more than the limit, sent in chunks: the reader must stop, not buffer it all.
            self.send_response(200)
            self.send_header("content-type", "text/csv")
            self.end_headers()
            self.wfile.write(b"visits,converted\n")
            line = b"1,yes\n" * 10_000
            try:
                for _ in range(2_000):  # ~120 MB if nobody stops reading
                    self.wfile.write(line)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.send_response(200)
        self.send_header("content-type", "text/csv")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def export_server(synthetic_outcomes: Path) -> Iterator[str]:
    handler = type("Export", (_Export,), {"body": synthetic_outcomes.read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_trains_from_the_scorer_export_with_the_api_key(
    export_server: str,
    synthetic_outcomes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADOPS_API_KEY", API_KEY)
    out = tmp_path / "model.json"
    url = f"{export_server}/ops/export/outcomes.csv?api_key=leaky"
    assert train_command.main(["--input", url, "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    artifact = load_artifact(out)
    assert artifact.training.source == f"{export_server}/ops/export/outcomes.csv"
    assert "leaky" not in out.read_text()
    # Same bytes as the file: the same data digest as training from the file itself.
    assert (
        train_command.main(
            ["--input", str(synthetic_outcomes), "--output", str(tmp_path / "f.json")]
        )
        == 0
    )
    from_file = load_artifact(tmp_path / "f.json")
    assert artifact.training.data_digest == from_file.training.data_digest
    assert summary["n_train"] == from_file.metrics.n_train


def test_wrong_api_key_is_exit_2(
    export_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADOPS_API_KEY", "wrong-key")
    out = tmp_path / "model.json"
    assert (
        train_command.main(
            ["--input", f"{export_server}/ops/export/outcomes.csv", "--output", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "HTTP 401" in err
    assert "wrong-key" not in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_streamed_input_over_the_limit_is_cut_off(
    export_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADOPS_API_KEY", API_KEY)
    out = tmp_path / "model.json"
    code = train_command.main(
        ["--input", f"{export_server}/endless", "--output", str(out), "--max-input-mb", "2"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "over the input limit of 2.0 MiB" in err
    assert not out.exists()


def test_unreachable_scorer_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    assert (
        train_command.main(
            ["--input", "http://127.0.0.1:9/ops/export/outcomes.csv", "--output", str(out)]
        )
        == 2
    )
    assert "cannot read http://127.0.0.1:9/ops/export/outcomes.csv" in capsys.readouterr().err
