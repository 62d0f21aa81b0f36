"""Signed provider callbacks into the webhooks app (uvicorn, real Redis): verified before anything
is recorded, deduplicated, never regressing, and feeding the suppression list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from leadops.followups.keys import Keys
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.statuses import StatusBook
from leadops.followups.suppression import SuppressionList
from leadops.followups.vault import Contact
from leadops.followups.webhooks import create_app
from tests.fixtures.followups import (
    TENANT,
    Stack,
    WebhookServer,
    config_data,
    load_config,
    tenant_spec,
)
from tests.fixtures.provider_twins import (
    ACCOUNT_SID,
    WHATSAPP_APP_SECRET,
    Twin,
    twilio_signature,
    whatsapp_signature,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def hooked(redis_url: str, tmp_path: Path, provider_twin: Twin) -> Iterator[tuple[Stack, str]]:
    """A stack whose providers post callbacks to a live webhooks app; yields (stack, app URL)."""
    client = redis.Redis.from_url(redis_url)
    draft = load_config(config_data({TENANT: tenant_spec(tmp_path, provider_twin)}),
                        tmp_path / "draft.json")  # fmt: skip
    app_holder: dict[str, Any] = {}

    async def late_app(scope: Any, receive: Any, send: Any) -> None:
        await app_holder["app"](scope, receive, send)

    with WebhookServer(late_app) as server:
        data = config_data({TENANT: tenant_spec(tmp_path, provider_twin)},
                           statusCallbackBase=server.url)  # fmt: skip
        config = load_config(data, tmp_path / "config.json")
        stack = Stack(client, config)
        app_holder["app"] = create_app(config, client, stack.keys)
        assert draft.tenants
        yield stack, server.url


def _snapshot(client: redis.Redis) -> dict[bytes, Any]:
    return {key: client.dump(key) for key in client.scan_iter()}


def _send(stack: Stack, twin: Twin, lead: str, score: float, contact: Contact) -> str:
    schedule_follow_up(
        tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys, vault=stack.vault,
        queue=stack.queue, lead_id=lead, score=score, contact=contact, now=stack.now,
    )  # fmt: skip
    before = len(twin.accepted)
    stack.drain(until=lambda: len(twin.accepted) > before, seconds=5)
    return twin.accepted[-1].sid


def test_status_callbacks_dedupe_and_never_regress(
    hooked: tuple[Stack, str], provider_twin: Twin
) -> None:
    stack, _url = hooked
    sid = _send(stack, provider_twin, "lead-1", 0.9, Contact(phone="+14155550111", name="A"))
    sent, delivered = provider_twin.outbox
    provider_twin.outbox.clear()
    # Out of order, then a duplicate: delivered stays.
    assert provider_twin.post_callbacks([delivered, sent, delivered]) == [200, 200, 200]
    book = StatusBook(stack.client, ttl_s=60)
    assert book.status(sid) == "delivered"
    failed = (delivered[0], {**delivered[1], "MessageStatus": "failed", "SmsStatus": "failed"})
    provider_twin.post_callbacks([failed])
    assert book.status(sid) == "failed"
    provider_twin.post_callbacks([(delivered[0], {**delivered[1], "MessageStatus": "read"})])
    assert book.status(sid) == "failed"  # terminal


def test_unsigned_or_wrongly_signed_is_403_and_records_nothing(
    hooked: tuple[Stack, str], provider_twin: Twin
) -> None:
    stack, url = hooked
    sid = _send(stack, provider_twin, "lead-2", 0.9, Contact(phone="+14155550112", name="B"))
    callback_url, params = provider_twin.outbox[-1]
    stop = {"AccountSid": ACCOUNT_SID, "From": "+14155550112", "To": "+15005550006",
            "Body": "STOP", "MessageSid": "SM" + "1" * 32, "SmsStatus": "received"}  # fmt: skip
    before = _snapshot(stack.client)
    bad = [
        httpx.post(callback_url, data=params),  # unsigned
        httpx.post(callback_url, data=params, headers={"X-Twilio-Signature": "AAAA"}),
        httpx.post(callback_url, data={**params, "MessageStatus": "failed"},  # altered
                   headers={"X-Twilio-Signature": twilio_signature(
                       "twin-auth-token-0123456789abcdef", callback_url, params)}),
        httpx.post(callback_url, data=stop, headers={"X-Twilio-Signature": twilio_signature(
            "someone-elses-token", callback_url, stop)}),
        httpx.post(f"{url}/v1/webhooks/sendgrid/{TENANT}", content=b"[]"),
        httpx.post(f"{url}/v1/webhooks/whatsapp/{TENANT}", content=b"{}",
                   headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        httpx.post(f"{url}/v1/webhooks/twilio/other-tenant", data=params, headers={
            "X-Twilio-Signature": twilio_signature(
                "twin-auth-token-0123456789abcdef", callback_url, params)}),
    ]  # fmt: skip
    assert [r.status_code for r in bad] == [403] * len(bad)
    assert _snapshot(stack.client) == before
    assert StatusBook(stack.client, ttl_s=60).status(sid) == "accepted"


def test_stop_reply_suppresses_the_next_send(
    hooked: tuple[Stack, str], provider_twin: Twin
) -> None:
    stack, url = hooked
    _send(stack, provider_twin, "lead-3", 0.9, Contact(phone="+14155550113", name="C"))
    inbound_url = f"{url}/v1/webhooks/twilio/{TENANT}"
    stop = {"AccountSid": ACCOUNT_SID, "From": "+14155550113", "To": "+15005550006",
            "Body": " stop ", "MessageSid": "SM" + "2" * 32, "SmsStatus": "received"}  # fmt: skip
    assert provider_twin.post_callbacks([(inbound_url, stop)]) == [200]
    assert SuppressionList(stack.client, stack.keys).contains(TENANT, "+14155550113")
    schedule_follow_up(
        tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys, vault=stack.vault,
        queue=stack.queue, lead_id="lead-3", score=0.9, step="2",
        contact=Contact(phone="+14155550113", name="C"), now=stack.now,
    )  # fmt: skip
    claim = Keys.claim(TENANT, stack.keys.lead_ref(TENANT, "lead-3"), "2")
    stack.drain(until=lambda: stack.client.get(claim), seconds=5)
    assert stack.client.get(claim) == b"suppressed"
    assert provider_twin.count_to("+14155550113") == 1


def test_whatsapp_outside_the_window_fails_with_63016(
    hooked: tuple[Stack, str], provider_twin: Twin
) -> None:
    stack, url = hooked
    # The lead wrote on WhatsApp (a signed Cloud API notification): our session is open, so a
    # free-form body goes out; the provider's own window has closed, so it fails with 63016.
    note = {"entry": [{"changes": [{"value": {"messages": [
        {"from": "14155550114", "type": "text", "text": {"body": "hello"}}]}}]}]}  # fmt: skip
    body = json.dumps(note).encode()
    response = httpx.post(f"{url}/v1/webhooks/whatsapp/{TENANT}", content=body,
                          headers={"X-Hub-Signature-256": whatsapp_signature(
                              WHATSAPP_APP_SECRET, body)})  # fmt: skip
    assert response.status_code == 200
    sid = _send(stack, provider_twin, "lead-4", 0.1, Contact(phone="+14155550114", name="D"))
    assert provider_twin.accepted[-1].body == "Hi D, still there?"
    [(_, params)] = provider_twin.outbox
    assert (params["MessageStatus"], params["ErrorCode"]) == ("failed", "63016")
    assert provider_twin.post_callbacks() == [200]
    assert StatusBook(stack.client, ttl_s=60).status(sid) == "failed"


def test_sendgrid_events_verified_and_bounce_suppresses(
    hooked: tuple[Stack, str], provider_twin: Twin
) -> None:
    stack, url = hooked
    sid = _send(stack, provider_twin, "lead-5", 0.5, Contact(email="E@Example.org", name="E"))
    events = [
        {"email": "e@example.org", "event": "delivered", "sg_message_id": f"{sid}.filter0001"},
        {"email": "e@example.org", "event": "open", "sg_message_id": f"{sid}.filter0001"},
        {"email": "e@example.org", "event": "bounce", "sg_message_id": f"{sid}.filter0002"},
    ]
    body, headers = provider_twin.sendgrid_signed(events)
    hook = f"{url}/v1/webhooks/sendgrid/{TENANT}"
    tampered = body.replace(b"bounce", b"click")
    assert httpx.post(hook, content=tampered, headers=headers).status_code == 403
    assert not SuppressionList(stack.client, stack.keys).contains(TENANT, "e@example.org")
    response = httpx.post(hook, content=body, headers=headers)
    assert (response.status_code, response.json()["recorded"]) == (200, 3)
    assert StatusBook(stack.client, ttl_s=60).status(sid) == "bounce"
    assert SuppressionList(stack.client, stack.keys).contains(TENANT, "e@example.org")
    again = httpx.post(hook, content=body, headers=headers)  # a redelivery: all duplicates
    assert again.json()["recorded"] == 0


def test_whatsapp_subscription_check_needs_the_verify_token(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    from tests.fixtures.followups import write_secret  # noqa: PLC0415

    spec = tenant_spec(tmp_path, provider_twin)
    spec["webhooks"]["whatsappVerifyTokenFile"] = write_secret(tmp_path, "verify", "v-token-1")
    config = load_config(config_data({TENANT: spec}), tmp_path / "c.json")
    app = create_app(config, redis.Redis.from_url(redis_url), Keys(b"s" * 16))
    with WebhookServer(app) as server:
        hook = f"{server.url}/v1/webhooks/whatsapp/{TENANT}"
        good = {"hub.mode": "subscribe", "hub.verify_token": "v-token-1", "hub.challenge": "42"}
        assert httpx.get(hook, params=good).text == "42"
        wrong = httpx.get(hook, params={**good, "hub.verify_token": "guess"})
        assert wrong.status_code == 403
        other = httpx.get(f"{server.url}/v1/webhooks/whatsapp/other", params=good)
        assert other.status_code == 403


@pytest.mark.parametrize("event", ["spamreport", "unsubscribe", "group_unsubscribe", "dropped"])
def test_sendgrid_consent_events_suppress_the_address(
    hooked: tuple[Stack, str], provider_twin: Twin, event: str
) -> None:
    stack, url = hooked
    body, headers = provider_twin.sendgrid_signed(
        [{"email": "F@Example.org", "event": event, "sg_message_id": "m1.f"}]
    )
    assert httpx.post(f"{url}/v1/webhooks/sendgrid/{TENANT}", content=body,
                      headers=headers).status_code == 200  # fmt: skip
    assert SuppressionList(stack.client, stack.keys).contains(TENANT, "f@example.org")
