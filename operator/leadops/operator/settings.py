"""Every `LEADOPS_*` variable the operator reads, parsed in one place.

`load()` reads the environment each time it is called: the resync period and the selector are
fixed when the operator starts (`handlers.configure`), the rest is read once per reconcile
pass, so a test or a restarted Pod sees the environment it was started with. Pure module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from leadops.operator import alerts, shard
from leadops.operator.builders import DEFAULT_SCRAPE_INTERVAL

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# The project's own images, when the admin has not said otherwise.
DEFAULT_ALLOWED_IMAGES = ("docker.io/leadops/",)


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


class SettingsError(ValueError):
    """A LEADOPS_* variable has a value the operator cannot use."""


@dataclass(frozen=True)
class OperatorSettings:
    # LEADOPS_RESYNC_SECONDS: the resync, the longest a missed watch event delays a decision.
    resync_seconds: float = 60.0
    # LEADOPS_WORKERS: kopf's thread pool for the synchronous handlers.
    workers: int = 8
    # LEADOPS_SCORER_URL: one URL where /ops/model-status is asked ({name}, {namespace}
    # filled in), instead of every Pod; empty and no scorer_pods means "do not ask".
    scorer_url: str = ""
    # LEADOPS_SCORER_PODS: ask every ready scorer Pod (the Service's EndpointSlices); on by
    # default in a Pod when LEADOPS_SCORER_URL is unset.
    scorer_pods: bool = False
    # LEADOPS_ALERT_RULES: keep a PrometheusRule per LeadModel (the chart turns it off when
    # it ships the same rules once, cluster-wide).
    alert_rules: bool = True
    # LEADOPS_ALERT_FOR: `ALERT=DURATION,...`, alerts' `for:` in the per-LeadModel rules
    # (the chart's prometheusRule.for; e.g. seconds in a test instead of an hour).
    alert_for: alerts.ForDurations = ()
    # LEADOPS_SCRAPE_INTERVAL: how often the scorer ServiceMonitor has Prometheus scrape each
    # scorer Pod (the chart's scorerMonitor.interval).
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL
    # LEADOPS_ALLOWED_IMAGES: registry/repository prefixes a LeadModel's images must start
    # with (`*`: any); by default the project's own images.
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES
    # LEADOPS_ALLOWED_POD_ANNOTATIONS: exact Pod annotation keys allowed besides the built-in
    # list (never AppArmor or seccomp, whatever it says).
    extra_pod_annotations: frozenset[str] = frozenset()
    # LEADOPS_JOBS_IMAGE: the training and backfill Jobs' image when a LeadModel names none;
    # empty: the scorer image's sibling `jobs` repository, same tag (builders.jobs_image).
    jobs_image: str = ""
    # LEADOPS_SELECTOR (`leadops operator --selector`): act only on LeadModels whose labels
    # match, so several operators split a fleet; empty: every LeadModel watched.
    selector: shard.Selector = field(default_factory=shard.Selector)


def _selector(raw: str) -> shard.Selector:
    try:
        return shard.parse(raw)
    except shard.SelectorError as exc:
        raise SettingsError(f"LEADOPS_SELECTOR: {exc}") from exc


def _alert_for(raw: str) -> alerts.ForDurations:
    try:
        return alerts.parse_for(raw)
    except alerts.AlertForError as exc:
        raise SettingsError(f"LEADOPS_ALERT_FOR: {exc}") from exc


def _scrape_interval(raw: str) -> str:
    value = raw.strip() or DEFAULT_SCRAPE_INTERVAL
    if not alerts.is_duration(value):
        raise SettingsError(
            f"LEADOPS_SCRAPE_INTERVAL: {raw!r} is not a Prometheus duration (e.g. 15s, 30s, 1m)"
        )
    return value


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _number(name: str, raw: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {raw!r}")
    return value


def load(env: Mapping[str, str] | None = None) -> OperatorSettings:
    env = os.environ if env is None else env
    url = env.get("LEADOPS_SCORER_URL", "")
    in_pod = bool(env.get("KUBERNETES_SERVICE_HOST"))
    pods = _flag(
        "LEADOPS_SCORER_PODS",
        env.get("LEADOPS_SCORER_PODS", "true" if in_pod and not url else "false"),
    )
    return OperatorSettings(
        resync_seconds=float(
            _number("LEADOPS_RESYNC_SECONDS", env.get("LEADOPS_RESYNC_SECONDS", "60"), float)
        ),
        workers=int(_number("LEADOPS_WORKERS", env.get("LEADOPS_WORKERS", "8"), int)),
        scorer_url=url,
        scorer_pods=pods,
        alert_rules=_flag("LEADOPS_ALERT_RULES", env.get("LEADOPS_ALERT_RULES", "true")),
        alert_for=_alert_for(env.get("LEADOPS_ALERT_FOR", "")),
        scrape_interval=_scrape_interval(env.get("LEADOPS_SCRAPE_INTERVAL", "")),
        allowed_images=_list(env.get("LEADOPS_ALLOWED_IMAGES", "")) or DEFAULT_ALLOWED_IMAGES,
        extra_pod_annotations=frozenset(_list(env.get("LEADOPS_ALLOWED_POD_ANNOTATIONS", ""))),
        jobs_image=env.get("LEADOPS_JOBS_IMAGE", "").strip(),
        selector=_selector(env.get("LEADOPS_SELECTOR", "")),
    )


def cli_namespace(env: Mapping[str, str] | None = None) -> str:
    """`LEADOPS_NAMESPACE`: the operator CLI's default namespace (read alone, so a bad
    operator-only variable never breaks `leadops status`)."""
    env = os.environ if env is None else env
    return env.get("LEADOPS_NAMESPACE", "") or "default"
