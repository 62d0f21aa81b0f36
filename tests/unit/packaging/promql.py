"""Which metrics a PromQL expression names, and which metrics LeadOps really exports.

Good enough for the expressions we ship (dashboard panels, alert rules): it drops string
literals, label matchers, label lists of by/without/on/ignoring/group_*, range selectors
and numbers, then every identifier left that is not a function or keyword is a metric.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[3]
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
# Components whose metrics module is the source of truth once it exists.
METRICS_MODULES = {
    "scorer": "leadops.scorer.metrics",
    "operator": "leadops.operator.metrics",
    "followups": "leadops.followups.metrics",
}

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta",
    "deriv", "exp", "floor", "group", "histogram_quantile", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log2", "log10", "max",
    "max_over_time", "min", "min_over_time", "predict_linear", "quantile", "quantile_over_time",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "stddev", "stdvar", "sum",
    "sum_over_time", "time", "timestamp", "topk", "vector",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = {m.group(0) for m in _IDENT.finditer(text)}
    return {n for n in names if n.lower() not in FUNCTIONS | KEYWORDS}


def _exposed(name: str, kind: str) -> set[str]:
    """Sample names Prometheus stores for one metric family."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return {base + "_total", base + "_created"}
    if kind == "histogram":
        return {name + "_bucket", name + "_sum", name + "_count", name + "_created"}
    if kind == "summary":
        return {name, name + "_sum", name + "_count", name + "_created"}
    if kind == "info":
        return {name + "_info"}
    return {name}


def _registry_metrics(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names |= _exposed(family.name, family.type)
    return names


def module_metrics(module: ModuleType) -> set[str]:
    """Sample names of every metric a module defines.

    Module-level metrics, module-level registries, or a `Metrics` class that registers
    its metrics on its own registry when built (the scorer's per-app style).
    """
    names: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            names |= _exposed(value._name, str(value._type))
        elif isinstance(value, CollectorRegistry):
            names |= _registry_metrics(value)
    metrics_class = getattr(module, "Metrics", None)
    if isinstance(metrics_class, type):
        registry = CollectorRegistry()
        metrics_class(registry=registry)
        names |= _registry_metrics(registry)
    return names


def documented_metrics() -> dict[str, set[str]]:
    """Metric names per source from the metrics table in docs/operations.md."""
    by_source: dict[str, set[str]] = {}
    row = re.compile(
        r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(gauge|counter|histogram|summary|info)\s*\|"
        r"\s*([\w-]+)\s*\|"
    )
    for line in OPERATIONS_DOC.read_text().splitlines():
        m = row.match(line)
        if m:
            name, kind, source = m.groups()
            by_source.setdefault(source, set()).update(_exposed(name, kind))
    return by_source


def known_metrics() -> tuple[set[str], dict[str, str]]:
    """Every metric LeadOps can rely on, and where each component's list came from.

    A component's metrics module is the truth once it exists; before that, the
    documented table. kube-state-metrics is always taken from the table.
    """
    documented = documented_metrics()
    known: set[str] = set(documented.get("kube-state-metrics", set()))
    origin: dict[str, str] = {"kube-state-metrics": "docs/operations.md"}
    for component, module_name in METRICS_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            known |= documented.get(component, set())
            origin[component] = "docs/operations.md"
        else:
            known |= module_metrics(module)
            origin[component] = module_name
    return known, origin
