"""Every `leadops` command alike (issue #15 item 6): --version, help text on every option
with its default, `train --help` naming both modes, and each error path exit 2 in one line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadops import cli, cliutil

LEADOPS = str(Path(sys.executable).with_name("leadops"))


class _Shown(Exception):
    pass


def _parsers(name: str, monkeypatch: pytest.MonkeyPatch) -> list[argparse.ArgumentParser]:
    """The parsers `leadops NAME --help` builds (subcommands' included)."""
    seen: list[argparse.ArgumentParser] = []

    def record(self: argparse.ArgumentParser, file: object = None) -> None:
        seen.append(self)
        raise _Shown

    monkeypatch.setattr(cliutil.ArgumentParser, "print_help", record)
    with pytest.raises(_Shown):
        cli.main([name, *SUBCOMMAND.get(name, []), "--help"])
    out = list(seen)
    for parser in seen:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                out += list(action.choices.values())
    return out


# Commands whose options live under one subcommand.
SUBCOMMAND = {"experiment": ["evaluate"]}
SKIP = (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_option_has_help_showing_its_default(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for parser in _parsers(name, monkeypatch):
        assert isinstance(parser, cliutil.ArgumentParser), parser.prog
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, SKIP) or not action.option_strings:
                continue
            where = f"{parser.prog} {'/'.join(action.option_strings)}"
            assert action.help, f"{where} has no help text"
            shown = formatter._expand_help(action) if action.help else ""
            trivial = action.default in (None, False, [], argparse.SUPPRESS)
            assert trivial or "default" in shown, f"{where}: its default is not shown"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"leadops {cli.version()}"


def test_train_help_shows_both_modes_and_the_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "leadops train --input CSV|URL --output model.json" in out
    assert "leadops train NAME [-n NAMESPACE]" in out
    assert "$LEADOPS_API_KEY" in out


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (":9000", "http://0.0.0.0:9000/healthz"),
        ("127.0.0.1:8081", "http://127.0.0.1:8081/healthz"),
        ("http://0.0.0.0:8081/healthz", "http://0.0.0.0:8081/healthz"),
        ("http://localhost:9/live", "http://localhost:9/live"),
        ("", None),
    ],
)
def test_health_address_forms(value: str, url: str | None) -> None:
    from leadops.operator import run  # noqa: PLC0415

    assert run.health_url(value) == url


ERRORS = [
    (["train"], "give --input CSV|URL --output model.json"),
    (["train", "--input", "/nonexistent.csv", "--output", "/tmp/m.json"], "does not exist"),
    (["operator", "--all-namespaces", "--health-address", "nonsense"], "is not HOST:PORT"),
    (["operator", "--all-namespaces", "--health-address", ":99999"], "is not HOST:PORT"),
    (["operator", "--all-namespaces", "--kubeconfig", "/nonexistent"], "no such file"),
    (["operator", "--all-namespaces", "--metrics-port", "-1"], "is not a port"),
    (["publish", "--artifact", "/nonexistent.json"], "give the LeadModel NAME"),
    (["publish", "a", "--leadmodel", "b", "--artifact", "/x.json"], "differ"),
    (["publish", "a", "-n", "b", "--artifact", "/nonexistent.json"], "cannot read"),
    (["publish", "a", "--artifact", "/x.json", "--kubeconfig"], "expected one argument"),
    (["train", "lm", "--kubeconfig", "/nonexistent/kubeconfig"], "no cluster to talk to"),
    (["backfill", "lm", "-n", "ns", "--kubeconfig", "/nonexistent/kc"], "no cluster to talk to"),
]


@pytest.mark.parametrize(("argv", "words"), ERRORS)
def test_error_paths_are_exit_2_and_one_line(argv: list[str], words: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = "/nonexistent/kubeconfig"
    out = subprocess.run(
        [LEADOPS, *argv], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert words in out.stderr
