"""Ask the scorer how it is doing: every ready Pod of its Service (EndpointSlices), or one URL.

Through the Service one random Pod would answer, and a Pod that is critical, drifting or still
on another version could go unseen. So each pass lists the Service's EndpointSlices, GETs
`/ops/model-status?estimate=true` from every ready endpoint (in parallel, 1.5 s each) and
`world.combine`s the answers: the worst health wins, drift is the highest, the estimated AUC
is weighted by leads, and the report says how many Pods answered of how many were asked.
While the matured-AUC guard runs, each Pod's `/ops/matured-auc` is asked too.
Impure module (network).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from leadops.operator import builders
from leadops.operator.kube import Kube, KubeError
from leadops.operator.world import MaturedReport, ScorerReport, combine

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.5
# Pods asked at once; a LeadModel runs at most 100 scorer Pods (spec.scorer.replicas).
PARALLEL = 16
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PORT_NAME = "http"


def endpoint_urls(slices: Sequence[Mapping[str, Any]]) -> list[str]:
    """`http://ADDRESS:PORT` of every ready endpoint (unset `ready` counts as ready, as the
    EndpointSlice API says), once each."""
    urls: list[str] = []
    for found in slices:
        ports = [p for p in found.get("ports") or [] if p.get("port")]
        port = next((p for p in ports if p.get("name") == PORT_NAME), ports[0] if ports else None)
        if port is None:
            continue
        v6 = found.get("addressType") == "IPv6"
        for endpoint in found.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            addresses = endpoint.get("addresses") or []
            if not addresses:
                continue
            host = f"[{addresses[0]}]" if v6 else str(addresses[0])
            url = f"http://{host}:{int(port['port'])}"
            if url not in urls:
                urls.append(url)
    return urls


def _get(url: str, headers: Mapping[str, str]) -> Any:
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 (URL we built)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        return json.loads(response.read())


def ask_matured(url: str, headers: Mapping[str, str]) -> MaturedReport | None:
    """One scorer's /ops/matured-auc; None without a guard (Off, or an older scorer: 404)."""
    try:
        body = _get(url.rstrip("/") + "/ops/matured-auc", headers)
        if body.get("state") in (None, "Off"):
            return None

        def text(name: str) -> str:
            return "" if body.get(name) is None else str(body[name])

        return MaturedReport(
            state=str(body["state"]),
            serving_version=int(body["serving_version"]),
            previous_version=int(body["previous_version"]),
            leads=int(body.get("leads") or 0),
            conversions=int(body.get("conversions") or 0),
            serving_auc=text("serving_auc"),
            previous_auc=text("previous_auc"),
            difference=text("difference"),
            ci_low=text("ci_low"),
            ci_high=text("ci_high"),
            max_drop=text("max_drop"),
            alpha=text("alpha"),
        )
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        logger.debug("no matured-AUC verdict from %s", url)
        return None


def ask(url: str, headers: Mapping[str, str], *, matured: bool = False) -> ScorerReport | None:
    """One scorer's /ops/model-status (and, with `matured`, its /ops/matured-auc); None when
    it does not answer usably."""
    try:
        body = _get(url.rstrip("/") + "/ops/model-status?estimate=true", headers)
        version = body.get("version")
        return ScorerReport(
            version=int(version) if version not in (None, "") else None,
            health=str(body.get("health") or ""),
            auc="" if body.get("auc") is None else str(body["auc"]),
            drift_score="" if body.get("drift_score") is None else str(body["drift_score"]),
            # An older scorer ignores `estimate` and answers without these: no estimate.
            estimated_auc="" if body.get("estimated_auc") is None else str(body["estimated_auc"]),
            estimated_auc_leads=int(body.get("estimated_auc_leads") or 0),
            matured=ask_matured(url, headers) if matured else None,
        )
    except (OSError, ValueError, TypeError, AttributeError):
        logger.debug("scorer not reachable at %s", url)
        return None


def ask_all(
    urls: list[str], headers: Mapping[str, str], *, matured: bool = False
) -> ScorerReport | None:
    """Every URL asked (in parallel), the answers combined; None when none answered.
    `matured`: the matured-AUC guard runs, ask its verdict too."""
    if not urls:
        return None
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(urls))) as pool:
        answers = list(pool.map(lambda url: ask(url, headers, matured=matured), urls))
    return combine([a for a in answers if a is not None], asked=len(urls))


def pod_urls(kube: Kube, name: str, namespace: str) -> list[str]:
    """The ready scorer Pods of this LeadModel, from its Service's EndpointSlices."""
    service = builders.names(name)["scorer"]
    try:
        slices = kube.list("EndpointSlice", namespace, selector=f"{SERVICE_NAME_LABEL}={service}")
    except KubeError as exc:
        logger.warning("cannot list EndpointSlices of %s/%s: %s", namespace, service, exc)
        return []
    return endpoint_urls(slices)
