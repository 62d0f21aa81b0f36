"""Scheduling a follow-up for a scored lead: the contact goes into the vault, a job naming the
lead by its keyed hash goes onto the queue. Called by whatever scores the lead: one at a time
(`schedule_follow_up`), or prepared here and written in batches (the scorer's writer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadops.followups.config import TenantSpec
from leadops.followups.keys import SCHEDULED, STREAM, Keys
from leadops.followups.queue import FollowUpQueue, Job
from leadops.followups.rules import decide, zone_of
from leadops.followups.vault import Contact, ContactVault, Keyring, seal


@dataclass(frozen=True, slots=True)
class Scheduled:
    """What one follow-up writes: the sealed contact at `contact_key`, the job at `queue_key`
    (the stream when due now, else the schedule)."""

    job: Job
    contact_key: str
    sealed: bytes
    queue_key: str


def prepare(
    *,
    tenant: str,
    spec: TenantSpec,
    keys_: Keys,
    keyring: Keyring,
    lead_id: str,
    score: float,
    contact: Contact,
    now: datetime,
    step: str = "1",
    delay_override_minutes: int | None = None,
) -> Scheduled | None:
    """The follow-up of the lead, sealed and ready to write; None below every rule's band."""
    decision = decide(
        spec.rules,
        score=score,
        now=now,
        zone=zone_of(contact.timezone, contact.phone),
        quiet=spec.quiet_hours,
        delay_override_minutes=delay_override_minutes,
    )
    if decision is None:
        return None
    lead_ref = keys_.lead_ref(tenant, lead_id)
    job = Job(
        tenant=tenant,
        lead=lead_ref,
        step=step,
        channel=decision.rule.channel,
        template=decision.rule.template,
        due=decision.due.timestamp(),
        score=score,
        content_sid=decision.rule.whatsapp_content_sid,
    )
    return Scheduled(
        job=job,
        contact_key=Keys.contact(tenant, lead_ref),
        sealed=seal(keyring, tenant, lead_ref, contact),
        queue_key=STREAM if job.due <= now.timestamp() else SCHEDULED,
    )


def schedule_follow_up(
    *,
    tenant: str,
    spec: TenantSpec,
    keys_: Keys,
    vault: ContactVault,
    queue: FollowUpQueue,
    lead_id: str,
    score: float,
    contact: Contact,
    now: datetime,
    step: str = "1",
    delay_override_minutes: int | None = None,
) -> Job | None:
    """The job scheduled for the lead, None when its score is below every rule's band."""
    scheduled = prepare(
        tenant=tenant, spec=spec, keys_=keys_, keyring=vault.keyrings[tenant], lead_id=lead_id,
        score=score, contact=contact, now=now, step=step,
        delay_override_minutes=delay_override_minutes,
    )  # fmt: skip
    if scheduled is None:
        return None
    vault.client.set(scheduled.contact_key, scheduled.sealed, ex=vault.ttl_s)
    queue.enqueue(scheduled.job, now=now.timestamp())
    return scheduled.job
