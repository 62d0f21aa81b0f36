"""The labeled PII corpus and how a detector is scored on it (shared by the test and the benchmark).

A gold span counts as found when a prediction of the same type overlaps it; a
prediction counts as correct when it overlaps a gold span of its type. Overlap,
not exact boundaries, because what matters for privacy is that the PII is gone
and the detectors compared here draw boundaries slightly differently (extensions,
brackets around a number).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii_corpus.jsonl"
TYPES = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "IP")


@dataclasses.dataclass(frozen=True)
class Span:
    type: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class Record:
    id: str
    text: str
    region: str
    spans: tuple[Span, ...]


@dataclasses.dataclass
class TypeScore:
    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclasses.dataclass
class Scores:
    by_type: dict[str, TypeScore]
    misses: list[tuple[str, Span]]
    false_alarms: list[tuple[str, Span]]

    @property
    def precision(self) -> float:
        predicted = sum(s.predicted for s in self.by_type.values())
        correct = sum(s.correct for s in self.by_type.values())
        return correct / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        gold = sum(s.gold for s in self.by_type.values())
        found = sum(s.found for s in self.by_type.values())
        return found / gold if gold else 1.0


def load(path: Path = CORPUS) -> list[Record]:
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            spans = tuple(Span(s["type"], s["start"], s["end"]) for s in raw["spans"])
            records.append(Record(raw["id"], raw["text"], raw["region"], spans))
    return records


def _overlaps(a: Span, b: Span) -> bool:
    return a.type == b.type and a.start < b.end and b.start < a.end


def score(records: Iterable[Record], predict: Callable[[Record], list[Span]]) -> Scores:
    """Score `predict` (record -> predicted spans) against the gold spans, per type."""
    by_type = {kind: TypeScore() for kind in TYPES}
    misses: list[tuple[str, Span]] = []
    false_alarms: list[tuple[str, Span]] = []
    for record in records:
        predicted = predict(record)
        for gold in record.spans:
            by_type[gold.type].gold += 1
            if any(_overlaps(gold, p) for p in predicted):
                by_type[gold.type].found += 1
            else:
                misses.append((record.id, gold))
        for prediction in predicted:
            by_type[prediction.type].predicted += 1
            if any(_overlaps(prediction, g) for g in record.spans):
                by_type[prediction.type].correct += 1
            else:
                false_alarms.append((record.id, prediction))
    return Scores(by_type, misses, false_alarms)
