"""Follow-up metrics, all in one place. Labels are tenant, channel and closed sets of
outcomes or reasons: never a lead id, message id or address."""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import Counter, Histogram
from redis.client import Pipeline

from leadops.followups import keys

Outcome = Literal[
    "sent", "delivered", "failed", "bounced", "opened", "clicked", "replied", "suppressed",
    "deferred", "rate_limited", "retried", "dead_lettered", "failed_over", "expired",
]  # fmt: skip

FOLLOWUPS: Final = Counter(
    "leadops_followups_total",
    "Follow-up events by tenant, channel and outcome.",
    ["tenant", "channel", "outcome"],
)
ENQUEUE_TO_SEND: Final = Histogram(
    "leadops_followups_enqueue_to_send_seconds",
    "From a follow-up being due to the provider accepting it.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOKS: Final = Counter(
    "leadops_followups_webhooks_total",
    "Provider callbacks by provider and verdict (recorded, duplicate, stale, forbidden).",
    ["provider", "verdict"],
)


def count(tenant: str, channel: str, outcome: Outcome) -> None:
    FOLLOWUPS.labels(tenant=tenant, channel=channel, outcome=outcome).inc()


def tally(tx: Pipeline, tenant: str, channel: str, outcome: Outcome) -> None:
    """The same count in Redis, queued on the transaction that decides the outcome: the
    counts `GET /ops/followups` reads, shared by every replica and kept across restarts."""
    tx.hincrby(keys.Keys.stats(tenant), f"{channel}:{outcome}", 1)
    tx.sadd(keys.STATS_TENANTS, tenant)
