"""Every Prometheus metric the scorer exports, in one place, on a per-app registry.

The five `lead_model_*` gauges keep the operations guide's names exactly. Labels
never carry lead data: only route templates, status codes, results and reasons.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Typed: prometheus_client's own formatting of a bucket bound (what its Histogram writes as le).
_le: Callable[[float], str] = floatToGoString

# Scoring is tens of microseconds in the model plus I/O; buckets span 50 us .. 1 s.
LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))


class Metrics:
    """The scorer's metrics, registered on their own registry (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.model_auc = Gauge(
            "lead_model_auc", "Serving model's test AUC (0-1; NaN: no model loaded).", registry=r
        )
        # NaN, not 0, until a model loads: a cold-start scorer has no AUC, and a 0 would make
        # LeadModelLowAuc and LeadModelCriticalAuc (`lead_model_auc < ...`) page for it.
        self.model_auc.set(float("nan"))
        self.model_version = Gauge(
            "lead_model_version", "Serving model's version (unix seconds).", registry=r
        )
        self.model_n_train = Gauge(
            "lead_model_n_train", "Serving model's training sample count.", registry=r
        )
        self.model_drift_score = Gauge(
            "lead_model_drift_score",
            "Feature drift of recent leads vs training (standard deviations).",
            registry=r,
        )
        # NaN until the serving model has an estimate (PromQL comparisons drop NaN samples).
        self.model_estimated_auc = Gauge(
            "lead_model_estimated_auc",
            "AUC expected from the serving model's recent leads before their outcomes arrive "
            "(confidence-based estimate from its calibration map, 0-1; NaN: none yet).",
            registry=r,
        )
        self.model_estimated_auc_leads = Gauge(
            "lead_model_estimated_auc_leads",
            "Recent leads lead_model_estimated_auc rests on (0 while there is no estimate).",
            registry=r,
        )
        self.model_estimated_auc.set(float("nan"))
        # Versions are the only label: one series per version the guard compared.
        self.model_matured_auc = Gauge(
            "lead_model_matured_auc",
            "AUC of a model version on the matured leads of the matured-AUC guard (paired with "
            "the version it replaced, on the same leads; 0-1).",
            ["version"],
            registry=r,
        )
        self.model_last_reload_ts = Gauge(
            "lead_model_last_reload_ts",
            "Unix time the serving model was (re)loaded.",
            registry=r,
        )
        self.model_loaded = Gauge(
            "lead_model_loaded", "1 when a model is loaded and serving.", registry=r
        )
        self.erasures = Counter(
            "leadops_lead_erasures",
            "DELETE /v1/lead/{id} calls by whether a lead record was found (true/false).",
            ["found"],
            registry=r,
        )
        self.requests = Counter(
            "leadops_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "leadops_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scoring_seconds = Histogram(
            "leadops_scoring_duration_seconds",
            "Time to featurize and score one lead (model only, no I/O).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scores = Histogram(
            "leadops_lead_score",
            "Distribution of returned lead scores.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "leadops_model_reloads",
            "Model reload attempts by result (loaded, rejected, error) and reason.",
            ["result", "reason"],
            registry=r,
        )
        self.records_dropped = Counter(
            "leadops_records_dropped",
            "Lead records, outcomes or messages not stored because the store failed.",
            ["kind"],
            registry=r,
        )
        self.attributes_dropped = Counter(
            "leadops_attributes_dropped",
            "Lead attributes not stored: past the tenant's column cap, or a name holding PII.",
            ["reason"],
            registry=r,
        )
        # Exported at 0 from the start: increase() cannot see a series' first value, so a
        # first drop would never fire LeadRecordsDropped if the series appeared with it.
        for kind in ("lead", "outcome", "message"):
            self.records_dropped.labels(kind=kind)
        # Labels come from the configured experiment (at most 4 variants), never from a lead.
        # Leads, scores and answer times per variant: plain numbers the scoring path adds to,
        # exported by a collector (VariantCounts).
        self.variant_counts: dict[tuple[str, str], VariantCounts] = {}
        r.register(_VariantSeries(self.variant_counts))
        self.experiment_outcomes = Counter(
            "leadops_experiment_outcomes",
            "Outcomes recorded (POST /v1/outcome) for leads of each variant of the experiment.",
            ["experiment", "variant"],
            registry=r,
        )
        self.experiment_conversions = Counter(
            "leadops_experiment_conversions",
            "Conversions recorded for leads of each variant of the experiment.",
            ["experiment", "variant"],
            registry=r,
        )
        self.experiment_failures = Counter(
            "leadops_experiment_scoring_failures",
            "Leads of each variant whose scoring raised (answered 500): error guardrail data.",
            ["experiment", "variant"],
            registry=r,
        )
        self.leads_unscored = Counter(
            "leadops_leads_unscored",
            "Leads stored unscored because no model was loaded (cold start).",
            registry=r,
        )
        self.store_up = Gauge(
            "leadops_store_up", "1 when the last store operation succeeded.", registry=r
        )
        self.records_unconfirmed = Gauge(
            "leadops_records_unconfirmed",
            "Lead records whose write failed but may have landed, to look up once the store "
            "answers (then counted dropped when missing, or retracted after a 503).",
            registry=r,
        )
        # Follow-ups the scorer schedules (LEADOPS_FOLLOWUPS_CONFIG): closed label sets only.
        self.followups_scheduled = Counter(
            "leadops_followups_scheduled",
            "Follow-ups of scored leads written to the queue (contact sealed in the vault).",
            ["channel"],
            registry=r,
        )
        self.followups_skipped = Counter(
            "leadops_followups_skipped",
            "Scored leads of a tenant with follow-up rules that get none: no phone or e-mail "
            "(no_contact), or a score below every band (below_bands).",
            ["reason"],
            registry=r,
        )
        self.followups_dropped = Counter(
            "leadops_followups_dropped",
            "Follow-ups lost before reaching the queue: the scorer's buffer was full "
            "(queue_full), Redis did not take the batch (store_error), or an error (error).",
            ["reason"],
            registry=r,
        )
        self.spool_records = Gauge(
            "leadops_spool_records",
            "Lead records in the local spool, waiting to be replayed to the store.",
            registry=r,
        )

    def variant(self, experiment: str, variant: str) -> VariantCounts:
        """The counts of one variant of an experiment (its series appear once asked for)."""
        return self.variant_counts.setdefault((experiment, variant), VariantCounts())


class VariantCounts:
    """One experiment variant's leads, scores and answer times in this process, as plain
    numbers: a lead adds to them with two increments and a bisect each. Prometheus reads them
    when it scrapes. prometheus_client's Counter and Histogram take a lock and walk the
    buckets in Python on every observation: about 5 us a lead inside a request
    (docs/benchmarks.md, "Per-lead bookkeeping"), for series nobody reads between scrapes."""

    __slots__ = ("answer_buckets", "answer_sum", "leads", "score_buckets", "score_sum")

    def __init__(self) -> None:
        self.leads = 0
        # Per bucket, not cumulative; the last one is +Inf.
        self.score_buckets = [0] * (len(SCORE_BUCKETS) + 1)
        self.score_sum = 0.0
        self.answer_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.answer_sum = 0.0

    def bucketed(self, score: float) -> None:
        """A lead of this variant, answered with `score`."""
        self.leads += 1
        self.score_buckets[bisect.bisect_left(SCORE_BUCKETS, score)] += 1
        self.score_sum += score

    def answered(self, seconds: float) -> None:
        """A lead of this variant answered `seconds` after it arrived."""
        self.answer_buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.answer_sum += seconds


class _VariantSeries(Collector):
    """leadops_experiment_leads_total, leadops_experiment_score and
    leadops_experiment_answer_duration_seconds, from the VariantCounts."""

    def __init__(self, counts: dict[tuple[str, str], VariantCounts]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        labels = ["experiment", "variant"]
        leads = CounterMetricFamily(
            "leadops_experiment_leads",
            "Leads bucketed into each variant of the running experiment.",
            labels=labels,
        )
        scores = HistogramMetricFamily(
            "leadops_experiment_score",
            "Scores served to each variant of the running experiment (its model's score).",
            labels=labels,
        )
        answers = HistogramMetricFamily(
            "leadops_experiment_answer_duration_seconds",
            "Time from a lead's arrival in the scorer to its answer, per variant (its own "
            "model's scoring, queueing or storing the record), less the batches' shadow "
            "scoring it waited for: the latency guardrail's data.",
            labels=labels,
        )
        for (experiment, variant), counts in list(self._counts.items()):
            names = [experiment, variant]
            leads.add_metric(names, counts.leads)
            scores.add_metric(
                names, _cumulative(SCORE_BUCKETS, counts.score_buckets), counts.score_sum
            )
            answers.add_metric(
                names, _cumulative(LATENCY_BUCKETS, counts.answer_buckets), counts.answer_sum
            )
        yield leads
        yield scores
        yield answers


def _cumulative(bounds: Sequence[float], per_bucket: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus histogram buckets (le, count of values <= le) from per-bucket counts."""
    edges = [_le(bound) for bound in bounds] + ["+Inf"]
    return list(zip(edges, itertools.accumulate(per_bucket), strict=True))
