"""`leadops serve` refuses bad input with exit 2 and one line on stderr, before binding anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadops.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "/nonexistent/model.json"],
            "model file /nonexistent/model.json does not exist",
        ),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
        (["--port", "eighty"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    done = _serve(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_bad_setting_from_env_names_the_setting(tmp_path: Path) -> None:
    done = _serve(env={"LEADOPS_MAX_BODY_BYTES": "-1", "PATH": "/usr/bin"})
    assert done.returncode == 2
    assert "max_body_bytes" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
