"""Write-behind for follow-ups: a scored lead's follow-up is scheduled off the request's path.

`scoring.answer_lead` hands `submit()` the lead (its phone, e-mail and name as sent, before
any redaction), its score and its experiment flags; a background task decides each follow-up
by the tenant's rules (leadops.followups.rules), seals the contact into the vault and queues
the job: one Redis round trip (a pipeline) per batch, as the lead records' writer does.

The buffer is bounded. A full buffer drops the follow-up (counted in
`leadops_followups_dropped_total{reason="queue_full"}`, the contact forgotten) and never blocks
or fails the lead; a batch Redis does not take is dropped too (`reason="store_error"`; part of
it may have landed). A contact lives in this process's memory only until its batch is written
or dropped: never in the lead record, a log line or a metric label.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from redis import asyncio as aioredis

from leadops.contract.lead import Lead
from leadops.followups import config as followups_config
from leadops.followups import schedule
from leadops.followups.keys import SCHEDULED, STREAM, Keys
from leadops.followups.vault import Contact, Keyring
from leadops.scorer import metrics

logger = logging.getLogger(__name__)

MAX_BATCH: Final = 256
# After the first follow-up of a batch arrives, wait this long for more (as the record writer).
LINGER_SECONDS: Final = 0.005
# The experiment flag that replaces the rule's delay for the leads of a variant.
DELAY_FLAG: Final = "followUpDelayMinutes"
MAX_DELAY_MINUTES: Final = 60 * 24 * 30  # as a rule's delayMinutes
# An attribute naming the lead's IANA time zone (quiet hours); else its phone's region.
TIMEZONE_ATTRIBUTE: Final = "timezone"


@dataclass(frozen=True, slots=True)
class Pending:
    """One follow-up to schedule; `contact` is the only copy of the lead's contact data."""

    tenant: str
    lead_id: str
    score: float
    contact: Contact
    scored_at: float  # unix seconds
    delay_minutes: int | None


@dataclass(frozen=True)
class FollowUpRules:
    """The follow-ups config the worker reads (LEADOPS_FOLLOWUPS_CONFIG), its vault keys and
    the key salt the lead references are hashed with."""

    config: followups_config.FollowUpsConfig
    keyrings: dict[str, Keyring]
    keys: Keys

    @classmethod
    def load(cls, path: Path, *, salt: bytes | None) -> FollowUpRules:
        """Raises ConfigError or VaultKeyError (a bad config or key file stops the start)."""
        config = followups_config.load(path)
        return cls(config=config, keyrings=followups_config.keyrings(config), keys=Keys(salt))


def delay_flag(flags: dict[str, str] | None) -> int | None:
    """The variant's `followUpDelayMinutes` as minutes; None when absent or not a valid delay."""
    raw = None if flags is None else flags.get(DELAY_FLAG)
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    minutes = int(raw)
    return minutes if minutes <= MAX_DELAY_MINUTES else None


def contact_of(lead: Lead) -> Contact | None:
    """The lead's contact as sent; None when it has neither a phone number nor an address."""
    if not lead.phone and not lead.email:
        return None
    zone = lead.attributes.get(TIMEZONE_ATTRIBUTE)
    return Contact(
        phone=lead.phone or None,
        email=lead.email or None,
        name=lead.name or None,
        timezone=zone if isinstance(zone, str) and zone else None,
    )


class FollowUpWriter:
    """Buffer of follow-ups to schedule and the task that writes them to Redis in batches."""

    def __init__(
        self,
        client: aioredis.Redis,
        rules: FollowUpRules,
        *,
        m: metrics.Metrics,
        capacity: int,
    ) -> None:
        self._client = client
        self.rules = rules
        self._metrics = m
        self._capacity = capacity
        self._ttl_s = rules.config.horizon_hours * 3600
        self._buffer: list[Pending] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        for reason in ("queue_full", "store_error"):  # at 0 from the start, for increase()
            m.followups_dropped.labels(reason=reason)

    def submit(
        self, lead: Lead, *, lead_id: str, score: float, flags: dict[str, str] | None
    ) -> None:
        """Queue the lead's follow-up if its tenant has rules and it has a contact; never
        blocks, never raises for a full buffer (the follow-up is dropped and counted)."""
        tenant = lead.tenant
        if tenant not in self.rules.config.tenants:
            return
        contact = contact_of(lead)
        if contact is None:
            self._metrics.followups_skipped.labels(reason="no_contact").inc()
            return
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            self._metrics.followups_dropped.labels(reason="queue_full").inc()
            return
        if not buffer:
            self._wake.set()
        self._idle.clear()
        buffer.append(Pending(tenant, lead_id, score, contact, time.time(), delay_flag(flags)))

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="leadops-followup-writer")

    async def stop(self) -> None:
        """Write what is buffered, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    async def idle(self) -> None:
        """Return once every follow-up submitted so far is written or dropped."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._buffer) < MAX_BATCH and not self._stopping:
                await asyncio.sleep(LINGER_SECONDS)
            taken, self._buffer = self._buffer, []
            for start in range(0, len(taken), MAX_BATCH):
                await self._write(taken[start : start + MAX_BATCH])

    async def _write(self, batch: list[Pending]) -> None:
        m = self._metrics
        pipe = self._client.pipeline(transaction=False)
        later: dict[str, float] = {}  # one ZADD for the batch's scheduled jobs
        channels: Counter[str] = Counter()
        for item in batch:
            try:
                scheduled = self._prepare(item)
            except Exception:  # a bug in one lead's rules must not lose the batch
                m.followups_dropped.labels(reason="error").inc()
                logger.exception("Follow-up not scheduled for a lead of tenant %s", item.tenant)
                continue
            if scheduled is None:
                m.followups_skipped.labels(reason="below_bands").inc()
                continue
            pipe.set(scheduled.contact_key, scheduled.sealed, ex=self._ttl_s)
            if scheduled.queue_key == STREAM:
                pipe.xadd(STREAM, {"job": scheduled.job.encode()})
            else:
                later[scheduled.job.encode()] = scheduled.job.due
            channels[scheduled.job.channel] += 1
        if not channels:
            return
        if later:
            pipe.zadd(SCHEDULED, later)
        try:
            await pipe.execute()
        except Exception as exc:  # Redis down or slow: these follow-ups are lost, and counted
            lost = channels.total()
            m.followups_dropped.labels(reason="store_error").inc(lost)
            logger.warning(
                "Dropped %d follow-up(s): Redis did not take them (%s)", lost, type(exc).__name__
            )
            return
        for channel, n in channels.items():
            m.followups_scheduled.labels(channel=channel).inc(n)

    def _prepare(self, item: Pending) -> schedule.Scheduled | None:
        rules = self.rules
        return schedule.prepare(
            tenant=item.tenant,
            spec=rules.config.tenants[item.tenant],
            keys_=rules.keys,
            keyring=rules.keyrings[item.tenant],
            lead_id=item.lead_id,
            score=item.score,
            contact=item.contact,
            now=datetime.fromtimestamp(item.scored_at, UTC),
            delay_override_minutes=item.delay_minutes,
        )
