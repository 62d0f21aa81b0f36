"""The alert rules a LeadModel's PrometheusRule carries, scoped to that LeadModel.

manifests/prometheus-rules.yaml is the single source and is written for a whole cluster
(`by (namespace, service)`), so the chart can also ship it as one static rule file. The copy
the operator creates for each LeadModel selects only that LeadModel's series instead: an
unscoped copy per LeadModel would make Prometheus evaluate every rule once per LeadModel,
over every scorer in the cluster.

An alert's `for:` duration can be changed by name (LEADOPS_ALERT_FOR, the chart's
`prometheusRule.for`), e.g. so a test sees LeadModelHighDrift fire in seconds, not an hour.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

# Metric selectors in the rules: a metric name and its optional `{...}` matchers.
_SELECTOR = re.compile(
    r"(?<![\w:])(?P<metric>lead_model_\w+|leadops_\w+|kube_job_\w+)(?:\{(?P<matchers>[^}]*)\})?"
)
# Which labels tie a series to one LeadModel. Scorer series carry the scorer Service (the
# ServiceMonitor's `service` label); kube-state-metrics names a Job's owning CronJob.
_SCORER_PREFIXES = ("lead_model_", "leadops_")
_JOB_OWNER = "kube_job_owner"
# The follow-ups worker and webhooks app: their own Service (spec.followUps).
_FOLLOWUPS_PREFIX = "leadops_followups_"
# A Prometheus duration as a rule's `for:` takes it (units from ms to y, largest first).
_DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")

# Alert name -> its `for:` duration, sorted by name (hashable, so settings stay frozen).
ForDurations = tuple[tuple[str, str], ...]


class AlertForError(ValueError):
    """An alert `for:` override names no LeadOps alert or is not a Prometheus duration."""


@cache
def rules_document() -> dict[str, Any]:
    """manifests/prometheus-rules.yaml, parsed (a Prometheus rule file: `groups:` of rules)."""
    text = resources.files("leadops.operator").joinpath("manifests/prometheus-rules.yaml")
    loaded = yaml.safe_load(text.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or "groups" not in loaded:
        raise ValueError("manifests/prometheus-rules.yaml must hold a `groups:` list")
    return loaded


def alert_names() -> frozenset[str]:
    return frozenset(r["alert"] for g in rules_document()["groups"] for r in g["rules"])


def parse_for(raw: str) -> ForDurations:
    """`NAME=DURATION,...` (LEADOPS_ALERT_FOR) as sorted pairs; empty: no override."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, duration = (x.strip() for x in item.partition("="))
        if not sep or not name or not duration:
            raise AlertForError(f"{item!r} is not ALERT=DURATION")
        if name not in alert_names():
            raise AlertForError(
                f"{name!r} is not a LeadOps alert ({', '.join(sorted(alert_names()))})"
            )
        if not is_duration(duration):
            raise AlertForError(
                f"{duration!r} for {name} is not a Prometheus duration (e.g. 30s, 5m, 1h)"
            )
        pairs[name] = duration
    return tuple(sorted(pairs.items()))


def is_duration(text: str) -> bool:
    """A Prometheus duration with at least one number (30s, 5m, 1h30m)."""
    return bool(_DURATION.match(text)) and any(c.isdigit() for c in text)


def with_for(doc: dict[str, Any], durations: ForDurations) -> dict[str, Any]:
    """`doc` (changed in place and returned) with those alerts' `for:` set."""
    wanted = dict(durations)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in wanted:
                rule["for"] = wanted[rule["alert"]]
    return doc


def scoped_rules(
    *,
    namespace: str,
    scorer_service: str,
    backfill_cronjob: str,
    followups_service: str = "",
    durations: ForDurations = (),
) -> dict[str, Any]:
    """The rule document with every selector narrowed to one LeadModel's own series
    (and `durations`' alerts' `for:` set)."""
    doc = with_for(copy.deepcopy(rules_document()), durations)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = scope_expr(
                rule["expr"],
                namespace=namespace,
                scorer_service=scorer_service,
                backfill_cronjob=backfill_cronjob,
                followups_service=followups_service,
            )
    return doc


def scope_expr(
    expr: str,
    *,
    namespace: str,
    scorer_service: str,
    backfill_cronjob: str,
    followups_service: str = "",
) -> str:
    """`expr` with the LeadModel's matchers added to each metric selector (kept ones stay).

    Follow-up series come from the follow-ups Service (`followups_service`; empty: the
    scorer Service's name with `-followups` for `-scorer`)."""
    followups = followups_service or scorer_service.removesuffix("-scorer") + "-followups"

    def narrowed(match: re.Match[str]) -> str:
        metric = match["metric"]
        if metric.startswith(_FOLLOWUPS_PREFIX):
            ours = {"namespace": namespace, "service": followups}
        elif metric.startswith(_SCORER_PREFIXES):
            ours = {"namespace": namespace, "service": scorer_service}
        elif metric == _JOB_OWNER:
            ours = {"namespace": namespace, "owner_name": backfill_cronjob}
        else:  # another kube_job_* series, joined to kube_job_owner on (namespace, job_name)
            ours = {"namespace": namespace}
        matchers = [f'{label}="{value}"' for label, value in ours.items()]
        if match["matchers"] and match["matchers"].strip():
            matchers.append(match["matchers"].strip())
        return f"{metric}{{{', '.join(matchers)}}}"

    return _SELECTOR.sub(narrowed, expr)
