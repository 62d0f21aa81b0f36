"""The model card: what the model uses, what it is for, where it falls short (`/ops/model-card`).

Pure (pydantic only): built by the trainer, served by the scorer, read by the operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from leadops.contract.features import ExcludedColumn, FeatureSpec

INTENDED_USE = (
    "Rank inbound leads by their chance to convert so people follow up on the likeliest first. "
    "Scores are the model's conversion probabilities for leads like those in the training "
    "window; they are not decisions about a person and must not be used to deny service."
)
# Segments smaller than this get no AUC: too few rows to say anything.
MIN_SEGMENT_ROWS = 30


class FeatureNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str
    importance: float = Field(description="share of the model's total gain")


class SegmentMetrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: str
    n: int
    positive_rate: float
    auc: float | None = Field(description="hold-out AUC; None if too few rows or one class")


class Fairness(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    segment_column: str | None = None
    segments: list[SegmentMetrics] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class LeakageSuspect(BaseModel):
    """A column that looks too good: maybe known only after the outcome (a leak)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    column: str
    auc_alone: float = Field(description="hold-out AUC of a score made from this column only")
    gain_share: float = Field(description="share of the model's total gain")
    why: str


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    intended_use: str = INTENDED_USE
    training_window: str = ""
    features: list[FeatureNote] = Field(default_factory=list)
    excluded_columns: list[ExcludedColumn] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    fairness: Fairness = Field(default_factory=Fairness)
    leakage: list[LeakageSuspect] = Field(
        default_factory=list,
        description="columns that alone separate the classes or carry most of the gain",
    )


def build_card(
    spec: FeatureSpec,
    *,
    importance: Sequence[float],
    window_start: datetime | None,
    window_end: datetime | None,
    n_train: int,
    positive_rate: float,
    segment_column: str | None = None,
    segments: Sequence[SegmentMetrics] = (),
    leakage: Sequence[LeakageSuspect] = (),
    top_features: int = 25,
) -> ModelCard:
    """A card listing the most important features, exclusions, limitations and fairness notes."""
    described = spec.describe()
    notes = [
        FeatureNote(name=name, description=text, importance=round(float(weight), 6))
        for (name, text), weight in zip(described, importance, strict=True)
    ]
    notes.sort(key=lambda note: -note.importance)
    window = (
        f"{window_start:%Y-%m-%d} to {window_end:%Y-%m-%d}"
        if window_start and window_end
        else "no timestamp column: window unknown"
    )
    limitations = [
        f"Trained on {n_train} leads with a {positive_rate:.1%} conversion rate; scores for "
        "leads unlike these (new sources, tenants, markets) are extrapolation.",
        "Categories never seen in training score as 'none of the known categories'.",
        "Conversion labels come from recorded outcomes; leads whose outcome was never "
        "recorded are not in the data, which can bias the model toward tracked channels.",
        "Watch the drift score: above 3.0 the live leads differ from the training leads.",
    ]
    limitations += [
        f"Column {s.column!r} looks too good ({s.why}): check that it is known when a lead "
        "arrives, not only after its outcome; if not, retrain with --exclude."
        for s in leakage
    ]
    fairness_notes = _fairness_notes(segment_column, segments)
    return ModelCard(
        training_window=window,
        features=notes[:top_features],
        excluded_columns=list(spec.excluded),
        limitations=limitations,
        fairness=Fairness(
            segment_column=segment_column, segments=list(segments), notes=fairness_notes
        ),
        leakage=list(leakage),
    )


def _fairness_notes(column: str | None, segments: Sequence[SegmentMetrics]) -> list[str]:
    if column is None:
        return [
            "No segment column was named (`leadops train --segment COL`), so performance "
            "per group was not measured."
        ]
    scored = [s for s in segments if s.auc is not None]
    notes: list[str] = []
    if len(scored) >= 2:
        low = min(scored, key=lambda s: s.auc or 0.0)
        high = max(scored, key=lambda s: s.auc or 0.0)
        notes.insert(
            0,
            f"Hold-out AUC by {column!r} ranges from {low.auc:.3f} ({low.value!r}) to "
            f"{high.auc:.3f} ({high.value!r}).",
        )
    else:
        notes.insert(0, f"Too few hold-out rows per {column!r} value to compare AUCs.")
    return notes


def segment_table(
    values: Sequence[str], labels: Sequence[int], aucs: Mapping[str, float | None]
) -> list[SegmentMetrics]:
    """Per-segment size and positive rate, with the AUCs computed by the caller."""
    counts: dict[str, list[int]] = {}
    for value, label in zip(values, labels, strict=True):
        counts.setdefault(value, []).append(label)
    return [
        SegmentMetrics(
            value=value,
            n=len(ys),
            positive_rate=round(sum(ys) / len(ys), 6),
            auc=aucs.get(value),
        )
        for value, ys in sorted(counts.items(), key=lambda item: -len(item[1]))
    ]
