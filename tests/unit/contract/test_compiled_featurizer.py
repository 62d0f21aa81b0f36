"""The compiled per-spec featurizer (scoring) encodes rows exactly like `matrix` (training)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from leadops.contract import featurize
from leadops.contract.features import fit_feature_spec
from leadops.contract.rows import lead_to_row
from leadops.jobs import synth
from leadops.jobs.training.outcomes_csv import read_table


def _redact(text: str) -> str:
    return text.replace("@", " at ")


def _assert_same_as_reference(spec_rows: list[dict[str, str]], label: str) -> None:
    columns = {name: [row.get(name, "") for row in spec_rows] for name in spec_rows[0]}
    spec = fit_feature_spec(columns, label=label)
    reference = featurize.matrix(spec, spec_rows)
    fast = featurize.compiled(spec)
    got = np.stack([fast.vector(row) for row in spec_rows])
    assert got.dtype == np.float32
    # NaN compares equal to NaN here: missing must stay missing in the same places.
    np.testing.assert_array_equal(got, reference)
    assert np.count_nonzero(reference) > 0


def test_compiled_matches_reference_on_synthetic_leads() -> None:
    drawn = synth.generate(400, seed=3)
    rows = [lead_to_row(d.lead, redact=_redact) | {"converted": str(d.converted)} for d in drawn]
    # Rows the fit never saw: unseen categories, junk numbers, placeholders, absent columns.
    odd = dict(rows[0])
    odd |= {"source": "carrier-pigeon", "details": "Select", "tenant": " ACME "}
    odd.pop("industry", None)
    rows.append(odd)
    rows.append({"details": "price? quote?? buy now [REDACTED:EMAIL]", "converted": "1"})
    _assert_same_as_reference(rows, "converted")


def test_compiled_matches_reference_on_x_education(x_education_csv: Path) -> None:
    table = read_table(str(x_education_csv))
    rows = [{name: table.columns[name][i] for name in table.header} for i in range(table.n_rows)]
    _assert_same_as_reference(rows, "Converted")


def test_compiled_plan_is_built_once_per_spec_and_freed_with_it() -> None:
    rows = [{"a": str(i % 7), "b": ["x", "y", "z"][i % 3], "converted": "0"} for i in range(60)]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    spec = fit_feature_spec(columns, label="converted")
    first = featurize.compiled(spec)
    assert featurize.compiled(spec) is first
    np.testing.assert_array_equal(featurize.vector(spec, rows[5]), first.vector(rows[5]))
    # An equal but distinct spec (a reloaded model) gets its own plan, not a stale one.
    twin = spec.model_copy(deep=True)
    assert featurize.compiled(twin) is not first
    key = id(twin)
    del twin
    gc.collect()
    assert key not in featurize._COMPILED


def test_two_specs_sharing_a_rows_cells_encode_it_as_each_would_alone() -> None:
    # Two specs fitted on different leads: other categories, other words (an experiment's
    # two models). The second featurizer reuses the cells the first one worked out.
    drawn = synth.generate(600, seed=5)
    rows = [lead_to_row(d.lead, redact=_redact) | {"converted": str(d.converted)} for d in drawn]
    rows.append({"details": "Select", "source": " N/A "})  # placeholders: missing for both
    rows.append({"details": "price? quote?? buy now [REDACTED:EMAIL]", "converted": "1"})
    specs = []
    for part in (rows[:300], rows[300:600]):
        columns = {name: [row.get(name, "") for row in part] for name in part[0]}
        specs.append(fit_feature_spec(columns, label="converted"))
    first, second = specs
    assert first != second
    shared_first, shared_second = [], []
    for row in rows:
        cells = featurize.RowCells(row)
        shared_first.append(featurize.compiled(first).vector(row, cells))
        shared_second.append(featurize.compiled(second).vector(row, cells))
    np.testing.assert_array_equal(np.stack(shared_first), featurize.matrix(first, rows))
    np.testing.assert_array_equal(np.stack(shared_second), featurize.matrix(second, rows))
