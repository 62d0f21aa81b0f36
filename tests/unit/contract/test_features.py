"""Role inference from data, encodings, and training/serving featurization equality."""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from leadops.contract.features import (
    CategoricalColumn,
    FeatureSpec,
    NumericColumn,
    TextColumn,
    fit_feature_spec,
    infer_timestamp_column,
)
from leadops.contract.featurize import matrix, matrix_from_columns, vector
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row


def _columns(n: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "ref": [str(uuid.UUID(int=int(rng.integers(0, 2**63)))) for _ in range(n)],
        "account_no": [str(100_000 + i) for i in range(n)],
        "when": [(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)],
        "region": [["north", "South", "south", "east", "Select", ""][i % 6] for i in range(n)],
        "visits": [str(int(x)) for x in rng.poisson(3, n)],
        "spend": [f"{x:.3f}" for x in rng.gamma(2.0, 50.0, n)],
        "always": ["yes"] * n,
        "blank": [""] * n,
        "note": [
            [f"just browsing {i}", f"send a quote for {i % 40} seats", f"budget ready by {i}"][
                i % 3
            ]
            for i in range(n)
        ],
    }


def test_roles_are_inferred_and_exclusions_reported() -> None:
    spec = fit_feature_spec(_columns(300))
    reasons = {e.column: e.reason for e in spec.excluded}
    assert reasons == {
        "ref": "identifier",
        "account_no": "identifier",
        "when": "timestamp",
        "always": "constant",
        "blank": "constant",
    }
    kinds = {c.column: c.kind for c in spec.columns}
    # A continuous measure is unique per row too, but it is a number with fractions, not a key.
    assert kinds == {
        "region": "categorical",
        "visits": "numeric",
        "spend": "numeric",
        "note": "text",
    }
    region = next(c for c in spec.columns if isinstance(c, CategoricalColumn))
    # Case-folded, and "Select"/"" are one missing indicator, not categories.
    assert region.categories == ["south", "east", "north"]
    assert region.missing_indicator
    text = next(c for c in spec.columns if isinstance(c, TextColumn))
    assert {"quote", "seats", "budget", "browsing"} <= set(text.vocabulary)


def test_distinct_integer_measure_is_not_an_identifier() -> None:
    rng = np.random.default_rng(8)
    seconds = rng.choice(np.arange(1, 50_000), size=150, replace=False)
    columns = {
        "seconds_on_site": [str(int(v)) for v in seconds],  # distinct, but a measure
        "row_no": [str(i + 1) for i in range(150)],  # 1..n: an id
        "order_no": [str(500_000 + int(v)) for v in rng.permutation(150) * 37],  # one width
    }
    reasons = {e.column: e.reason for e in fit_feature_spec(columns).excluded}
    assert reasons == {"row_no": "identifier", "order_no": "identifier"}


def test_label_and_requested_exclusions() -> None:
    spec = fit_feature_spec(_columns(50), label="visits", exclude={"spend"})
    reasons = {e.column: e.reason for e in spec.excluded}
    assert reasons["visits"] == "label"
    assert reasons["spend"] == "requested"
    assert "visits" not in spec.input_columns


def test_timestamp_column_detected() -> None:
    assert infer_timestamp_column(_columns(30)) == "when"
    assert infer_timestamp_column({"a": ["1", "2"], "b": ["x", "y"]}) is None


def test_junk_in_numeric_column_becomes_missing_and_is_counted() -> None:
    cells = [str(i % 17) for i in range(200)]
    cells[5] = "lots"
    cells[9] = "n/a"
    spec = fit_feature_spec({"visits": cells})
    (col,) = spec.columns
    assert isinstance(col, NumericColumn)
    assert col.non_numeric == 1  # "n/a" is a missing token, "lots" is junk
    x = matrix_from_columns(spec, {"visits": cells}, n_rows=200)
    assert math.isnan(x[5, 0])
    assert math.isnan(x[9, 0])
    assert x[6, 0] == 6.0


def test_unseen_categories_and_missing_columns_at_serving() -> None:
    spec = FeatureSpec(
        columns=[
            CategoricalColumn(column="c", categories=["a", "b"], missing_indicator=True),
            NumericColumn(column="n"),
            TextColumn(column="t", vocabulary=["demo"]),
        ]
    )
    assert spec.feature_names == [
        "c=a",
        "c=b",
        "c=(missing)",
        "n",
        "t:chars",
        "t:words",
        "t:intent_buy",
        "t:intent_not",
        "t:questions",
        "t:contact_mentions",
        "t:has=demo",
    ]
    unseen = vector(spec, {"c": "zzz", "n": "2.5", "t": "Book a DEMO? Call [PHONE]"})
    assert unseen[:3].tolist() == [0.0, 0.0, 0.0]
    assert unseen[3] == 2.5
    assert unseen[4:].tolist() == [25.0, 4.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    empty = vector(spec, {})
    assert empty[:3].tolist() == [0.0, 0.0, 1.0]
    assert math.isnan(empty[3])
    assert vector(spec, {"c": " B "})[1] == 1.0


def test_spec_round_trips_through_json() -> None:
    spec = fit_feature_spec(_columns(120))
    again = FeatureSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.feature_names == spec.feature_names


def _leads(n: int) -> list[Lead]:
    rng = np.random.default_rng(11)
    return [
        Lead(
            name=f"Person {i}",
            phone=["+44 20 7946 0958", "+49 30 901820", "", "555"][i % 4],
            email=["a@gmail.com", "b@acme.io", ""][i % 3],
            details=["need a quote asap for 20 seats", "just browsing, student", "demo please?"][
                i % 3
            ]
            + f" ref {i}",
            source=["web", "referral", "ads"][i % 3],
            tenant=["acme", "globex"][i % 2],
            received_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
            attributes={"company_size": float(rng.integers(1, 500)), "industry": "Retail"}
            if i % 5
            else {"company_size": 7.0},
        )
        for i in range(n)
    ]


def _redact(text: str) -> str:
    return text.replace("asap", "[REDACTED]")


def test_training_and_serving_featurize_identically() -> None:
    """Lead -> row -> vector (serving) equals CSV file -> columns -> matrix (training)."""
    leads = _leads(120)
    rows = [lead_to_row(lead, redact=_redact) for lead in leads]
    header = sorted({key for row in rows for key in row})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*header, "converted"])
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({**row, "converted": str(i % 2)})
    reader = csv.reader(io.StringIO(buffer.getvalue()))
    head = next(reader)
    table = list(reader)
    columns = {name: [line[j] for line in table] for j, name in enumerate(head)}
    spec = fit_feature_spec(columns, label="converted")
    assert {e.column: e.reason for e in spec.excluded}["received_at"] == "timestamp"
    from_csv = matrix_from_columns(spec, columns, n_rows=len(table))
    served = np.stack([vector(spec, lead_to_row(lead, redact=_redact)) for lead in leads])
    np.testing.assert_array_equal(served, from_csv)
    np.testing.assert_array_equal(matrix(spec, rows), from_csv)
    assert from_csv.dtype == np.float32
    assert from_csv.shape == (120, len(spec.feature_names))
