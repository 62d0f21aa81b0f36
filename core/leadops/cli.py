"""The `leadops` command: one entry point that dispatches to each part's `main(argv)`.

Subcommands are imported lazily so `leadops status` works in the operator image,
which does not ship xgboost.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from leadops import cliutil, logsafety


class Command(NamedTuple):
    module: str
    summary: str


COMMANDS: dict[str, Command] = {
    "synth": Command("leadops.jobs.synth", "generate realistic synthetic leads (CSV)"),
    "train": Command(
        "leadops.jobs.training.command", "train a model artifact from an outcomes CSV or URL"
    ),
    "inspect": Command("leadops.jobs.inspect", "show a model artifact's version, metrics and card"),
    "redact": Command("leadops.jobs.redact", "redact PII from text on stdin, line by line"),
    "pii-backfill": Command(
        "leadops.jobs.pii_backfill.command", "scrub PII from data already in Redis"
    ),
    "chat-key": Command(
        "leadops.jobs.chat_key", "print the Redis key of a chat's memory (needs the key salt)"
    ),
    "experiment": Command(
        "leadops.jobs.experiment.entry",
        "A/B experiments: evaluate one look (JSON verdict), publish it, status, promote, abort",
    ),
    "replay": Command(
        "leadops.jobs.replay",
        "compare a candidate model with the serving one on leads with known outcomes (JSON)",
    ),
    "serve": Command("leadops.scorer.serve", "run the scorer HTTP service"),
    "unpack-model": Command(
        "leadops.contract.unpack", "unpack a registry artifact if it has the validated digest"
    ),
    "operator": Command("leadops.operator.run", "run the LeadModel controller"),
    "status": Command("leadops.operator.cli", "show LeadModels in the cluster"),
    "rollback": Command(
        "leadops.operator.cli", "roll a LeadModel back: pin an older version, mark the one it left"
    ),
    "allow": Command("leadops.operator.cli", "allow a rolled-back model version to serve again"),
    "backfill": Command(
        "leadops.operator.cli", "start a PII-backfill Job from a LeadModel's CronJob"
    ),
    "followups": Command(
        "leadops.followups.command", "run the follow-ups worker, or list its dead letters"
    ),
    "publish": Command(
        "leadops.operator.publish", "store a trained artifact in a LeadModel's model registry"
    ),
}


def version() -> str:
    try:
        return importlib.metadata.version("leadops")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: leadops [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run `leadops COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] in {"--version", "-V", "version"}:
        print(f"leadops {version()}")
        return 0
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        return cliutil.fail(f"unknown command {name!r}; run `leadops --help` for the list")
    # Before any command runs: no log record of any part may carry request data.
    logsafety.install()
    module = importlib.import_module(command.module)
    # Modules serving several commands expose `main_<name>`; the rest a plain `main`.
    entry: Callable[[list[str]], int] = (
        getattr(module, f"main_{name.replace('-', '_')}", None) or module.main
    )
    try:
        return entry(rest)
    except cliutil.UsageError as exc:
        return cliutil.fail(f"{name}: {exc}")


if __name__ == "__main__":
    raise SystemExit(main())
