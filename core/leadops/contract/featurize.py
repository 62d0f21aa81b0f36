"""Rows to feature vectors (numpy): the one code path training and serving share.

Every feature is a float32; NaN means missing. `vector(spec, row)` is literally
`matrix(spec, [row])[0]`, so a lead scored online is encoded exactly like its CSV row at training.
A column absent from a row is missing; a category never seen at fit time sets no indicator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    out: FloatMatrix = matrix(spec, [row])[0]
    return out


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
