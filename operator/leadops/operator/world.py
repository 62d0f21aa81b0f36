"""The world as one LeadModel's reconcile sees it: frozen values, no API client.

`read_world.py` fills these from the cluster; `plan.py` decides from them; tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from leadops.operator import builders
from leadops.operator.registry import Entry
from leadops.operator.rollout import RolloutState


@dataclass(frozen=True)
class ScorerReport:
    """What the scorer's /ops/model-status said (None in Observed when unreachable)."""

    version: int | None
    health: str
    auc: str = ""
    drift_score: str = ""


@dataclass(frozen=True)
class Observed:
    name: str
    namespace: str
    uid: str
    generation: int
    registry: tuple[Entry, ...] = ()
    deployment: RolloutState = field(default_factory=RolloutState)
    children: Mapping[tuple[str, str], Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    prometheus_operator: bool = False
    alert_rules: bool = False  # the operator should keep a PrometheusRule for this LeadModel
    signing_key_configured: bool = False
    scorer: ScorerReport | None = None
    status: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def owner(self) -> builders.Owner:
        return builders.Owner(name=self.name, namespace=self.namespace, uid=self.uid)

    def entry(self, version: int | None) -> Entry | None:
        return next((e for e in self.registry if e.version == version), None)
