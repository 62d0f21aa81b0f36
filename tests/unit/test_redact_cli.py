"""`leadops redact` as a user runs it: a real process reading stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

LEADOPS = [sys.executable, "-m", "leadops.cli", "redact"]


def _run(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        LEADOPS + args, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_redacts_line_by_line_and_keeps_clean_lines() -> None:
    result = _run([], "mail jane@example.com\nnothing 2024-01-15\ncall (415) 555-2671")
    assert result.returncode == 0
    assert result.stdout == "mail [REDACTED]\nnothing 2024-01-15\ncall [REDACTED]"


def test_json_reports_findings_but_never_the_text() -> None:
    result = _run(["--json", "--typed"], "mail jane@example.com, ssn 078-05-1120\n")
    assert result.returncode == 0
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record == {
        "text": "mail [REDACTED:EMAIL], ssn [REDACTED:SSN]",
        "findings": [
            {"type": "EMAIL", "start": 5, "end": 21},
            {"type": "SSN", "start": 27, "end": 38},
        ],
    }
    assert "jane" not in result.stdout
    assert "1120" not in result.stdout


def test_region_option_reads_national_numbers() -> None:
    text = "Handy 0151 23456789\n"
    assert _run([], text).stdout == text
    assert _run(["--region", "de"], text).stdout == "Handy [REDACTED]\n"


def test_bad_region_is_exit_2_with_one_line() -> None:
    result = _run(["--region", "XX"], "")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "XX" in result.stderr


def test_unknown_option_is_exit_2_with_one_line() -> None:
    result = _run(["--bogus"], "")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--bogus" in result.stderr


def test_bytes_that_are_not_utf8_pass_through() -> None:
    result = subprocess.run(
        LEADOPS,
        input=b"caf\xe9 jane@example.com\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == b"caf\xe9 [REDACTED]\n"


def test_region_option_repeats_and_the_environment_gives_a_list() -> None:
    text = "Handy 0151 23456789 or 020 7946 0958\n"
    both = "Handy [REDACTED] or [REDACTED]\n"
    assert _run(["--region", "de", "--region", "GB"], text).stdout == both
    assert _run(["--region", "de,gb"], text).stdout == both
    env = {**os.environ, "LEADOPS_PII_REGIONS": "DE,GB", "LEADOPS_PII_DEFAULT_REGION": "US"}
    listed = subprocess.run(
        LEADOPS, input=text, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert listed.stdout == both
    env["LEADOPS_PII_REGIONS"] = "DE,XX"
    bad = subprocess.run(
        LEADOPS, input=text, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "LEADOPS_PII_REGIONS" in bad.stderr
