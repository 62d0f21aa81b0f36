"""`leadops experiment publish|status|promote|abort` without a cluster: bad input is exit 2 and
one line, without numpy (the operator image has none), and status reads as a person expects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from leadops.operator import experiment_cli

# numpy made unimportable, as in the operator image.
NO_NUMPY = (
    "import sys; sys.modules['numpy'] = None; "
    "from leadops import cli; sys.exit(cli.main(sys.argv[1:]))"
)


def _leadops(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_NUMPY, *argv], capture_output=True, text=True, check=False
    )


def test_publish_refuses_bad_input_in_one_line_without_numpy(tmp_path: Path) -> None:
    base = ["--experiment", "t", "--leadmodel", "lm", "--namespace", "ns"]
    not_json = tmp_path / "bad.json"
    not_json.write_text("{not json")
    no_time = tmp_path / "no-time.json"
    no_time.write_text(json.dumps({"verdict": "continue", "variants": []}))
    for path, words in [
        (tmp_path / "missing.json", "cannot read"),
        (not_json, "not a verdict"),
        (no_time, "no evaluated_at time"),
    ]:
        done = _leadops("experiment", "publish", "--input", str(path), *base)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1
        assert words in done.stderr
    usage = _leadops("experiment", "promote")
    assert usage.returncode == 2
    assert "name" in usage.stderr
    helped = _leadops("experiment", "--help")
    assert helped.returncode == 0
    assert "leadops experiment status|promote|abort" in helped.stdout


def test_status_lines_name_the_phase_the_looks_and_the_counts() -> None:
    item = {
        "metadata": {"name": "acme"},
        "status": {
            "experiment": {
                "name": "trial",
                "phase": "Running",
                "reason": "NotYetSignificant",
                "message": "look 3 of 28: continue (NotYetSignificant)",
                "startedAt": "2026-11-20T00:00:00Z",
                "look": 3,
                "looks": 28,
                "alphaSpent": "1.2e-05",
                "evaluatedAt": "2026-11-23T03:30:00Z",
                "variants": [
                    {"name": "control", "assigned": 1000, "leads": 800, "conversions": 240},
                    {"name": "v2", "assigned": 990, "leads": 790, "conversions": 300},
                ],
            }
        },
    }
    lines = experiment_cli.status_lines(item)
    assert lines[0] == "experiment trial: Running (NotYetSignificant)"
    assert "look 3 of 28; alpha spent 1.2e-05" in lines[2]
    assert lines[3].split() == ["VARIANT", "ASSIGNED", "MATURED", "CONVERSIONS"]
    assert lines[5].split() == ["v2", "990", "790", "300"]
    assert experiment_cli.status_lines({"metadata": {"name": "x"}}) == [
        "leadmodel/x: no experiment"
    ]
    running: dict[str, Any] = item["status"]["experiment"]  # type: ignore[index]
    won = running | {"servedVariant": "v2", "servedFlags": {"memory": "on"}}
    lines = experiment_cli.status_lines(
        {"metadata": {"name": "acme"}, "status": {"experiment": won}}
    )
    assert lines[-1] == "  serving variant v2 to every lead: memory=on"
