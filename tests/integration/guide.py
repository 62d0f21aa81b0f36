"""Read the shell commands of docs/operations.md (and docs/getting-started.md) so tests run
them verbatim."""

from __future__ import annotations

import re
from pathlib import Path

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
GETTING_STARTED = OPERATIONS.with_name("getting-started.md")


def bash_blocks(heading: str, *, doc: Path = OPERATIONS) -> list[str]:
    """The ```bash blocks under one heading (any level) of a doc, up to the next heading."""
    blocks: list[str] = []
    current: str | None = None  # heading of the section we are in
    block: list[str] | None = None  # lines of the open ```bash block
    other_fence = False  # inside a non-bash fence: its `#` lines are no headings
    for line in doc.read_text().splitlines():
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


def headings_with_commands(doc: Path) -> list[str]:
    """Every heading of `doc` with at least one ```bash block under it, in order."""
    out: list[str] = []
    current: str | None = None
    fence: str | None = None
    for line in doc.read_text().splitlines():
        if fence is not None:
            fence = None if line.startswith("```") else fence
        elif line.startswith("```"):
            fence = line[3:]
            if fence == "bash" and current is not None and current not in out:
                out.append(current)
        elif heading_match := re.match(r"^#+ (.*)$", line):
            current = heading_match.group(1)
    return out
