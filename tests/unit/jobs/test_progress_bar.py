"""The terminal progress bar: what one line shows, and how it says the count was off."""

from __future__ import annotations

import io

import pytest

from leadops.jobs.pii_backfill.progress_bar import ProgressBar


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the bar takes its full 30 columns


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _bar(total: int) -> tuple[ProgressBar, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, label="job", total=total, unit="keys", clock=clock)
    return bar, stream, clock


def _frames(stream: io.StringIO) -> list[str]:
    return [frame.rstrip() for frame in stream.getvalue().split("\r") if frame]


def test_a_frame_shows_bar_percentage_counts_rate_and_eta() -> None:
    bar, stream, clock = _bar(1000)
    clock.now += 10
    bar.update(250, extra="9 items")
    assert _frames(stream) == [
        "job |" + "#" * 7 + "-" * 23 + "| 25% 250/1,000 keys 25 keys/s ETA 0:30 9 items"
    ]


def test_updates_are_throttled_unless_forced() -> None:
    bar, stream, clock = _bar(10)
    bar.update(1)
    clock.now += 0.05
    bar.update(2)
    assert len(_frames(stream)) == 1
    bar.update(3, force=True)
    clock.now += 0.3
    bar.update(4)
    assert [f.split("| ")[1].split(" keys")[0] for f in _frames(stream)] == [
        "10% 1/10",
        "30% 3/10",
        "40% 4/10",
    ]


def test_more_work_than_counted_stays_at_100_percent_and_says_so() -> None:
    bar, stream, clock = _bar(100)
    clock.now += 2
    bar.update(130)
    assert "100% 100/100 keys (+30 new since the count) 65 keys/s ETA -" in _frames(stream)[-1]


def test_closing_a_complete_run_that_did_less_ends_at_100_percent_and_says_so() -> None:
    bar, stream, clock = _bar(100)
    clock.now += 65
    bar.close(97, extra="x")
    assert stream.getvalue().endswith("\n")
    last = _frames(stream)[-1]
    assert "100% 97/97 keys 1 keys/s in 1:05 x (3 counted keys gone since the count)" in last
    assert "|" + "#" * 30 + "|" in last


def test_closing_an_interrupted_run_keeps_what_was_done() -> None:
    bar, stream, clock = _bar(100)
    clock.now += 1
    bar.close(40, complete=False)
    assert "40% 40/100 keys 40 keys/s in 0:01" in _frames(stream)[-1]


def test_a_shorter_line_blanks_what_the_longer_one_left() -> None:
    bar, stream, _clock = _bar(10)
    bar.update(1, extra="a long extra text")
    bar.update(2, force=True)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first)


def test_a_narrow_terminal_gets_a_shorter_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    bar, _stream, clock = _bar(100)
    clock.now += 1
    monkeypatch.setenv("COLUMNS", "70")
    line = bar.line(50)
    assert len(line) <= 70
    assert 10 < len(line.split("|")[1]) < 30
    monkeypatch.setenv("COLUMNS", "20")
    assert bar.line(50).split("|")[1] == "#" * 5 + "-" * 5  # never under ten columns
