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
    start = 0
    empty = [""] * n_rows
    for col in spec.columns:
        cells = columns.get(col.column, empty)
        width = len(col.feature_names())
        block = out[:, start : start + width]
        if isinstance(col, NumericColumn):
            block[:, 0] = _numeric(cells)
        elif isinstance(col, CategoricalColumn):
            _categorical(col, cells, block)
        elif isinstance(col, TextColumn):
            _text(col, cells, block)
        start += width
    return out


def _numeric(cells: Sequence[str]) -> npt.NDArray[np.float64]:
    values = [None if (v := normalize(c)) is None else parse_number(v) for c in cells]
    return np.array([np.nan if x is None else x for x in values], dtype=np.float64)


def _categorical(col: CategoricalColumn, cells: Sequence[str], block: FloatMatrix) -> None:
    index = {value: i for i, value in enumerate(col.categories)}
    missing_at = len(col.categories) if col.missing_indicator else None
    for row, cell in enumerate(cells):
        value = normalize(cell)
        if value is None:
            if missing_at is not None:
                block[row, missing_at] = 1.0
            continue
        at = index.get(value.casefold())
        if at is not None:
            block[row, at] = 1.0


def _text(col: TextColumn, cells: Sequence[str], block: FloatMatrix) -> None:
    vocab = {word: len(TEXT_DERIVED) + i for i, word in enumerate(col.vocabulary)}
    for row, cell in enumerate(cells):
        value = normalize(cell)
        if value is None:
            # No text at all: the derived counts are honestly zero, the words absent.
            continue
        block[row, : len(TEXT_DERIVED)] = text_derived(value)
        for word in set(tokens(value)):
            at = vocab.get(word)
            if at is not None:
                block[row, at] = 1.0
