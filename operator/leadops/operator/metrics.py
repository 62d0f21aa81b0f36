"""Operator metrics, all in one module (served on --metrics-port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "leadops_operator_reconciles_total", "LeadModel reconciles by result.", ["result"]
)
ROLLOUTS = Counter("leadops_operator_rollouts_total", "Scorer rollouts started.")
ROLLBACKS = Counter("leadops_operator_rollbacks_total", "Scorer rollbacks by reason.", ["reason"])
GATE_REJECTIONS = Counter(
    "leadops_operator_gate_rejections_total", "Candidates rejected by the gates.", ["reason"]
)
RECONCILE_SECONDS = Histogram(
    "leadops_operator_reconcile_duration_seconds",
    "Time to observe, plan and apply one LeadModel.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IS_LEADER = Gauge(
    "leadops_operator_leader", "1 while this operator replica holds the leader Lease and acts."
)
LEADERSHIP_CHANGES = Counter(
    "leadops_operator_leadership_changes_total",
    "Times this replica became leader (acquired) or stopped leading (lost).",
    ["change"],
)
