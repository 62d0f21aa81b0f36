"""The other variants' scores of a lead (its shadow scores), computed with its record's batch.

While an experiment runs, every variant's model scores every lead, so the variants' models are
compared on the same leads (paired). The answer needs only the lead's own variant's score; the
others are needed only in the stored record. So the request scores the lead with its own
variant's model and leaves a `Pending` with the record; the record writer (writer.py) completes
a whole batch before writing it: per other model, one ONNX Runtime call over the batch's
feature vectors (ServingModel.score_vectors). Inside a request, a second model's trees are
out of the CPU caches on every lead (bench.experiment_cost); a batch pays that once. The
scores are the same either way: the same margins and sigmoid, bit for bit.

A model that raises leaves its variants without a shadow score in that batch's records (logged
once per model); it never fails the batch. When the serving model did not answer a lead (the
lead's variant has a model of its own), its score here also feeds the serving model's drift and
expected-AUC windows, as an answered lead does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from leadops.contract import featurize
from leadops.scorer import store
from leadops.scorer.model import ServingModel
from leadops.scorer.trees import F32

logger = logging.getLogger(__name__)


# Not frozen: one is made for every lead of an experiment, and a frozen dataclass sets each
# field through object.__setattr__.
@dataclass(slots=True)
class Pending:
    """What a lead's record still needs: the scores of the experiment's other models."""

    row: dict[str, str]
    served: ServingModel  # the model that answered the lead
    vector: F32  # the lead's features under `served`'s spec (reused by a model with the same)
    # The row's cells as `served`'s featurizer read them, when another model's spec differs:
    # featurizing it again then reuses the normalizing and text parsing (featurize.RowCells).
    cells: featurize.RowCells | None
    # Each other model, with the record fields of the variants it serves (one score for all).
    others: tuple[tuple[ServingModel, tuple[str, ...]], ...]
    serving: ServingModel  # whose drift and estimate windows take the lead if it is among others


def complete(writes: Sequence[store.LeadWrite]) -> None:
    """Add the pending shadow scores to the records of `writes`, one model call per model.
    (`LeadWrite.shadow` stays set: the writer drops it from a record it keeps for later.)"""
    by_model: dict[int, tuple[ServingModel, list[tuple[store.LeadWrite, Pending, tuple[str, ...]]]]]
    by_model = {}
    for write in writes:
        pending = write.shadow
        if pending is None:
            continue
        for model, fields in pending.others:
            by_model.setdefault(id(model), (model, []))[1].append((write, pending, fields))
    for model, leads in by_model.values():
        _score(model, leads)


def _score(
    model: ServingModel, leads: list[tuple[store.LeadWrite, Pending, tuple[str, ...]]]
) -> None:
    try:
        vectors = np.stack(list(_vectors(model, (pending for _, pending, _ in leads))))
        scores = model.score_vectors(vectors)
    except Exception:
        if model.version not in _failures_logged:  # once per model, not once per batch
            _failures_logged.add(model.version)
            logger.exception("Shadow scoring failed with model version %d", model.version)
        return
    for (write, pending, fields), vector, score in zip(leads, vectors, scores, strict=True):
        value = float(score)
        write.record.update(dict.fromkeys(fields, repr(value)))
        if model is pending.serving:
            model.drift.add(vector)
            model.estimate.add(value)


def _vectors(model: ServingModel, pendings: Iterable[Pending]) -> Iterable[F32]:
    """Each lead's features under `model`'s spec: the served model's vector when the two specs
    are equal (a challenger trained on the same leads with other settings), featurized again
    otherwise (one trained on other leads learns other categories and words)."""
    for pending in pendings:
        if same_features(pending.served, model):
            yield pending.vector
        else:
            yield model.featurizer.vector(pending.row, pending.cells)


def needs_cells(served: ServingModel, others: Iterable[ServingModel]) -> bool:
    """Whether a lead `served` scored is featurized again for one of `others` (another spec):
    then the request keeps its row's cells for the batch (Pending.cells)."""
    return not all(same_features(served, other) for other in others)


def same_features(a: ServingModel, b: ServingModel) -> bool:
    """Whether two models encode a lead alike (equal feature specs). Compared once per pair of
    artifacts: a spec comparison walks every category and word."""
    key = (a.artifact.digest, b.artifact.digest)
    same = _same_features.get(key)
    if same is None:
        same = _same_features[key] = a is b or a.spec == b.spec
    return same


# Artifact digest pairs -> equal specs; a few pairs per experiment, never many.
_same_features: dict[tuple[str, str], bool] = {}
_failures_logged: set[int] = set()
