"""A dictionary-encoded column of CSV cells: its distinct values once, and one int32 code per row.

Outcome exports repeat values (categories, flags, rounded amounts), so training works per
distinct value (normalise, parse, tokenise: the same functions serving calls per row) and
spreads the results to rows with numpy indexing. A million rows of 15 columns are 60 MB of
codes instead of 15 million Python string references.

`EncodedColumn` is a `Sequence[str]`, so code written for plain lists of cells (the experiment
records, tests) reads it unchanged; the hot paths use `values`, `codes` and `value_counts()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.int32]


class EncodedColumn(Sequence[str]):
    """Cells as `values[codes[i]]`; `values` holds each distinct cell once."""

    __slots__ = ("_memo", "codes", "values")

    def __init__(
        self, values: list[str], codes: Codes, *, memo: dict[str, Any] | None = None
    ) -> None:
        self.values = values
        self.codes = codes
        # Per-value results shared by every take() of this column (the dictionary is shared).
        self._memo = {} if memo is None else memo

    @classmethod
    def of(cls, cells: Sequence[str]) -> EncodedColumn:
        """Encode plain cells (one Python pass; the CSV reader encodes in Arrow instead)."""
        if isinstance(cells, EncodedColumn):
            return cells
        index: dict[str, int] = {}
        codes = np.fromiter(
            (index.setdefault(c, len(index)) for c in cells), dtype=np.int32, count=len(cells)
        )
        return cls(list(index), codes)

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self.values[c] for c in self.codes[i].tolist()]
        return self.values[int(self.codes[i])]

    def __iter__(self) -> Iterator[str]:
        values = self.values
        return (values[c] for c in self.codes.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def take(self, rows: npt.NDArray[np.int64]) -> EncodedColumn:
        """The cells of `rows`, in that order (the dictionary is shared, not copied)."""
        return EncodedColumn(self.values, self.codes[rows], memo=self._memo)

    @property
    def memo(self) -> dict[str, Any]:
        """Per-value results any reader of this column's rows may keep (keys name the owner)."""
        return self._memo

    def normalized(self, normalize: Callable[[str], str | None]) -> list[str | None]:
        """`normalize` of each distinct value, computed once per dictionary."""
        key = f"normalized:{normalize.__module__}.{normalize.__qualname__}"
        if key not in self._memo:
            self._memo[key] = [normalize(v) for v in self.values]
        out: list[str | None] = self._memo[key]
        return out

    def normalized_counts(
        self, normalize: Callable[[str], str | None]
    ) -> tuple[dict[str, int], int]:
        """Rows per normalized present value (first seen first), and the missing rows."""
        counts = np.bincount(self.codes, minlength=len(self.values))
        normalized = self.normalized(normalize)
        identity = self._memo.get("normalized:identity")
        if identity is None:  # every value already normalized, none missing: the usual case
            identity = self._memo["normalized:identity"] = normalized == self.values
        # In order of first appearance among these rows, as Counter(cells) would list them.
        distinct, first = np.unique(self.codes, return_index=True)
        seen = distinct[np.argsort(first, kind="stable")].tolist()
        if identity:
            return dict(zip([self.values[i] for i in seen], counts[seen].tolist(), strict=True)), 0
        present: dict[str, int] = {}
        missing = 0
        for i, count in zip(seen, counts[seen].tolist(), strict=True):
            value = normalized[i]
            if value is None:
                missing += count
            else:
                present[value] = present.get(value, 0) + count
        return present, missing

    def value_counts(self) -> dict[str, int]:
        """Each distinct cell that occurs, with its number of rows."""
        counts = np.bincount(self.codes, minlength=len(self.values)).tolist()
        return {v: n for v, n in zip(self.values, counts, strict=True) if n}

    def map(self, fn: Callable[[str], Any], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """`fn` of every row's cell, called once per distinct cell."""
        per_value = np.array([fn(v) for v in self.values], dtype=dtype)
        return per_value[self.codes]
