"""The delivery worker: one consumer of the follow-ups stream.

Per due follow-up: open the contact, check suppression and quiet hours, render, take a rate
slot, then take the idempotency claim of (tenant, lead, step) *before* calling a provider.
Each outcome is written together with the stream acknowledgement in one Redis transaction,
so a crash at any point leaves either the old state (the entry is redelivered) or the new
one, never half. A claim found still "sending" by the same stream entry means a worker died
while a provider may have accepted: the providers are asked (`find`); a message they have is
recorded as sent, one they certainly lack is sent now, and where they cannot tell the
follow-up is dead-lettered as in doubt (sent at most once; never silently lost).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
import redis

from leadops.followups import inbound_email, keys, metrics, templates
from leadops.followups.config import FollowUpsConfig, TenantSpec
from leadops.followups.keys import Keys
from leadops.followups.providers import (
    InDoubt,
    Lookup,
    NotAccepted,
    OutboundMessage,
    Provider,
)
from leadops.followups.queue import FollowUpQueue, Job
from leadops.followups.ratelimit import RateLimitTimeout, TenantRateLimiter
from leadops.followups.rules import QuietHours, next_allowed, session_open, zone_of
from leadops.followups.suppression import SuppressionList, normalize_address
from leadops.followups.vault import Contact, ContactUnreadable, ContactVault

logger = logging.getLogger(__name__)

# Takes the claim when it is free or only pending a retry; else returns what holds it. An
# e-mail with a reply address also records, before any provider sees it, whose reply token
# it carries (KEYS[2]: lead, step, keyed hash of the address), so no reply finds it missing.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if (not v) or string.sub(v, 1, 8) == 'pending:' then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  if KEYS[2] then
    redis.call('HSET', KEYS[2], 'lead', ARGV[3], 'step', ARGV[4], 'to', ARGV[5])
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
  end
  return 'ok'
end
return v
"""
FINAL_STATES = ("sent:", "dead:", "suppressed", "cancelled")


@dataclass
class WorkerOptions:
    consumer: str
    threads: int = 16
    # A pending entry idle this long belongs to a dead worker and is claimed (XAUTOCLAIM).
    claim_idle_ms: int = 60_000
    # How long a thread waits for a rate slot before handing the follow-up back to the
    # schedule: short, so one tenant at its limit never holds the threads other tenants need.
    rate_wait_s: float = 0.05
    block_ms: int = 50
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rng: random.Random = field(default_factory=random.Random)


