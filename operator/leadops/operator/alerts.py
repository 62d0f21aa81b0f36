"""The alert rules a LeadModel's PrometheusRule carries, scoped to that LeadModel.

manifests/prometheus-rules.yaml is the single source and is written for a whole cluster
(`by (namespace, service)`), so the chart can also ship it as one static rule file. The copy
the operator creates for each LeadModel selects only that LeadModel's series instead: an
unscoped copy per LeadModel would make Prometheus evaluate every rule once per LeadModel,
over every scorer in the cluster.
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


@cache
def rules_document() -> dict[str, Any]:
    """manifests/prometheus-rules.yaml, parsed (a Prometheus rule file: `groups:` of rules)."""
    text = resources.files("leadops.operator").joinpath("manifests/prometheus-rules.yaml")
    loaded = yaml.safe_load(text.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or "groups" not in loaded:
        raise ValueError("manifests/prometheus-rules.yaml must hold a `groups:` list")
    return loaded


def scoped_rules(*, namespace: str, scorer_service: str, backfill_cronjob: str) -> dict[str, Any]:
    """The rule document with every selector narrowed to one LeadModel's own series."""
    doc = copy.deepcopy(rules_document())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = scope_expr(
                rule["expr"],
                namespace=namespace,
                scorer_service=scorer_service,
                backfill_cronjob=backfill_cronjob,
            )
    return doc


def scope_expr(expr: str, *, namespace: str, scorer_service: str, backfill_cronjob: str) -> str:
    """`expr` with the LeadModel's matchers added to each metric selector (kept ones stay)."""

    def narrowed(match: re.Match[str]) -> str:
        metric = match["metric"]
        if metric.startswith(_SCORER_PREFIXES):
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
