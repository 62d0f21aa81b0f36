"""Reading an outcomes CSV (file or scorer URL) into columns, streaming and bounded.

Arrow's CSV reader (pyarrow, C++, multi-threaded) parses the bytes into string columns, which
are dictionary-encoded at once (`leadops.contract.encoded`): a million rows take seconds and
about the CSV's size in memory. Input Arrow refuses (ragged rows, bad UTF-8, an empty file,
more than ARROW_MAX_COLUMNS columns) is read again by the csv module, whose parser names the
line and the problem; both readers give the same cells.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from leadops.cliutil import UsageError
from leadops.contract.csvcells import unescape_cell
from leadops.contract.encoded import EncodedColumn

logger = logging.getLogger(__name__)

API_KEY_ENV: Final = "LEADOPS_API_KEY"
# ~370,000 outcome rows; training holds them in memory at about 20x the CSV size (bench/train).
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
ARROW_MAX_COLUMNS: Final = 4096  # wider files take the csv-module path
CHUNK: Final = 1 << 16
SNIFF: Final = 8192  # bytes checked for NULs: text files have none
INTERN_LIMIT: Final = 20_000  # distinct values per column shared; beyond that, free text


@dataclass(frozen=True)
class Table:
    """A CSV held column by column (what featurize.matrix_from_columns takes)."""

    header: list[str]
    columns: dict[str, Sequence[str]]  # EncodedColumn from read_table
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
            if response.status_code == 401:
                sent = "was refused" if api_key else "is not set"
                raise UsageError(
                    f"GET {where} answered HTTP 401: the API key from ${API_KEY_ENV} {sent} "
                    f"(the scorer's /ops key, sent as x-api-key)"
                )
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
    opener: Callable[[], Iterator[bytes]]
    if source.startswith(("http://", "https://")):
        where = public_source(source)
        # Held in memory (bounded by max_bytes) so the fallback parser can read it again.
        guard = _Guard(
            _url_chunks(source, api_key=api_key, timeout=timeout),
            max_bytes=max_bytes,
            what=f"input {where}",
        )
        body = guard.readall()
        opener = lambda: iter((body,))  # noqa: E731
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
        where = str(path)
        opener = lambda: _file_chunks(path)  # noqa: E731
    guard = _Guard(opener(), max_bytes=max_bytes, what=f"input {where}")
    parsed = _parse_arrow(io.BufferedReader(guard, CHUNK), where)
    if parsed is None:
        guard = _Guard(opener(), max_bytes=max_bytes, what=f"input {where}")
        text = io.TextIOWrapper(io.BufferedReader(guard), encoding="utf-8-sig", newline="")
        try:
            header, plain, n_rows = _parse(csv.reader(text), where)
        except UnicodeDecodeError as exc:
            raise UsageError(f"input {where} is not UTF-8 text ({exc.reason})") from exc
        columns: dict[str, Sequence[str]] = {
            name: EncodedColumn.of(cells) for name, cells in plain.items()
        }
    else:
        header, columns, n_rows = parsed
    return Table(
        header=header,
        columns=columns,
        n_rows=n_rows,
        digest="sha256:" + guard.sha256.hexdigest(),
        source=where,
    )


def _parse_arrow(
    stream: io.BufferedReader, where: str
) -> tuple[list[str], dict[str, Sequence[str]], int] | None:
    """The CSV via Arrow, header row included as data; None where Arrow refuses the input."""
    import pyarrow as pa  # noqa: PLC0415 -- only training reads CSVs
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.csv as pacsv  # noqa: PLC0415

    as_text = {f"f{i}": pa.string() for i in range(ARROW_MAX_COLUMNS)}
    try:
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 22),
            # Quoted fields may hold line breaks, as the csv module allows; every cell a string.
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=as_text, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_columns > ARROW_MAX_COLUMNS:
        return None
    first = 0
    rows = [table.column(i) for i in range(table.num_columns)]
    while first < table.num_rows and not any(str(col[first]).strip() for col in rows):
        first += 1  # leading rows of blank cells before the header, as _parse skips them
    if first == table.num_rows:
        raise UsageError(f"input {where} is empty")
    names = [str(col[first]).strip() for col in rows]
    _check_header(names, where)
    n_rows = table.num_rows - first - 1
    if n_rows == 0:
        raise UsageError(f"input {where} has a header but no data rows")
    columns: dict[str, Sequence[str]] = {}
    for name, col in zip(names, rows, strict=True):
        encoded = pc.dictionary_encode(col.slice(first + 1).combine_chunks())
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        columns[name] = _unescaped(encoded.dictionary.to_pylist(), codes)
    del table, rows, encoded
    # Arrow's allocator keeps freed pages for reuse; training needs them for the matrix.
    pa.default_memory_pool().release_unused()
    return names, columns, n_rows


def _unescaped(values: list[str], codes: npt.NDArray[np.int32]) -> EncodedColumn:
    """The export's formula-injection escape undone (leadops.contract.csvcells), per value."""
    plain = [unescape_cell(v) for v in values]
    if plain == values:
        return EncodedColumn(values, codes)
    index: dict[str, int] = {}
    remap = np.array([index.setdefault(v, len(index)) for v in plain], dtype=np.int32)
    return EncodedColumn(list(index), remap[codes])


def _check_header(names: list[str], where: str) -> None:
    for i, name in enumerate(names):
        if not name:
            raise UsageError(f"input {where}: column {i + 1} of the header has no name")
    # Linear in the number of columns (names.count() per name took 10 s for 30k columns).
    counts = collections.Counter(names)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise UsageError(f"input {where}: duplicate column name {duplicates[0]!r} in header")


def _parse(reader: Iterator[list[str]], where: str) -> tuple[list[str], dict[str, list[str]], int]:
    line = 0
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            raise UsageError(f"input {where} is empty")
        names = [cell.strip() for cell in header]
        _check_header(names, where)
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
