"""Leader election on a coordination.k8s.io/v1 Lease: with two operator replicas, one acts.

The same protocol as client-go's leaderelection, so `kubectl get lease` reads as usual:
- a candidate takes the Lease when it does not exist, or when its holder has not renewed it
  for `lease_duration` seconds *as observed by this candidate's clock* (the holder's renewTime
  is only compared for change, never against our clock, so clock skew cannot hand over early);
- every write carries the resourceVersion read before it, so two candidates cannot both win;
- the leader renews every `retry_period`; if it cannot renew for `renew_deadline` seconds it
  stops acting at once (the caller exits: a restarted Pod becomes a standby), well before
  another candidate may take over (`renew_deadline < lease_duration`).

A SIGKILLed leader never releases: the standby takes over once `lease_duration` has passed.
A leader stopping cleanly releases the Lease (holder cleared), so its successor starts at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadops.operator import metrics
from leadops.operator.kube import Kube, KubeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration"
            )


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Elector:
    """Acquire and keep one Lease for `identity`; blocking calls, run them in a thread."""

    kube: Kube
    namespace: str
    name: str
    identity: str
    timing: Timing = field(default_factory=Timing)
    clock: Callable[[], float] = time.monotonic
    _observed: tuple[str, str] = ("", "")  # (holder, renewTime) last seen
    _observed_at: float = 0.0
    _transitions: int = 0

    def _spec(self, *, acquire_time: str) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": _now_micro(),
            "leaseTransitions": self._transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if we hold the Lease afterwards. API errors count as False."""
        try:
            return self._attempt()
        except KubeError as exc:
            logger.debug("leader election: %s", exc)
            return False

    def _attempt(self) -> bool:
        lease = self.kube.get("Lease", self.namespace, self.name)
        if lease is None:
            manifest = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(acquire_time=_now_micro()),
            }
            try:
                self.kube.create(manifest)
            except KubeError as exc:
                if exc.status == 409:  # another candidate created it first
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        now = self.clock()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        ours = holder == self.identity
        expired = now - self._observed_at >= self.timing.lease_duration
        if holder and not ours and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        self._transitions = transitions if ours else transitions + 1
        acquire_time = str(spec.get("acquireTime") or "") if ours else _now_micro()
        lease["spec"] = self._spec(acquire_time=acquire_time or _now_micro())
        try:  # the resourceVersion in `lease` makes this a compare-and-swap
            self.kube.request("PUT", self.kube.path("Lease", self.namespace, self.name), body=lease)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def release(self) -> None:
        """Clear the holder so a successor need not wait out the lease (clean stop only)."""
        try:
            lease = self.kube.get("Lease", self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                path = self.kube.path("Lease", self.namespace, self.name)
                self.kube.request("PUT", path, body=lease)
        except KubeError as exc:
            logger.warning("leader election: could not release the Lease: %s", exc)


async def acquire(elector: Elector) -> None:
    """Wait until this replica leads."""
    logger.info(
        "leader election: %s waiting for Lease %s/%s",
        elector.identity,
        elector.namespace,
        elector.name,
    )
    while not await asyncio.to_thread(elector.try_acquire_or_renew):
        await asyncio.sleep(elector.timing.retry_period)
    metrics.IS_LEADER.set(1)
    metrics.LEADERSHIP_CHANGES.labels(change="acquired").inc()
    logger.info("leader election: %s is now the leader", elector.identity)


async def keep(elector: Elector) -> None:
    """Renew until renewal fails for `renew_deadline`; then return (leadership is lost)."""
    last_renewed = elector.clock()
    while True:
        await asyncio.sleep(elector.timing.retry_period)
        if await asyncio.to_thread(elector.try_acquire_or_renew):
            last_renewed = elector.clock()
        elif elector.clock() - last_renewed >= elector.timing.renew_deadline:
            metrics.IS_LEADER.set(0)
            metrics.LEADERSHIP_CHANGES.labels(change="lost").inc()
            logger.error(
                "leader election: %s lost the Lease (not renewed for %.0f s); stopping",
                elector.identity,
                elector.timing.renew_deadline,
            )
            return


async def standby_health(url: str | None) -> asyncio.Server | None:
    """Answer the liveness/readiness probes (`url`, kopf's endpoint) while waiting to lead.

    kopf serves that endpoint only once it runs, i.e. on the leader; without this a standby
    would fail its liveness probe and be restarted over and over. Any request is answered
    200 "standby"; the caller closes the server before kopf binds the same port."""
    if not url:
        return None
    where = urllib.parse.urlsplit(url)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n"
                b"Connection: close\r\n\r\nstandby\n"
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, where.hostname or "0.0.0.0", where.port or 80)  # noqa: S104
