"""bench.docsection: each benchmark rewrites only its own marked section of the doc."""

from __future__ import annotations

from pathlib import Path

from bench.docsection import HEADER, write_section

DOC = """# Benchmarks

<!-- bench.first:begin -->
old first
<!-- bench.first:end -->

<!-- bench.second:begin -->
second body
<!-- bench.second:end -->
"""


def test_replaces_its_section_in_place_and_leaves_others(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")

    write_section("first", "new first\nline two\n", doc=doc)

    assert doc.read_text(encoding="utf-8") == DOC.replace("old first", "new first\nline two")


def test_appends_a_missing_section_after_the_others(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")

    write_section("third", "third body", doc=doc)

    expected = DOC + "\n<!-- bench.third:begin -->\nthird body\n<!-- bench.third:end -->\n"
    assert doc.read_text(encoding="utf-8") == expected


def test_creates_the_doc_with_its_header_when_absent(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "benchmarks.md"

    write_section("first", "body", doc=doc)

    text = doc.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert text.endswith("<!-- bench.first:begin -->\nbody\n<!-- bench.first:end -->\n")


def test_a_name_that_prefixes_another_does_not_touch_it(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC.replace("bench.second", "bench.first_two"), encoding="utf-8")

    write_section("first", "changed", doc=doc)

    text = doc.read_text(encoding="utf-8")
    assert "<!-- bench.first_two:begin -->\nsecond body\n<!-- bench.first_two:end -->" in text
    assert "<!-- bench.first:begin -->\nchanged\n<!-- bench.first:end -->" in text
