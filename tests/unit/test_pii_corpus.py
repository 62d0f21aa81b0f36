"""The detector against the labeled corpora: the per-type recall bar and overall precision.

Each bar holds on the in-sample corpus (the rules were tuned on it) and on the held-out
one (same generator, another seed and locale mix, never looked at while tuning).
"""

from __future__ import annotations

import pytest
from bench import pii_scoring

from leadops.pii import Detector

RECALL_BAR = {"EMAIL": 0.99, "CARD": 0.99, "SSN": 0.99, "IBAN": 0.99, "PHONE": 0.97}
PRECISION_BAR = 0.98


# A deployment configures several regions (LEADOPS_PII_REGIONS): the bars hold with the
# record's own region first and these after it, too.
MORE_REGIONS = ("US", "GB", "IN")


@pytest.fixture(
    scope="module",
    params=[
        (pii_scoring.CORPUS, False),
        (pii_scoring.HOLDOUT, False),
        (pii_scoring.CORPUS, True),
        (pii_scoring.HOLDOUT, True),
    ],
    ids=["in-sample", "held-out", "in-sample-US,GB,IN", "held-out-US,GB,IN"],
)
def scores(request: pytest.FixtureRequest) -> pii_scoring.Scores:
    """Scores on the corpus the rules were tuned on, and on one they never saw."""
    corpus, more = request.param
    records = pii_scoring.load(corpus)
    detectors: dict[str, Detector] = {}

    def predict(record: pii_scoring.Record) -> list[pii_scoring.Span]:
        regions = [record.region, *MORE_REGIONS] if more else [record.region]
        detector = detectors.setdefault(record.region, Detector(regions=regions))
        return [pii_scoring.Span(f.type.value, f.start, f.end) for f in detector.find(record.text)]

    return pii_scoring.score(records, predict)


def test_held_out_corpus_shares_no_locale_or_message_with_the_tuning_corpus() -> None:
    tuning, held_out = pii_scoring.load(), pii_scoring.load(pii_scoring.HOLDOUT)
    assert {r.text for r in tuning}.isdisjoint(r.text for r in held_out)

    def locale(record: pii_scoring.Record) -> str:
        return record.id.rsplit("-", 1)[0]

    assert {locale(r) for r in tuning}.isdisjoint(locale(r) for r in held_out)
    assert {span.type for r in held_out for span in r.spans} == set(pii_scoring.TYPES)


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
