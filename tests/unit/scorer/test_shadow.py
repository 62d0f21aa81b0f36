"""Shadow scores computed with a record's batch (leadops.scorer.shadow): the same scores each
model answers a lead with, one model call per batch, the serving model's windows fed, a
failing model costing only its own fields, and the write path adding them before storing."""

from __future__ import annotations

import asyncio
import logging
import random

import numpy as np
import numpy.typing as npt
import pytest

from leadops.contract import featurize
from leadops.contract.rows import lead_to_row
from leadops.scorer import metrics, shadow, store, trees, writer
from leadops.scorer.model import ServingModel, load_serving_model
from leadops.scorer.settings import Durability
from tests.fixtures.artifacts import Built, synthetic_lead


@pytest.fixture(scope="module")
def models(good_model: Built, other_model: Built) -> tuple[ServingModel, ServingModel]:
    """The serving model and a challenger trained on other leads (another feature spec)."""
    return load_serving_model(good_model.path), load_serving_model(other_model.path)


def _rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    return [lead_to_row(synthetic_lead(rng)[0], redact=lambda text: text) for _ in range(n)]


def _write(i: int, row: dict[str, str], pending: shadow.Pending | None) -> store.LeadWrite:
    return store.LeadWrite(
        lead_id=f"{i:032x}",
        record=dict(row),
        columns=list(row),
        memory=store.memory_key("t", f"{i:032x}"),
        message=None,
        shadow=pending,
    )


def _pending(
    row: dict[str, str], served: ServingModel, other: ServingModel, serving: ServingModel
) -> shadow.Pending:
    # As a request keeps them: the row's cells, for the other model's featurizer to reuse.
    cells = featurize.RowCells(row) if shadow.needs_cells(served, [other]) else None
    return shadow.Pending(
        row=row,
        served=served,
        vector=served.featurizer.vector(row, cells),
        cells=cells,
        others=((other, ("shadow_a", "shadow_b")),),
        serving=serving,
    )


def test_batched_shadow_scores_equal_each_models_own_answer(
    models: tuple[ServingModel, ServingModel],
) -> None:
    serving, challenger = models
    assert serving.spec != challenger.spec  # so the challenger featurizes each lead itself
    rows = _rows(40)
    # Half the leads answered by the serving model, half by the challenger (the other arm).
    writes = [
        _write(i, row, _pending(row, serving, challenger, serving))
        if i % 2
        else _write(i, row, _pending(row, challenger, serving, serving))
        for i, row in enumerate(rows)
    ]
    seen = serving.drift.seen

    shadow.complete(writes)

    for i, (write, row) in enumerate(zip(writes, rows, strict=True)):
        other = challenger if i % 2 else serving
        expected = repr(other.score_row(row)[0])
        assert write.record["shadow_a"] == write.record["shadow_b"] == expected
    # The serving model took the 20 leads it did not answer into its drift window.
    assert serving.drift.seen - seen == 20


def test_records_without_pending_scores_are_left_as_they_are(
    models: tuple[ServingModel, ServingModel],
) -> None:
    rows = _rows(3)
    writes = [_write(i, row, None) for i, row in enumerate(rows)]
    shadow.complete(writes)
    assert [write.record for write in writes] == rows


def test_a_failing_model_leaves_only_its_own_fields_empty_and_is_logged_once(
    models: tuple[ServingModel, ServingModel],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serving, challenger = models
    honest = trees.TreeEnsemble.predict_batch

    def raising_for_challenger(
        self: trees.TreeEnsemble, rows: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        if self is challenger.ensemble:
            raise RuntimeError("broken trees")
        return honest(self, rows)

    monkeypatch.setattr(trees.TreeEnsemble, "predict_batch", raising_for_challenger)
    rows = _rows(6)
    # Leads 0-2 wait for the challenger's score (it raises), 3-5 for the serving model's.
    writes = [
        _write(i, row, _pending(row, serving, challenger, serving))
        for i, row in enumerate(rows[:3])
    ]
    writes += [
        _write(i + 3, row, _pending(row, challenger, serving, serving))
        for i, row in enumerate(rows[3:])
    ]
    with caplog.at_level(logging.ERROR, logger="leadops.scorer.shadow"):
        shadow.complete(writes)
        shadow.complete([_write(9, rows[0], _pending(rows[0], serving, challenger, serving))])

    assert [("shadow_a" in write.record) for write in writes] == [False] * 3 + [True] * 3
    failures = [r for r in caplog.records if "Shadow scoring failed" in r.getMessage()]
    assert len(failures) == 1  # once per model, not once per batch


@pytest.mark.parametrize("durability", [Durability.BEST_EFFORT, Durability.ACKNOWLEDGED])
def test_the_record_writer_stores_records_with_their_shadow_scores(
    models: tuple[ServingModel, ServingModel], durability: Durability
) -> None:
    serving, challenger = models
    rows = _rows(writer.MAX_BATCH + 3)  # queued together: written (and scored) in two chunks

    async def run() -> store.MemoryStore:
        lead_store = store.MemoryStore()
        w = writer.RecordWriter(
            lead_store, m=metrics.Metrics(), capacity=1000, durability=durability
        )
        await w.start()
        for i, row in enumerate(rows):
            w.submit(_write(i, row, _pending(row, serving, challenger, serving)))
        await w.flushed(f"{len(rows) - 1:032x}")
        assert w.shadow_seconds > 0
        await w.stop()
        return lead_store

    lead_store = asyncio.run(run())
    for i, row in enumerate(rows):
        record = lead_store.records[store.lead_key(f"{i:032x}")]
        assert record["shadow_b"] == repr(challenger.score_row(row)[0])
