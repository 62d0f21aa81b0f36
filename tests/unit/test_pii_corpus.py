"""The detector against the labeled corpus: the per-type recall bar and overall precision."""

from __future__ import annotations

import pytest
from bench import pii_scoring

from leadops.pii import Detector

RECALL_BAR = {"EMAIL": 0.99, "CARD": 0.99, "SSN": 0.99, "IBAN": 0.99, "PHONE": 0.97}
PRECISION_BAR = 0.98


@pytest.fixture(scope="module")
def scores() -> pii_scoring.Scores:
    records = pii_scoring.load()
    detectors: dict[str, Detector] = {}

    def predict(record: pii_scoring.Record) -> list[pii_scoring.Span]:
        detector = detectors.setdefault(record.region, Detector(region=record.region))
        return [pii_scoring.Span(f.type.value, f.start, f.end) for f in detector.find(record.text)]

    return pii_scoring.score(records, predict)


def test_corpus_has_every_type_and_hard_negatives() -> None:
    records = pii_scoring.load()
    kinds = {span.type for record in records for span in record.spans}
    assert kinds == set(pii_scoring.TYPES)
    hard_negatives = [r for r in records if r.id.startswith("hard-") and not r.spans]
    assert len(hard_negatives) >= 30


@pytest.mark.parametrize("kind", sorted(RECALL_BAR))
def test_recall_per_type_meets_the_bar(scores: pii_scoring.Scores, kind: str) -> None:
    result = scores.by_type[kind]
    assert result.gold >= 200
    missed = [miss for miss in scores.misses if miss[1].type == kind]
    assert result.recall >= RECALL_BAR[kind], f"{kind} recall {result.recall:.4f}; missed: {missed}"


def test_overall_precision_meets_the_bar(scores: pii_scoring.Scores) -> None:
    assert scores.precision >= PRECISION_BAR, f"false alarms: {scores.false_alarms}"


def test_hard_cases_are_all_right() -> None:
    """Each hand-written case is a deliberate rule: every one must hold, not just on average."""
    records = [r for r in pii_scoring.load() if r.id.startswith("hard-")]

    def predict(record: pii_scoring.Record) -> list[pii_scoring.Span]:
        found = Detector(region=record.region).find(record.text)
        return [pii_scoring.Span(f.type.value, f.start, f.end) for f in found]

    result = pii_scoring.score(records, predict)
    assert result.misses == []
    assert result.false_alarms == []
