"""The two CSV readers (Arrow, and the csv module it falls back to) give the same cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadops.cliutil import UsageError
from leadops.contract.encoded import EncodedColumn
from leadops.jobs.training import outcomes_csv

TRICKY = (
    "\ufeff\n"  # a byte-order mark and a blank line before the header
    " id , note ,amount,converted\n"
    '1,"two\nlines",1.5,yes\n'
    "2,'=HYPERLINK(x),  -3 ,no\n"  # the export's formula escape, undone
    "3,=HYPERLINK(x),,yes\n"  # the same value unescaped: one distinct value after undoing
    '4,"say ""hi""",NA,no\n'
    "\n"
    "5,'',1e3,yes\n"
)


def _cells(table: outcomes_csv.Table) -> dict[str, list[str]]:
    return {name: list(cells) for name, cells in table.columns.items()}


def test_arrow_and_csv_module_read_the_same_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(TRICKY, encoding="utf-8")
    arrow = outcomes_csv.read_table(str(path))
    monkeypatch.setattr(outcomes_csv, "_parse_arrow", lambda _stream, _where: None)
    fallback = outcomes_csv.read_table(str(path))
    assert arrow.header == fallback.header == ["id", "note", "amount", "converted"]
    assert _cells(arrow) == _cells(fallback)
    assert _cells(arrow)["note"] == [
        "two\nlines",
        "=HYPERLINK(x)",
        "=HYPERLINK(x)",
        'say "hi"',
        "'",
    ]
    assert arrow.n_rows == fallback.n_rows == 5
    assert arrow.digest == fallback.digest
    note = arrow.columns["note"]
    assert isinstance(note, EncodedColumn)
    assert note.value_counts()["=HYPERLINK(x)"] == 2


def test_ragged_rows_are_named_by_line_after_arrow_refuses(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text("a,b,converted\n1,2,yes\n1,2,3,no\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 3: 4 fields but the header has 3"):
        outcomes_csv.read_table(str(path))
