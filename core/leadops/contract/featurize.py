"""Rows to feature vectors (numpy): the one code path training and serving share.

Every feature is a float32; NaN means missing. `vector(spec, row)` equals `matrix(spec, [row])[0]`
(tests hold it to that), so a lead scored online is encoded exactly like its CSV row at training.
A column absent from a row is missing; a category never seen at fit time sets no indicator.

`matrix` is column-at-a-time numpy (fast for many rows); `vector` runs a plan compiled once per
spec (`compiled(spec)`), plain Python over one row, because numpy's per-call overhead dominates
when there is only one row to encode.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leadops.contract.features import (
    TEXT_DERIVED,
    CategoricalColumn,
    FeatureSpec,
    NumericColumn,
    TextColumn,
    normalize,
    parse_number,
    text_derived,
    tokens,
)

FloatMatrix = npt.NDArray[np.float32]


def vector(spec: FeatureSpec, row: Mapping[str, str]) -> FloatMatrix:
    """One row's feature vector, shape (n_features,)."""
    return compiled(spec).vector(row)


@dataclass(frozen=True, slots=True)
class _Numeric:
    column: str
    at: int


@dataclass(frozen=True, slots=True)
class _Categorical:
    column: str
    start: int
    index: dict[str, int]
    missing_at: int  # -1: no missing indicator


@dataclass(frozen=True, slots=True)
class _Text:
    column: str
    start: int
    index: dict[str, int]  # word -> offset within the column's block


_Step = _Numeric | _Categorical | _Text


class Featurizer:
    """A spec compiled into one flat list of steps: one row in, its feature vector out."""

    __slots__ = ("_steps", "n_features")

    def __init__(self, spec: FeatureSpec) -> None:
        steps: list[_Step] = []
        for col, start, _width in spec.layout:
            if isinstance(col, NumericColumn):
                steps.append(_Numeric(col.column, start))
            elif isinstance(col, CategoricalColumn):
                missing_at = len(col.categories) if col.missing_indicator else -1
                steps.append(_Categorical(col.column, start, dict(col.index), missing_at))
            elif isinstance(col, TextColumn):
                steps.append(_Text(col.column, start, dict(col.index)))
        self._steps = tuple(steps)
        self.n_features = len(spec.feature_names)

    def vector(self, row: Mapping[str, str]) -> FloatMatrix:
        """`row`'s feature vector, shape (n_features,): equal to matrix(spec, [row])[0]."""
        out = [0.0] * self.n_features
        get = row.get
        for step in self._steps:
            value = normalize(get(step.column, ""))
            if type(step) is _Numeric:
                number = None if value is None else parse_number(value)
                out[step.at] = np.nan if number is None else number
            elif type(step) is _Categorical:
                at = step.missing_at if value is None else step.index.get(value.casefold(), -1)
                if at >= 0:
                    out[step.start + at] = 1.0
            elif value is not None:  # text; no text at all sets nothing
                assert type(step) is _Text
                start = step.start
                words = tokens(value)
                out[start : start + len(TEXT_DERIVED)] = text_derived(value, words=words)
                index = step.index
                for word in words:
                    offset = index.get(word)
                    if offset is not None:
                        out[start + offset] = 1.0
        # float64 -> float32 rounds exactly as matrix()'s assignment into a float32 array does.
        return np.array(out, dtype=np.float32)


# One compiled plan per live spec object; weak keys so a replaced model's spec can be freed.
_COMPILED: dict[int, tuple[weakref.ref[FeatureSpec], Featurizer]] = {}
_COMPILE_LOCK = threading.Lock()


def compiled(spec: FeatureSpec) -> Featurizer:
    """The spec's compiled featurizer, built on first use and reused while the spec lives."""
    entry = _COMPILED.get(id(spec))
    if entry is not None and entry[0]() is spec:
        return entry[1]
    featurizer = Featurizer(spec)
    key = id(spec)
    with _COMPILE_LOCK:
        _COMPILED[key] = (weakref.ref(spec, lambda _ref: _COMPILED.pop(key, None)), featurizer)
    return featurizer


def matrix(spec: FeatureSpec, rows: Sequence[Mapping[str, str]]) -> FloatMatrix:
    """Feature matrix for rows (dicts of column -> cell), shape (len(rows), n_features)."""
    columns = {name: [row.get(name, "") for row in rows] for name in spec.input_columns}
    return matrix_from_columns(spec, columns, n_rows=len(rows))


def matrix_from_columns(
    spec: FeatureSpec, columns: Mapping[str, Sequence[str]], *, n_rows: int
) -> FloatMatrix:
    """Feature matrix from column-major cells (the trainer's layout); absent columns are empty."""
    out = np.zeros((n_rows, len(spec.feature_names)), dtype=np.float32)
    empty = [""] * n_rows
    for col, start, width in spec.layout:
        cells = columns.get(col.column, empty)
        block = out[:, start : start + width]
        if isinstance(col, NumericColumn):
            block[:, 0] = _numeric(cells)
        elif isinstance(col, CategoricalColumn):
            _categorical(col, cells, block)
        elif isinstance(col, TextColumn):
            _text(col, cells, block)
    return out


def _numeric(cells: Sequence[str]) -> npt.NDArray[np.float64]:
    # Work per distinct cell: exports repeat values, and this is the hot loop at training.
    value = {raw: _number(raw) for raw in set(cells)}
    return np.fromiter((value[c] for c in cells), dtype=np.float64, count=len(cells))


def _number(raw: str) -> float:
    cell = normalize(raw)
    number = None if cell is None else parse_number(cell)
    return np.nan if number is None else number


def _categorical(col: CategoricalColumn, cells: Sequence[str], block: FloatMatrix) -> None:
    index = col.index
    missing_at = len(col.categories) if col.missing_indicator else -1
    code: dict[str, int] = {}
    for raw in set(cells):
        value = normalize(raw)
        code[raw] = missing_at if value is None else index.get(value.casefold(), -1)
    codes = np.fromiter((code[c] for c in cells), dtype=np.int64, count=len(cells))
    rows = np.flatnonzero(codes >= 0)
    block[rows, codes[rows]] = 1.0


def _text(col: TextColumn, cells: Sequence[str], block: FloatMatrix) -> None:
    vocab = col.index
    encoded: dict[str, tuple[tuple[float, ...], list[int]] | None] = {}
    for row, raw in enumerate(cells):
        if raw not in encoded:
            value = normalize(raw)
            # No text at all: the derived counts are honestly zero, the words absent.
            encoded[raw] = None if value is None else _encode_text(value, vocab)
        found = encoded[raw]
        if found is not None:
            derived, at = found
            block[row, : len(TEXT_DERIVED)] = derived
            block[row, at] = 1.0


def _encode_text(value: str, vocab: dict[str, int]) -> tuple[tuple[float, ...], list[int]]:
    words = tokens(value)
    at = sorted({vocab[w] for w in words if w in vocab})
    return text_derived(value, words=words), at
