"""Hand-built worlds for the planner and gate tables (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from leadops.operator import builders, registry
from leadops.operator.artifact_facts import ArtifactFacts
from leadops.operator.registry import Entry
from leadops.operator.rollout import Blocked, Progress, RolloutState
from leadops.operator.spec import LeadModelSpec
from leadops.operator.world import Observed, ScorerReport

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
V1 = int((NOW - timedelta(hours=30)).timestamp())
V2 = int((NOW - timedelta(hours=6)).timestamp())
V3 = int((NOW - timedelta(hours=1)).timestamp())


def facts(version: int, *, auc: str = "0.80", n_train: int = 500, **kw: Any) -> ArtifactFacts:
    return ArtifactFacts(
        version=version,
        auc=Decimal(auc),
        n_train=n_train,
        positive_rate=Decimal(kw.pop("positive_rate", "0.38")),
        created_at=datetime.fromtimestamp(version, tz=UTC),
        digest="sha256:" + "0" * 64,
        **kw,
    )


def entry(version: int, *, auc: str = "0.80", **kw: Any) -> Entry:
    rolled_back = kw.pop("rolled_back", "")
    promoted = kw.pop("promoted", "")
    return Entry(
        version=version,
        name=registry.configmap_name("lm", version),
        auc=auc,
        n_train=kw.get("n_train", 500),
        created_at=datetime.fromtimestamp(version, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        promoted_at=promoted,
        rolled_back_at=rolled_back,
        rollback_reason="ProgressDeadlineExceeded" if rolled_back else "",
        facts=facts(version, auc=auc, **kw),
    )


def spec(**kw: Any) -> LeadModelSpec:
    return LeadModelSpec.model_validate(
        {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}, **kw}
    )


def deployed(
    version: int | None,
    *,
    previous: int | None = None,
    kind: str = builders.ROLLOUT_FORWARD,
    complete: bool = True,
    deadline: bool = False,
    available: bool = True,
    blocked: Blocked | None = None,
    pods_failed: bool | None = None,
) -> RolloutState:
    """A scorer Deployment's rollout; stuck (`deadline`) with Pods that failed on a node unless
    `pods_failed=False` or `blocked` says otherwise."""
    progress = (
        Progress.STUCK if deadline else Progress.COMPLETE if complete else Progress.PROGRESSING
    )
    return RolloutState(
        exists=True,
        version=version,
        previous=previous,
        kind=kind,
        started_at="2026-11-26T10:00:00Z" if version else "",
        progress=progress,
        available=available and progress is Progress.COMPLETE,
        desired=2,
        ready=2 if available and progress is Progress.COMPLETE else 0,
        deadline_exceeded=deadline,
        blocked=blocked,
        pods_failed=(deadline and blocked is None) if pods_failed is None else pods_failed,
    )


def world(
    *entries: Entry,
    deployment: RolloutState | None = None,
    scorer: ScorerReport | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
) -> Observed:
    return Observed(
        name="lm",
        namespace="ns",
        uid="uid-1",
        generation=generation,
        registry=tuple(sorted(entries, key=lambda e: e.version)),
        deployment=deployment or RolloutState(),
        scorer=scorer,
        status=status or {},
    )
