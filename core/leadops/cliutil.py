"""What every `leadops` subcommand shares: bad input is exit code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


def fail(message: str) -> int:
    print(f"leadops: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"leadops {self.prog.split()[-1]}: error: {message}\n")
