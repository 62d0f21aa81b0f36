"""CSV formula injection (OWASP "CSV Injection"): how the export escapes cells, and the undo.

A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`). The export writes such a text cell with a
leading `'`, which spreadsheets show as text; numbers (`-5`, `+1.5e3`) are not text and stay
as they are. A text cell that itself starts with `'` gets one more, so reading undoes exactly
the escape and a value survives export -> training byte for byte.

`csv_line` writes one export row. Not the csv module's writer: with the `\n` line ends the
export keeps (so `awk -F, '{print $NF}'` sees a bare label), it leaves a field holding a bare
`\r` unquoted, and every CSV reader then splits the row there.
"""

from __future__ import annotations

import re
from typing import Final

QUOTE: Final = "'"
FORMULA_START: Final = frozenset("=+-@\t\r")
_NEEDS_QUOTES: Final = re.compile(r'[",\r\n]')
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def escape_cell(text: str) -> str:
    """`text` as written to the export: a formula-like or quote-led text cell gets a `'`."""
    first = text[:1]
    if first == QUOTE or (first in FORMULA_START and not _NUMBER.fullmatch(text)):
        return QUOTE + text
    return text


def unescape_cell(cell: str) -> str:
    """The value `escape_cell` was given: one leading `'` removed, if there is one."""
    return cell[1:] if cell[:1] == QUOTE else cell


def csv_line(cells: list[str]) -> str:
    """One CSV row (RFC 4180 quoting, `\n` ended) of escaped cells."""
    fields = []
    for cell in cells:
        text = escape_cell(cell)
        if _NEEDS_QUOTES.search(text):
            text = '"' + text.replace('"', '""') + '"'
        fields.append(text)
    return ",".join(fields) + "\n"
