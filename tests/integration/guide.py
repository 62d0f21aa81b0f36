"""Read the shell commands of docs/operations.md so tests run them verbatim."""

from __future__ import annotations

import re
from pathlib import Path

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def bash_blocks(heading: str) -> list[str]:
    """The ```bash blocks under one heading (any level) of docs/operations.md, up to the next."""
    blocks: list[str] = []
    current: str | None = None  # heading of the section we are in
    block: list[str] | None = None  # lines of the open ```bash block
    other_fence = False  # inside a non-bash fence: its `#` lines are no headings
    for line in OPERATIONS.read_text().splitlines():
        if other_fence:
            other_fence = not line.startswith("```")
        elif block is not None:
            if line.startswith("```"):
                if current == heading:
                    blocks.append("\n".join(block) + "\n")
                block = None
            else:
                block.append(line)
        elif line.startswith("```bash"):
            block = []
        elif line.startswith("```"):
            other_fence = True
        elif heading_match := re.match(r"^#+ (.*)$", line):
            current = heading_match.group(1)
    return blocks


def commands(block: str, pattern: str) -> list[str]:
    """The lines of a block (comments and blanks dropped) that fully match `pattern`."""
    return [
        line
        for line in block.splitlines()
        if line.strip() and not line.startswith("#") and re.fullmatch(pattern, line.strip())
    ]
