"""A one-line progress bar for a terminal: bar, percentage, done/total, rate and ETA.

Our own few lines rather than a library: the jobs need one bar on stderr, redrawn in
place with a carriage return (no cursor codes, so even TERM=dumb shows it right), and
an honest note when more work turned up than was counted at the start.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

_FULL = "#"
_EMPTY = "-"
_MAX_BAR = 30
_MIN_BAR = 10


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """Redraws `label |#####-----| 50% 5,000/10,000 keys 1,200 keys/s ETA 0:04 extra`.

    `total` is what was counted before the work began; work that turned up since
    (done > total) keeps the bar at 100 % and says how much more there was.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str,
        total: int,
        unit: str,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.unit = unit
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.last_drawn: float | None = None
        self.width = 0  # of the last line drawn, to blank what a shorter one leaves

    def line(self, done: int, *, extra: str = "", final: bool = False) -> str:
        """The text of the bar for `done` units (no carriage return)."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        total = max(self.total, 1)
        fraction = min(done / total, 1.0) if self.total else (1.0 if final else 0.0)
        if final:
            eta = f"in {_duration(elapsed)}"
        elif rate > 0 and done < self.total:
            eta = f"ETA {_duration((self.total - done) / rate)}"
        else:
            eta = "ETA -"
        more = f" (+{done - self.total:,} new since the count)" if done > self.total else ""
        counts = f"{min(done, self.total):,}/{self.total:,} {self.unit}{more}"
        text = f"{fraction:.0%} {counts} {rate:,.0f} {self.unit}/s {eta}"
        if extra:
            text += f" {extra}"
        columns = shutil.get_terminal_size((80, 24)).columns
        size = max(_MIN_BAR, min(_MAX_BAR, columns - len(self.label) - len(text) - 5))
        filled = int(fraction * size)
        return f"{self.label} |{_FULL * filled}{_EMPTY * (size - filled)}| {text}"

    def update(self, done: int, *, extra: str = "", force: bool = False) -> None:
        now = self.clock()
        if not force and self.last_drawn is not None and now - self.last_drawn < self.interval:
            return
        self.last_drawn = now
        self._draw(self.line(done, extra=extra))

    def close(self, done: int, *, extra: str = "", complete: bool = True) -> None:
        """The last state, then a newline so what follows starts on its own line. A complete
        run that did less than counted (work removed meanwhile) ends at 100 % and says so."""
        if complete and done < self.total:
            gone = f"({self.total - done:,} counted {self.unit} gone since the count)"
            extra = f"{extra} {gone}" if extra else gone
            self.total = done
        self._draw(self.line(done, extra=extra, final=True))
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
        self.stream.flush()
        self.width = len(text)
