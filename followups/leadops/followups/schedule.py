"""Scheduling a follow-up for a scored lead: the contact goes into the vault, a job naming the
lead by its keyed hash goes onto the queue. Called by whatever scores the lead."""

from __future__ import annotations

from datetime import datetime

from leadops.followups.config import TenantSpec
from leadops.followups.keys import Keys
from leadops.followups.queue import FollowUpQueue, Job
from leadops.followups.rules import decide, zone_of
from leadops.followups.vault import Contact, ContactVault


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
    vault.put(tenant, lead_ref, contact)
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
    queue.enqueue(job, now=now.timestamp())
    return job