class Worker:
    def __init__(
        self,
        client: redis.Redis,
        config: FollowUpsConfig,
        *,
        keys_: Keys,
        vault: ContactVault,
        providers: Mapping[str, Mapping[str, Sequence[Provider]]],
        options: WorkerOptions,
    ) -> None:
        self.client = client
        self.config = config
        self.keys = keys_
        self.vault = vault
        self.providers = providers
        self.options = options
        self.queue = FollowUpQueue(client)
        self.suppression = SuppressionList(client, keys_)
        self.limiter = TenantRateLimiter(client)
        self._claim = client.register_script(_CLAIM)
        self._templates: dict[tuple[str, str], tuple[jinja2.Template, jinja2.Template]] = {}
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, max_seconds: float | None = None) -> None:
        self.queue.ensure_group()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        free = threading.Semaphore(self.options.threads)
        next_reclaim = 0.0
        with ThreadPoolExecutor(self.options.threads, thread_name_prefix="followup") as pool:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self.queue.promote(now=self.now())
                batch: list[tuple[str, str]] = []
                if time.monotonic() >= next_reclaim:
                    batch += self._reclaim()
                    next_reclaim = time.monotonic() + self.options.claim_idle_ms / 4000
                batch += self._read(self._free_slots(free))
                for entry_id, job_text in batch:
                    with self._lock:
                        if entry_id in self._in_flight:
                            continue
                        self._in_flight.add(entry_id)
                    free.acquire()
                    pool.submit(self._handle_safely, entry_id, job_text, free)

    def _free_slots(self, free: threading.Semaphore) -> int:
        # Read only as many entries as there are idle threads, so none waits unowned.
        with self._lock:
            return max(1, self.options.threads - len(self._in_flight))

    def _read(self, count: int) -> list[tuple[str, str]]:
        answer: Any = self.client.xreadgroup(
            keys.GROUP,
            self.options.consumer,
            {keys.STREAM: ">"},
            count=count,
            block=self.options.block_ms,
        )
        return [
            (_text(entry_id), _text(fields[b"job"]))
            for _stream, entries in answer or []
            for entry_id, fields in entries
        ]

    def _reclaim(self) -> list[tuple[str, str]]:
        answer: Any = self.client.xautoclaim(
            keys.STREAM,
            keys.GROUP,
            self.options.consumer,
            min_idle_time=self.options.claim_idle_ms,
            start_id="0-0",
            count=100,
        )
        return [(_text(i), _text(f[b"job"])) for i, f in answer[1] if f]

    def _handle_safely(self, entry_id: str, job_text: str, free: threading.Semaphore) -> None:
        try:
            self.handle(entry_id, Job.decode(job_text))
        except Exception:
            # Left unacknowledged: redelivered to a worker after claim_idle_ms.
            logger.exception("Follow-up %s failed; it stays pending for a retry", entry_id)
        finally:
            with self._lock:
                self._in_flight.discard(entry_id)
            free.release()

    def now(self) -> float:
        return self.options.clock().timestamp()

    # -- one follow-up --------------------------------------------------------------------

    def handle(self, entry_id: str, job: Job) -> None:  # noqa: PLR0911 (a guard chain)
        tenant = self.config.tenants.get(job.tenant)
        if tenant is None:
            self._dead(entry_id, job, "unknown_tenant")
            return
        claim_key = Keys.claim(job.tenant, job.lead, job.step)
        raw_state = self.client.get(claim_key)
        state = None if raw_state is None else _text(raw_state)
        if state is not None and state.startswith(f"sending:{entry_id}:"):
            if not self._resolve_doubt(entry_id, job, tenant, state):
                return
        elif state is not None and self._settled(entry_id, job, state):
            return
        try:
            contact = self.vault.get(job.tenant, job.lead)
        except ContactUnreadable:
            self._dead(entry_id, job, "contact_unreadable")
            return
        if contact is None:  # erased, or past the follow-up horizon
            self._finish(entry_id, job, "cancelled", outcome="expired")
            return
        address = contact.email if job.channel == "email" else contact.phone
        if not address:
            self._dead(entry_id, job, "no_address")
            return
        if self.suppression.contains(job.tenant, address):
            self._finish(entry_id, job, "suppressed", outcome="suppressed")
            return
        if self._defer_for_quiet_hours(entry_id, job, contact, tenant.quiet_hours):
            return
        message = self._message(entry_id, job, tenant, contact, address)
        if message is None:
            return
        self._send(entry_id, job, tenant, message)

    def _settled(self, entry_id: str, job: Job, state: str) -> bool:
        """True when the claim already decides this entry (it is acknowledged here)."""
        if state.startswith(FINAL_STATES):
            self.client.xack(keys.STREAM, keys.GROUP, entry_id)
            return True
        if state.startswith(f"sending:{entry_id}:"):
            self._dead(entry_id, job, "in_doubt")
            return True
        if state.startswith("sending:"):  # another entry of the same follow-up is sending it
            self.client.xack(keys.STREAM, keys.GROUP, entry_id)
            return True
        return False

    def _resolve_doubt(self, entry_id: str, job: Job, tenant: TenantSpec, state: str) -> bool:
        """This entry's worker died after taking the claim: ask the providers whether one of
        them accepted the message. Sent: recorded. Certainly not: the claim goes back to
        pending and True (send normally). Cannot tell: dead-lettered as in doubt."""
        since = float(state.rsplit(":", 1)[1])
        try:
            contact = self.vault.get(job.tenant, job.lead)
        except ContactUnreadable:
            contact = None
        address = None
        if contact is not None:
            address = contact.email if job.channel == "email" else contact.phone
        if contact is None or not address:
            self._dead(entry_id, job, "in_doubt")
            return False
        message = self._message(entry_id, job, tenant, contact, address)
        if message is None:
            return False
        for provider in self.providers[job.tenant][job.channel]:
            found = provider.find(message, since=since)
            if found is Lookup.CANNOT_TELL:
                self._dead(entry_id, job, "in_doubt")
                return False
            if isinstance(found, str):
                self._sent(entry_id, job, provider.name, found, to=message.to)
                return False
        self.client.set(Keys.claim(job.tenant, job.lead, job.step), f"pending:{job.attempt}",
                        ex=self.config.horizon_hours * 3600)  # fmt: skip
        return True

    def _defer_for_quiet_hours(
        self, entry_id: str, job: Job, contact: Contact, quiet: QuietHours
    ) -> bool:
        now = self.options.clock()
        opening = next_allowed(now, zone_of(contact.timezone, contact.phone), quiet)
        if opening <= now:
            return False
        with self.client.pipeline(transaction=True) as tx:
            tx.zadd(keys.SCHEDULED, {job.again(due=opening.timestamp(), next_attempt=False)
                                     .encode(): opening.timestamp()})  # fmt: skip
            tx.xack(keys.STREAM, keys.GROUP, entry_id)
            tx.execute()
        metrics.count(job.tenant, job.channel, "deferred")
        return True

    def _compiled(self, job: Job, tenant: TenantSpec) -> tuple[jinja2.Template, jinja2.Template]:
        cache_key = (job.tenant, job.template)
        if cache_key not in self._templates:
            spec = tenant.templates[job.template]
            self._templates[cache_key] = (
                templates.compile_template(spec.subject),
                templates.compile_template(spec.body),
            )
        return self._templates[cache_key]

    def _message(
        self, entry_id: str, job: Job, tenant: TenantSpec, contact: Contact, address: str
    ) -> OutboundMessage | None:
        content_sid = None
        if job.channel == "whatsapp" and not self._session_open(job.tenant, address):
            content_sid = job.content_sid
            if content_sid is None:
                self._dead(entry_id, job, "whatsapp_session_closed")
                return None
        context = {"name": contact.name or "", "score": job.score, "tenant": job.tenant}
        try:
            subject, body = (templates.render(t, context) for t in self._compiled(job, tenant))
        except templates.TemplateRenderError:
            self._dead(entry_id, job, "template_error")
            return None
        callback = ""
        base = self.config.status_callback_base.rstrip("/")
        if base and job.channel in ("sms", "whatsapp"):
            callback = f"{base}/v1/webhooks/twilio/{job.tenant}"
        reply: dict[str, str] = {}
        if job.channel == "email" and tenant.email_replies is not None:
            token = self.keys.reply_token(job.tenant, job.lead, job.step)
            domain = tenant.email_replies.domain
            reply = {
                "reply_to": inbound_email.reply_address(token, domain),
                "message_id": inbound_email.message_id(token, domain),
                "list_unsubscribe": inbound_email.list_unsubscribe(token, domain),
            }
        return OutboundMessage(
            to=address,
            body=body,
            subject=subject,
            content_sid=content_sid,
            status_callback=callback or None,
            tags={"tenant": job.tenant, "step": job.step},
            **reply,
        )

    def _session_open(self, tenant: str, address: str) -> bool:
        ref = self.keys.address_ref(tenant, normalize_address(address))
        last = self.client.get(Keys.session(tenant, ref))
        when = datetime.fromtimestamp(float(_text(last)), UTC) if last is not None else None
        return session_open(when, self.options.clock())

    def _send(self, entry_id: str, job: Job, tenant: TenantSpec, message: OutboundMessage) -> None:
        slot = None
        if tenant.rate_limit_per_second:
            try:
                slot = self.limiter.acquire(
                    job.tenant, tenant.rate_limit_per_second, max_wait_s=self.options.rate_wait_s
                )
            except RateLimitTimeout as full:
                # Capped: a slot still in flight reports its far-off stamp, yet frees on answer.
                delay = min(full.retry_in_s, 0.2)
                self._reschedule(entry_id, job, delay_s=delay, next_attempt=False,
                                 outcome="rate_limited")  # fmt: skip
                return
        held = _text(self._claim(*self._claim_of(entry_id, job, message)))
        if held != "ok":
            if slot:
                self.limiter.release(job.tenant, slot)
            self._settled(entry_id, job, held)
            return
        retryable = False
        try:
            for index, provider in enumerate(self.providers[job.tenant][job.channel]):
                if index:
                    metrics.count(job.tenant, job.channel, "failed_over")
                try:
                    message_id = provider.send(message)
                except NotAccepted as refusal:
                    retryable = retryable or refusal.retryable
                    continue
                except InDoubt:
                    self._dead(entry_id, job, "in_doubt")
                    return
                self._sent(entry_id, job, provider.name, message_id, to=message.to)
                return
        finally:
            if slot:
                self.limiter.release(job.tenant, slot)
        if retryable and job.attempt < self.config.max_attempts:
            self._reschedule(entry_id, job, delay_s=self._backoff(job.attempt), next_attempt=True)
        else:
            self._dead(entry_id, job, "attempts_exhausted" if retryable else "refused")

    def _claim_of(
        self, entry_id: str, job: Job, message: OutboundMessage
    ) -> tuple[list[str], list[str | int]]:
        """The claim script's keys and arguments (with the reply token's record for e-mail)."""
        keys_ = [Keys.claim(job.tenant, job.lead, job.step)]
        args: list[str | int] = [
            f"sending:{entry_id}:{time.time():.3f}",
            self.config.horizon_hours * 3600,
        ]
        if message.reply_to:
            token = self.keys.reply_token(job.tenant, job.lead, job.step)
            keys_.append(Keys.reply(job.tenant, token))
            to_ref = self.keys.address_ref(job.tenant, normalize_address(message.to))
            args += [job.lead, job.step, to_ref]
        return keys_, args

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with half of it jittered so retries of a burst spread out."""
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return float(ceiling / 2 + self.options.rng.uniform(0, ceiling / 2))

    # -- outcomes, each written with the acknowledgement in one transaction --------------

    def _sent(self, entry_id: str, job: Job, provider: str, message_id: str, *, to: str) -> None:
        ttl = self.config.horizon_hours * 3600
        address_ref = self.keys.address_ref(job.tenant, normalize_address(to))
        with self.client.pipeline(transaction=True) as tx:
            # A reply from this address is this lead's (the experiment's reply metric).
            tx.set(Keys.sent_to(job.tenant, address_ref), job.lead, ex=ttl)
            claim = Keys.claim(job.tenant, job.lead, job.step)
            tx.set(claim, f"sent:{provider}:{message_id}", ex=ttl)
            tx.hset(Keys.message(message_id), mapping={
                "tenant": job.tenant, "lead": job.lead, "step": job.step,
                "channel": job.channel, "status": "accepted",
            })  # fmt: skip
            tx.expire(Keys.message(message_id), ttl)
            tx.xack(keys.STREAM, keys.GROUP, entry_id)
            metrics.tally(tx, job.tenant, job.channel, "sent")
            tx.execute()
        metrics.count(job.tenant, job.channel, "sent")
        metrics.ENQUEUE_TO_SEND.labels(channel=job.channel).observe(max(0.0, time.time() - job.due))

    def _reschedule(
        self,
        entry_id: str,
        job: Job,
        *,
        delay_s: float,
        next_attempt: bool,
        outcome: metrics.Outcome | None = None,
    ) -> None:
        due = self.now() + delay_s
        counted = outcome or ("retried" if next_attempt else "deferred")
        with self.client.pipeline(transaction=True) as tx:
            if next_attempt:
                tx.set(Keys.claim(job.tenant, job.lead, job.step), f"pending:{job.attempt + 1}",
                       ex=self.config.horizon_hours * 3600)  # fmt: skip
            tx.zadd(keys.SCHEDULED, {job.again(due=due, next_attempt=next_attempt).encode(): due})
            tx.xack(keys.STREAM, keys.GROUP, entry_id)
            metrics.tally(tx, job.tenant, job.channel, counted)
            tx.execute()
        metrics.count(job.tenant, job.channel, counted)

    def _finish(self, entry_id: str, job: Job, state: str, *, outcome: metrics.Outcome) -> None:
        with self.client.pipeline(transaction=True) as tx:
            tx.set(Keys.claim(job.tenant, job.lead, job.step), state,
                   ex=self.config.horizon_hours * 3600)  # fmt: skip
            tx.xack(keys.STREAM, keys.GROUP, entry_id)
            metrics.tally(tx, job.tenant, job.channel, outcome)
            tx.execute()
        metrics.count(job.tenant, job.channel, outcome)

    def _dead(self, entry_id: str, job: Job, reason: str) -> None:
        with self.client.pipeline(transaction=True) as tx:
            tx.set(Keys.claim(job.tenant, job.lead, job.step), f"dead:{reason}",
                   ex=self.config.horizon_hours * 3600)  # fmt: skip
            tx.xadd(keys.DEAD_LETTER, {
                "tenant": job.tenant, "lead": job.lead, "step": job.step, "channel": job.channel,
                "reason": reason, "attempts": str(job.attempt), "stream_id": entry_id,
            }, maxlen=100_000, approximate=True)  # fmt: skip
            tx.xack(keys.STREAM, keys.GROUP, entry_id)
            metrics.tally(tx, job.tenant, job.channel, "dead_lettered")
            tx.execute()
        metrics.count(job.tenant, job.channel, "dead_lettered")
        logger.warning(
            "Dead-lettered a %s follow-up of tenant %s: %s", job.channel, job.tenant, reason
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
