"""Encoded columns give role inference and the matrix exactly what plain cells give."""

from __future__ import annotations

import random

import numpy as np

from leadops.contract.encoded import EncodedColumn
from leadops.contract.features import _Profile, fit_feature_spec
from leadops.contract.featurize import matrix_from_columns, vector

VALUES = ["a", " a", "NA", "b", "c ", "x", "", "-- select --", "3.5", " 7", "buy now please", "?"]


def _cells(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VALUES) for _ in range(n)]


def test_profile_of_a_row_selection_matches_plain_cells_in_order_and_counts() -> None:
    cells = _cells(5_000, 1)
    rows = np.array(sorted(random.Random(2).sample(range(5_000), 3_000), reverse=True))
    encoded = EncodedColumn.of(cells).take(rows)
    plain = [cells[i] for i in rows]
    ours, theirs = _Profile.of(encoded), _Profile.of(plain)
    assert list(ours.present.items()) == list(theirs.present.items())
    assert (ours.n_present, ours.n_missing) == (theirs.n_present, theirs.n_missing)
    assert list(encoded) == plain
    assert encoded[:3] == plain[:3]


def test_spec_and_matrix_from_encoded_columns_equal_plain_cells_and_serving() -> None:
    plain = {
        "kind": _cells(2_000, 3),
        "amount": [random.Random(i).choice(["1.5", "2", "", "junk", "1e3"]) for i in range(2_000)],
        "note": [f"please send a quote for {i % 37} seats" for i in range(2_000)],
    }
    encoded = {name: EncodedColumn.of(cells) for name, cells in plain.items()}
    spec = fit_feature_spec(plain)
    assert fit_feature_spec(encoded) == spec
    ours = matrix_from_columns(spec, encoded, n_rows=2_000)
    # The serving path, one row at a time.
    rows = [{name: cells[i] for name, cells in plain.items()} for i in range(2_000)]
    np.testing.assert_array_equal(ours, np.stack([vector(spec, row) for row in rows]))
