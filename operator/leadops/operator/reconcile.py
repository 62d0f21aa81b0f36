"""One reconcile pass: parse spec -> observe -> plan -> apply. No kopf here.

Resume, create, update, the resync and child events all end up in `reconcile()`; it never
branches on why it was called (level-triggered).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from leadops.operator import (
    apply,
    conditions,
    followups_check,
    followups_templates,
    metrics,
    plan,
    read_world,
    reasons,
    settings,
    trust,
)
from leadops.operator.actions import EmitEvent, Plan
from leadops.operator.kube import Kube
from leadops.operator.spec import LeadModelSpec
from leadops.operator.world import Observed

logger = logging.getLogger(__name__)

_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class InvalidSpec(Exception):
    """The spec passed the CRD schema but cannot be served (semantic error)."""

    reason = reasons.INVALID_SPEC


class MissingSecret(InvalidSpec):
    """A Secret or key the spec names does not exist (yet): look again later."""

    reason = reasons.MISSING_SECRET


def _lock(namespace: str, name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((namespace, name), threading.Lock())


def parse(body: Mapping[str, Any]) -> LeadModelSpec:
    try:
        lm = LeadModelSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidSpec(f"spec.{where}: {first['msg']}") from exc
    problems = lm.semantic_errors() or followups_check.problems(lm)
    if problems:
        raise InvalidSpec("; ".join(problems))
    return lm


def report_invalid(
    kube: Kube,
    body: Mapping[str, Any],
    message: str,
    *,
    now: datetime,
    reason: str = reasons.INVALID_SPEC,
) -> None:
    """Ready=False/`reason` and a Warning Event; children are left exactly as they are."""
    meta = body.get("metadata") or {}
    previous = dict(body.get("status") or {})
    before = previous.get("conditions") or []
    obs = Observed(
        name=str(meta["name"]),
        namespace=str(meta["namespace"]),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        status=previous,
    )
    ready = conditions.false(reasons.READY, reason, message)
    others = [c for c in conditions.from_status(before) if c.type != reasons.READY]
    old_ready: Mapping[str, Any] = next((c for c in before if c.get("type") == reasons.READY), {})
    stamped = conditions.stamp([ready, *others], before, generation=obs.generation, now=now)
    status = {
        **previous,
        "observedGeneration": obs.generation,
        "conditions": conditions.as_status(stamped),
    }
    if (old_ready.get("reason"), old_ready.get("message")) != (reason, message):
        apply.emit_event(kube, obs, EmitEvent("Warning", reason, message), now)
    apply.write_status(kube, obs, status)


# Conditions whose changes are worth a log line: the rollout's and the LeadModel's readiness.
_LOGGED = (reasons.ROLLED_OUT, reasons.READY)


def log_changes(observed: Observed, decided: Plan) -> None:
    """INFO once per change of RolledOut or Ready (waiting is normal, not an error)."""
    before = {
        c.get("type"): (c.get("status"), c.get("reason"))
        for c in observed.status.get("conditions") or []
    }
    for cond in decided.conditions:
        if cond.type in _LOGGED and before.get(cond.type) != (cond.status, cond.reason):
            logger.info(
                "LeadModel %s/%s: %s=%s %s: %s",
                observed.namespace,
                observed.name,
                cond.type,
                cond.status.value,
                cond.reason,
                cond.message,
            )


def reconcile(kube: Kube, body: Mapping[str, Any], *, now: datetime | None = None) -> Plan | None:
    """Bring one LeadModel's world in line with its spec. Raises InvalidSpec (MissingSecret)."""
    meta = body.get("metadata") or {}
    started = time.perf_counter()
    moment = now or datetime.now(UTC)
    result = "error"
    try:
        with _lock(str(meta.get("namespace")), str(meta.get("name"))):
            # Triggers may carry an older copy; decide on the latest (status included).
            fresh = kube.get("LeadModel", str(meta.get("namespace")), str(meta.get("name")))
            if fresh is None or (fresh.get("metadata") or {}).get("deletionTimestamp"):
                result = "gone"
                return None
            body = fresh
            config = settings.load()
            try:
                lm = parse(body)
                found = trust.problems(
                    kube, str(meta.get("namespace")), str(meta.get("name")), lm, config
                )
                if found.refused:
                    raise InvalidSpec("; ".join(found.refused))
                # Templates kept in ConfigMaps: read, put in and checked like inline ones.
                lm, template_problems = followups_templates.read(
                    kube, str(meta.get("namespace")), lm
                )
                if template_problems:
                    raise InvalidSpec("; ".join(template_problems))
                if found.missing:  # Pods that mount them could not start: roll nothing out
                    raise MissingSecret("; ".join(found.missing))
            except InvalidSpec as exc:
                result = "invalid" if exc.reason == reasons.INVALID_SPEC else "missing_secret"
                report_invalid(kube, body, str(exc), now=moment, reason=exc.reason)
                raise
            observed = read_world.read(kube, body, lm, config, moment)
            decided = plan.plan(lm, observed, moment)
            apply.apply(kube, decided, observed, now=moment)
            log_changes(observed, decided)
            result = "requeue" if decided.requeue_after else "ok"
            return decided
    finally:
        metrics.RECONCILES.labels(result=result).inc()
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
