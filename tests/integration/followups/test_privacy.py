"""A planted corpus of phone numbers, e-mail addresses and names goes through scheduling,
sending, signed callbacks (STOP, bounces) and dead letters; afterwards none of it appears
anywhere in Redis (key names, values, streams) outside the encrypted vault, in the metrics,
or in a log line."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

from leadops.followups.keys import Keys
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.vault import Contact
from tests.fixtures.followups import TENANT, Stack
from tests.fixtures.planted import leaks, stored_outside_the_vault
from tests.fixtures.provider_twins import ACCOUNT_SID, Twin
from tests.integration.followups.test_webhooks import hooked  # noqa: F401 (fixture)

pytestmark = pytest.mark.redis

CORPUS = [
    Contact(phone=f"+1415555{i:04d}", email=f"planted.person{i}@corpus.example",
            name=f"Plantedname{i}")
    for i in range(40)
]  # fmt: skip


def _needles(contact: Contact) -> list[bytes]:
    assert contact.phone
    assert contact.email
    assert contact.name
    phone, email = contact.phone.encode(), contact.email.encode()
    return [phone, phone[1:], phone[-7:], email, email.split(b"@")[0], contact.name.encode()]


def test_no_planted_contact_outside_the_vault(
    hooked: tuple[Stack, str],  # noqa: F811
    provider_twin: Twin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    stack, url = hooked
    for i, contact in enumerate(CORPUS):
        schedule_follow_up(
            tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys,
            vault=stack.vault, queue=stack.queue, lead_id=f"lead-{i}", score=[0.9, 0.5, 0.1][i % 3],
            contact=contact, now=stack.now,
        )  # fmt: skip
    provider_twin.fail_next("twilio", 429, 500)
    stack.drain(until=lambda: len(provider_twin.accepted) >= len(CORPUS), seconds=15)
    assert len(provider_twin.accepted) == len(CORPUS)
    provider_twin.post_callbacks()
    stops = [(f"{url}/v1/webhooks/twilio/{TENANT}",
              {"AccountSid": ACCOUNT_SID, "From": c.phone or "", "To": "+15005550006",
               "Body": "STOP", "SmsStatus": "received", "MessageSid": f"SM{i:032d}"})
             for i, c in enumerate(CORPUS[:10])]  # fmt: skip
    assert provider_twin.post_callbacks(stops) == [200] * 10
    events = [{"email": m.to, "event": "bounce", "sg_message_id": f"{m.sid}.f"}
              for m in provider_twin.accepted if m.api == "sendgrid"]  # fmt: skip
    body, headers = provider_twin.sendgrid_signed(events)
    assert httpx.post(f"{url}/v1/webhooks/sendgrid/{TENANT}", content=body,
                      headers=headers).status_code == 200  # fmt: skip

    stored = b"\n".join(stored_outside_the_vault(stack.client))
    metrics_text = generate_latest(REGISTRY)
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert stack.client.keys(f"fu:{TENANT}:contact:*")  # the vault is there, encrypted
    needles = [needle for contact in CORPUS for needle in _needles(contact)]
    assert leaks(needles, stored=stored, metrics=metrics_text, logs=logs) == []
    vault_keys: list[bytes] = stack.client.keys("fu:*:contact:*")  # type: ignore[assignment]
    vault_blobs = b"".join(bytes(stack.client.get(k) or b"") for k in vault_keys)  # type: ignore[arg-type]
    for contact in CORPUS:
        assert contact.email is not None
        assert contact.email.encode() not in vault_blobs
    # Erasure: the vault entry goes, and with it every way to reach the contact.
    ref = stack.keys.lead_ref(TENANT, "lead-0")
    assert stack.vault.erase(TENANT, ref)
    assert stack.client.get(Keys.contact(TENANT, ref)) is None
