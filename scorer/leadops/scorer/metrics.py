"""Every Prometheus metric the scorer exports, in one place, on a per-app registry.

The five `lead_model_*` gauges keep the operations guide's names exactly. Labels
never carry lead data: only route templates, status codes, results and reasons.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.model_auc = Gauge("lead_model_auc", "Serving model's test AUC (0-1).", registry=r)
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
        self.model_last_reload_ts = Gauge(
            "lead_model_last_reload_ts",
            "Unix time the serving model was (re)loaded.",
            registry=r,
        )
        self.model_loaded = Gauge(
            "lead_model_loaded", "1 when a model is loaded and serving.", registry=r
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
        self.store_up = Gauge(
            "leadops_store_up", "1 when the last store operation succeeded.", registry=r
        )
