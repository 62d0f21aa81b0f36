"""What every `leadops` subcommand shares: bad input is exit code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


def fail(message: str) -> int:
    print(f"leadops: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default, unless it names one itself or has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (no usage dump) and exit code 2,
    and every option's help shows its default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"leadops {self.prog.split()[-1]}: error: {message}\n")
