"""Reading an outcomes CSV (file or scorer URL) into columns, streaming and bounded.

Bad input is a `UsageError` with one line naming the problem: empty, header only, ragged rows,
binary or non-UTF-8 bytes, duplicate column names, or more bytes than the limit (checked
before reading a file, and while streaming a URL, so a 1 GB input never fills memory).
"""

from __future__ import annotations

import collections
import csv
import hashlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from leadops.cliutil import UsageError
from leadops.contract.csvcells import unescape_cell

logger = logging.getLogger(__name__)

API_KEY_ENV: Final = "LEADOPS_API_KEY"
# ~370,000 outcome rows; training holds them in memory at about 20x the CSV size (bench/train).
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
CHUNK: Final = 1 << 16
SNIFF: Final = 8192  # bytes checked for NULs: text files have none
INTERN_LIMIT: Final = 20_000  # distinct values per column shared; beyond that, free text


@dataclass(frozen=True)
class Table:
    """A CSV held column by column (what featurize.matrix_from_columns takes)."""

    header: list[str]
    columns: dict[str, list[str]]
    n_rows: int
    digest: str  # sha256: of the bytes read
    source: str  # path or URL without credentials or query


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class _Guard(io.RawIOBase):
    """A byte stream that hashes what passes, refuses NULs up front and stops at the limit."""

    def __init__(self, chunks: Iterator[bytes], *, max_bytes: int, what: str) -> None:
        self._chunks = chunks
        self._pending = b""
        self._seen = 0
        self._max = max_bytes
        self._what = what
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            if self._seen < SNIFF and b"\x00" in chunk[: SNIFF - self._seen]:
                raise UsageError(f"{self._what} looks binary (NUL bytes), not a CSV text file")
            self._seen += len(chunk)
            if self._seen > self._max:
                raise UsageError(
                    f"{self._what} is over the input limit of {_human(self._max)} "
                    "(--max-input-mb); refusing to read it"
                )
            self.sha256.update(chunk)
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def public_source(url: str) -> str:
    """A URL without user info, query or fragment: safe to log and to store in the artifact."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _url_chunks(url: str, *, api_key: str | None, timeout: float) -> Iterator[bytes]:
    import httpx  # noqa: PLC0415 -- only URL inputs need an HTTP client

    headers = {"x-api-key": api_key} if api_key else {}
    where = public_source(url)
    try:
        with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                raise UsageError(f"GET {where} answered HTTP {response.status_code}")
            yield from response.iter_bytes(CHUNK)
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot read {where}: {type(exc).__name__}: {exc}") from exc


def read_table(
    source: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    api_key: str | None = None,
    timeout: float = 60.0,
) -> Table:
    """Read a CSV from a path or an http(s) URL (sending `x-api-key` when given)."""
    if source.startswith(("http://", "https://")):
        chunks = _url_chunks(source, api_key=api_key, timeout=timeout)
        where = public_source(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise UsageError(f"input {source} does not exist") from exc
        if path.is_dir():
            raise UsageError(f"input {source} is a directory, not a CSV file")
        if size > max_bytes:
            raise UsageError(
                f"input {source} is {_human(size)}, over the input limit of {_human(max_bytes)} "
                "(--max-input-mb); refusing to read it"
            )
        if not os.access(path, os.R_OK):
            raise UsageError(f"input {source} is not readable")
        chunks = _file_chunks(path)
        where = str(path)
    guard = _Guard(chunks, max_bytes=max_bytes, what=f"input {where}")
    text = io.TextIOWrapper(io.BufferedReader(guard), encoding="utf-8-sig", newline="")
    try:
        header, columns, n_rows = _parse(csv.reader(text), where)
    except UnicodeDecodeError as exc:
        raise UsageError(f"input {where} is not UTF-8 text ({exc.reason})") from exc
    return Table(
        header=header,
        columns=columns,
        n_rows=n_rows,
        digest="sha256:" + guard.sha256.hexdigest(),
        source=where,
    )


def _parse(reader: Iterator[list[str]], where: str) -> tuple[list[str], dict[str, list[str]], int]:
    line = 0
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            raise UsageError(f"input {where} is empty")
        names = [cell.strip() for cell in header]
        for i, name in enumerate(names):
            if not name:
                raise UsageError(f"input {where}: column {i + 1} of the header has no name")
        # Linear in the number of columns (names.count() per name took 10 s for 30k columns).
        counts = collections.Counter(names)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise UsageError(f"input {where}: duplicate column name {duplicates[0]!r} in header")
        cells: list[list[str]] = [[] for _ in names]
        # One string object per repeated value: categorical columns shrink ~10x in memory.
        seen: list[dict[str, str]] = [{} for _ in names]
        n_rows = 0
        for row in reader:
            line = getattr(reader, "line_num", 0)
            if not row:
                continue  # a blank line
            if len(row) != len(names):
                raise UsageError(
                    f"input {where} line {line}: {len(row)} fields but the header has "
                    f"{len(names)} (ragged row)"
                )
            for column, known, raw in zip(cells, seen, row, strict=True):
                # The export's formula-injection escape, undone (leadops.contract.csvcells).
                cell = unescape_cell(raw)
                shared = known.setdefault(cell, cell) if len(known) < INTERN_LIMIT else cell
                column.append(shared)
            n_rows += 1
    except csv.Error as exc:
        raise UsageError(f"input {where} line {line + 1}: malformed CSV ({exc})") from exc
    if n_rows == 0:
        raise UsageError(f"input {where} has a header but no data rows")
    return names, dict(zip(names, cells, strict=True)), n_rows
