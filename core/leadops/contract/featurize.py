"""Rows to feature vectors (numpy): the one code path training and serving share.

Every feature is a float32; NaN means missing. `vector(spec, row)` equals `matrix(spec, [row])[0]`
(tests hold it to that), so a lead scored online is encoded exactly like its CSV row at training.
A column absent from a row is missing; a category never seen at fit time sets no indicator.

`matrix` is column-at-a-time numpy (fast for many rows); `vector` runs a plan compiled once per
spec (`compiled(spec)`), plain Python over one row, because numpy's per-call overhead dominates
when there is only one row to encode. When two specs encode the same row (an experiment's two
models), `RowCells` lets the second reuse what the first worked out: the normalized cells and
the parsed text, about half of a vector's time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leadops.contract.encoded import EncodedColumn
from leadops.contract.features import (
    TEXT_DERIVED,
    CategoricalColumn,
    ColumnSpec,
    FeatureSpec,
    NumericColumn,
    TextColumn,
    normalize,
    parse_number,
    text_derived,
    tokens,
)

FloatMatrix = npt.NDArray[np.float32]
_CHUNK = 1 << 16


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
TextParts = tuple[list[str], tuple[float, float, float, float, float, float]]


class RowCells:
    """One row's cells as every spec reads them, each worked out once: a cell normalized, a
    text cell's words and derived numbers. Specs differ in their categories and vocabularies,
    not in how a cell reads, so featurizers of two specs can share one of these."""

    __slots__ = ("_texts", "_values", "row")

    def __init__(self, row: Mapping[str, str]) -> None:
        self.row = row
        self._values: dict[str, str | None] = {}
        self._texts: dict[str, TextParts] = {}

    def value(self, column: str) -> str | None:
        """The column's cell, normalized (None: missing)."""
        values = self._values
        if column in values:
            return values[column]
        value = values[column] = normalize(self.row.get(column, ""))
        return value

    def text(self, column: str, value: str) -> TextParts:
        """The words and derived numbers of the column's text cell (`value`, normalized)."""
        parts = self._texts.get(column)
        if parts is None:
            parts = self._texts[column] = _text_parts(value)
        return parts


def _text_parts(value: str) -> TextParts:
    words = tokens(value)
    return words, text_derived(value, words=words)


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

    def vector(self, row: Mapping[str, str], cells: RowCells | None = None) -> FloatMatrix:
        """`row`'s feature vector, shape (n_features,): equal to matrix(spec, [row])[0].
        `cells`: the row's cells (`RowCells(row)`), to share with another spec's featurizer."""
        out = [0.0] * self.n_features
        get = row.get
        for step in self._steps:
            value = normalize(get(step.column, "")) if cells is None else cells.value(step.column)
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
                words, derived = (
                    _text_parts(value) if cells is None else cells.text(step.column, value)
                )
                out[start : start + len(TEXT_DERIVED)] = derived
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
    """Feature matrix from column-major cells (the trainer's layout); absent columns are empty.

    Each column's distinct cells are encoded once (the same functions `vector` calls per row;
    kept in the column's memo, so the training and hold-out parts share them) and copied to
    rows by the column's codes: the result is `vector` of every row, at numpy speed.
    """
    out = np.zeros((n_rows, len(spec.feature_names)), dtype=np.float32)
    empty = EncodedColumn([""], np.zeros(n_rows, dtype=np.int32))
    for col, start, width in spec.layout:
        cells = columns.get(col.column)
        encoded = empty if cells is None else EncodedColumn.of(cells)
        key = f"featurize:{col.model_dump_json()}"
        per_value = encoded.memo.get(key)
        if per_value is None:
            per_value = encoded.memo[key] = _per_value(col, encoded.normalized(normalize), width)
        block = out[:, start : start + width]
        for first in range(0, n_rows, _CHUNK):  # row blocks: bounded temporaries, local writes
            codes = encoded.codes[first : first + _CHUNK]
            block[first : first + len(codes)] = per_value[codes]
    return out


def _per_value(col: ColumnSpec, values: Sequence[str | None], width: int) -> FloatMatrix:
    """Each distinct (normalized) cell's features; computed in float64 and rounded to float32
    once, as vector() does."""
    per_value = np.zeros((len(values), width), dtype=np.float64)
    if isinstance(col, NumericColumn):
        per_value[:, 0] = [_number(v) for v in values]
    elif isinstance(col, CategoricalColumn):
        index = col.index
        missing_at = len(col.categories) if col.missing_indicator else -1
        for i, value in enumerate(values):
            at = missing_at if value is None else index.get(value.casefold(), -1)
            if at >= 0:
                per_value[i, at] = 1.0
    else:  # text; no text at all leaves its row zero: derived counts honestly zero
        vocab = col.index
        derived = len(TEXT_DERIVED)
        for i, value in enumerate(values):
            if value is None:
                continue
            words = tokens(value)
            per_value[i, :derived] = text_derived(value, words=words)
            per_value[i, [vocab[w] for w in set(words) if w in vocab]] = 1.0
    return per_value.astype(np.float32)


def _number(cell: str | None) -> float:
    number = None if cell is None else parse_number(cell)
    return np.nan if number is None else number
