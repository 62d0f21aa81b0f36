"""`leadops serve` refuses bad input with exit 2 and one line on stderr, before binding anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leadops import cli


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "/nonexistent/model.json"],
            "model file /nonexistent/model.json does not exist",
        ),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", *args]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_bad_setting_from_env_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADOPS_MAX_BODY_BYTES", "-1")
    assert cli.main(["serve"]) == 2
    assert "max_body_bytes" in _one_line(capsys.readouterr().err)


def test_the_real_command_rejects_a_non_numeric_port() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leadops.cli", "serve", "--port", "eighty"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid int value" in _one_line(done.stderr)
