"""An experiment variant's leads, scores and answer times (leadops.scorer.metrics.VariantCounts)
are exported exactly as prometheus_client's own Counter and Histogram export the same values."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from leadops.scorer.metrics import LATENCY_BUCKETS, SCORE_BUCKETS, Metrics

LABELS = ["experiment", "variant"]


def _samples(text: str, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample whose name starts with `prefix`, but `_created` (a wall-clock time)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefix) and not s.name.endswith("_created")
    }


def test_variant_counts_export_what_prometheus_client_would() -> None:
    rng = random.Random(5)
    # Values on bucket bounds (le is inclusive), between them, and past the last one (+Inf).
    scores = [*SCORE_BUCKETS, 0.0, 0.05, *(rng.random() for _ in range(200))]
    seconds = [*LATENCY_BUCKETS, 2.5, 30.0, *(rng.expovariate(1000) for _ in range(200))]

    metrics = Metrics()
    reference = CollectorRegistry()
    leads = Counter("leadops_experiment_leads", "", LABELS, registry=reference)
    score = Histogram(
        "leadops_experiment_score", "", LABELS, buckets=SCORE_BUCKETS, registry=reference
    )
    answer = Histogram(
        "leadops_experiment_answer_duration_seconds",
        "",
        LABELS,
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    for variant, share in (("control", scores[::2]), ("b", scores[1::2])):
        counts = metrics.variant("trial", variant)
        for value in share:
            counts.bucketed(value)
            leads.labels("trial", variant).inc()
            score.labels("trial", variant).observe(value)
    for variant, share in (("control", seconds[::2]), ("b", seconds[1::2])):
        counts = metrics.variant("trial", variant)
        for value in share:
            counts.answered(value)
            answer.labels("trial", variant).observe(value)

    ours = generate_latest(metrics.registry).decode()
    theirs = generate_latest(reference).decode()
    expected = _samples(theirs, "leadops_experiment_")
    # Per variant: the lead counter; each histogram's buckets with +Inf, its count and sum.
    per_variant = 1 + (len(SCORE_BUCKETS) + 3) + (len(LATENCY_BUCKETS) + 3)
    assert len(expected) == 2 * per_variant
    got = _samples(ours, "leadops_experiment_")
    assert {k: v for k, v in got.items() if k in expected} == expected
    assert metrics.variant_counts[("trial", "b")].leads == len(scores[1::2])


def test_no_series_before_a_variant_counts() -> None:
    text = generate_latest(Metrics().registry).decode()
    assert "leadops_experiment_leads_total{" not in text
    assert "leadops_experiment_score_bucket{" not in text
