"""Bad input to the operator's commands: exit 2 and one line on stderr (no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LEADOPS = str(Path(sys.executable).with_name("leadops"))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["operator"], "--namespace NS"),
        (["operator", "--namespace", "a", "--all-namespaces"], "not allowed with"),
        (["status", "--kubeconfig", "/nonexistent/kubeconfig"], "no cluster to talk to"),
        (["rollback"], "required: name"),
        (["rollback", "x", "--to", "abc"], "--to 'abc' is not a model version"),
        (["allow", "x"], "required: version"),
        (["allow", "x", "abc"], "VERSION 'abc' is not a model version"),
        (["allow", "x", "1730483820"], "no cluster to talk to"),
        (["backfill", "x", "--bogus"], "unrecognized arguments"),
        (["publish", "--artifact", "/nonexistent.json", "--leadmodel", "a", "--namespace", "b"],
         "cannot read /nonexistent.json"),
    ],
)  # fmt: skip
def test_one_line_exit_2(argv: list[str], words: str) -> None:
    _assert_one_line_exit_2(argv, words)


def test_bad_alert_rules_setting_stops_the_operator_before_it_starts() -> None:
    _assert_one_line_exit_2(
        ["operator", "--all-namespaces"],
        "LEADOPS_ALERT_RULES must be true or false, not 'maybe'",
        LEADOPS_ALERT_RULES="maybe",
    )


def _assert_one_line_exit_2(argv: list[str], words: str, **extra_env: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"KUBERNETES_SERVICE_HOST"}}
    env["KUBECONFIG"] = "/nonexistent/kubeconfig"
    env.update(extra_env)
    out = subprocess.run(
        [LEADOPS, *argv], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert words in out.stderr
