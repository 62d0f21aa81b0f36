"""The worker against the twins and a real Redis: what is sent, once, and what is not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from leadops.followups import keys
from leadops.followups.keys import Keys
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.suppression import SuppressionList
from leadops.followups.vault import Contact
from tests.fixtures.followups import TENANT, Stack, config_data, load_config, tenant_spec
from tests.fixtures.provider_twins import Twin

pytestmark = pytest.mark.redis


def _stack(redis_url: str, tmp_path: Path, twin: Twin, **spec: object) -> Stack:
    data = config_data({TENANT: tenant_spec(tmp_path, twin, **spec)})  # type: ignore[arg-type]
    return Stack(redis.Redis.from_url(redis_url), load_config(data, tmp_path / "config.json"))


def _schedule(stack: Stack, lead: str, score: float, contact: Contact) -> None:
    job = schedule_follow_up(
        tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys, vault=stack.vault,
        queue=stack.queue, lead_id=lead, score=score, contact=contact, now=stack.now,
    )  # fmt: skip
    assert job is not None


def _claim(stack: Stack, lead: str) -> str:
    value = stack.client.get(Keys.claim(TENANT, stack.keys.lead_ref(TENANT, lead), "1"))
    assert isinstance(value, bytes)
    return value.decode()


def test_sms_rendered_and_sent_once(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    _schedule(stack, "lead-1", 0.9, Contact(phone="+14155550101", name="Ada"))
    _schedule(stack, "lead-1", 0.9, Contact(phone="+14155550101", name="Ada"))  # scored twice
    stack.drain(until=lambda: provider_twin.count_to("+14155550101") >= 1, seconds=5)
    stack.drain(seconds=0.5)
    [message] = provider_twin.accepted
    assert (message.to, message.body) == ("+14155550101", "Hi Ada, thanks for your interest!")
    assert _claim(stack, "lead-1") == f"sent:twilio-0:{message.sid}"


def test_email_through_sendgrid(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    _schedule(stack, "lead-2", 0.5, Contact(email="ada@example.org", name="Ada"))
    stack.drain(until=lambda: provider_twin.accepted, seconds=5)
    [message] = provider_twin.accepted
    assert (message.api, message.to, message.subject) == (
        "sendgrid",
        "ada@example.org",
        "Hello Ada",
    )


def test_email_over_smtp(redis_url: str, tmp_path: Path, provider_twin: Twin, smtp_inbox) -> None:  # type: ignore[no-untyped-def]
    stack = _stack(redis_url, tmp_path, provider_twin, smtp_port=smtp_inbox.port)
    _schedule(stack, "lead-3", 0.5, Contact(email="bob@example.org", name="Bob"))
    stack.drain(until=lambda: smtp_inbox.messages, seconds=5)
    [mail] = smtp_inbox.messages
    assert (mail["To"], mail["Subject"]) == ("bob@example.org", "Hello Bob")
    assert mail.get_payload().strip() == "Dear Bob, here is more."
    assert _claim(stack, "lead-3").startswith("sent:smtp:")


def test_failover_only_while_unaccepted(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin, sms_providers=2)
    provider_twin.fail_next("twilio", 503)  # the first provider refuses; the second accepts
    _schedule(stack, "lead-4", 0.9, Contact(phone="+14155550104", name="Cy"))
    stack.drain(until=lambda: provider_twin.accepted, seconds=5)
    stack.drain(seconds=0.3)
    assert len(provider_twin.accepted) == 1
    assert _claim(stack, "lead-4").startswith("sent:twilio-1:")


def test_retries_then_dead_letter(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    provider_twin.fail_next("twilio", 429, 500)  # attempts 1 and 2 fail, attempt 3 is accepted
    _schedule(stack, "lead-5", 0.9, Contact(phone="+14155550105", name="Di"))
    stack.drain(until=lambda: provider_twin.accepted, seconds=5)
    assert provider_twin.rejected == {429: 1, 500: 1}
    assert len(provider_twin.accepted) == 1

    provider_twin.fail_next("twilio", 500, 500, 500)  # maxAttempts is 3
    _schedule(stack, "lead-6", 0.9, Contact(phone="+14155550106", name="Ed"))
    stack.drain(until=lambda: stack.client.xlen(keys.DEAD_LETTER), seconds=5)
    [dead] = stack.queue.dead_letters()
    assert (dead["reason"], dead["attempts"]) == ("attempts_exhausted", "3")
    assert provider_twin.count_to("+14155550106") == 0


def test_template_error_never_sends(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    # `name` renders on the sample lead at load time; `missing` only fails for this lead's data.
    templates = {
        "hot": {"body": "Hi {{ name }}{% if score > 0.95 %} {{ missing }}{% endif %}"},
        "warm": {"body": "x"},
        "cold": {"body": "x"},
    }
    stack = _stack(redis_url, tmp_path, provider_twin, templates=templates)
    _schedule(stack, "lead-7", 0.99, Contact(phone="+14155550107", name="Fa"))
    stack.drain(until=lambda: stack.client.xlen(keys.DEAD_LETTER), seconds=5)
    assert provider_twin.accepted == []
    assert stack.queue.dead_letters()[0]["reason"] == "template_error"


def test_stop_stops_next_send(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    SuppressionList(stack.client, stack.keys).add(TENANT, "+1 (415) 555-0108")
    _schedule(stack, "lead-8", 0.9, Contact(phone="+14155550108", name="Gil"))
    stack.drain(until=lambda: _claim_or_none(stack, "lead-8"), seconds=5)
    assert _claim(stack, "lead-8") == "suppressed"
    assert provider_twin.accepted == []


def _claim_or_none(stack: Stack, lead: str) -> bytes | None:
    value = stack.client.get(Keys.claim(TENANT, stack.keys.lead_ref(TENANT, lead), "1"))
    return value if isinstance(value, bytes) and not value.startswith(b"pending") else None


def test_quiet_hours_defer_never_drop(redis_url: str, tmp_path: Path, provider_twin: Twin) -> None:
    data = config_data({TENANT: tenant_spec(tmp_path, provider_twin)})
    data["tenants"][TENANT]["quietHours"] = {"start": "08:00", "end": "21:00"}
    stack = Stack(redis.Redis.from_url(redis_url), load_config(data, tmp_path / "c.json"))
    # 23:30 in New York: quiet. The follow-up is scheduled for 08:00 local, not sent, not lost.
    stack.travel_to(datetime(2026, 3, 2, 4, 30, tzinfo=UTC))
    contact = Contact(phone="+12125550109", name="Hu", timezone="America/New_York")
    _schedule(stack, "lead-9", 0.9, contact)
    stack.drain(seconds=0.5)
    assert provider_twin.accepted == []
    scheduled: list[tuple[bytes, float]] = stack.client.zrange(  # type: ignore[assignment]
        keys.SCHEDULED, 0, -1, withscores=True
    )
    [(_job, due)] = scheduled
    assert datetime.fromtimestamp(due, UTC) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    stack.travel_to(datetime(2026, 3, 2, 13, 1, tzinfo=UTC))  # 08:01 local
    stack.drain(until=lambda: provider_twin.accepted, seconds=5)
    assert [m.to for m in provider_twin.accepted] == ["+12125550109"]


def test_whatsapp_template_outside_session(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    _schedule(stack, "lead-10", 0.1, Contact(phone="+14155550110", name="Io"))
    stack.drain(until=lambda: provider_twin.accepted, seconds=5)
    [message] = provider_twin.accepted
    assert (message.content_sid, message.body) == ("HX" + "0" * 32, "")


@pytest.mark.parametrize(
    "case", [(0.9, True, "sent-once-before"), (0.9, False, "sent-now"), (0.5, False, "in_doubt")]
)
def test_a_crash_mid_send_is_resolved_with_the_provider(
    redis_url: str, tmp_path: Path, provider_twin: Twin, case: tuple[float, bool, str]
) -> None:
    """A worker died holding the claim: Twilio is asked whether it has the message (sent: record
    it; not: send it); SendGrid cannot be asked, so the follow-up is dead-lettered in doubt."""
    import time  # noqa: PLC0415

    score, reached_provider, expected = case

    from leadops.followups.providers import OutboundMessage  # noqa: PLC0415

    stack = _stack(redis_url, tmp_path, provider_twin)
    contact = Contact(phone="+14155550120", email="x@example.org", name="Jo")
    _schedule(stack, "lead-20", score, contact)
    answer: Any = stack.client.xreadgroup(keys.GROUP, "dead-worker", {keys.STREAM: ">"}, count=1)
    entry_id = answer[0][1][0][0].decode()
    claim = Keys.claim(TENANT, stack.keys.lead_ref(TENANT, "lead-20"), "1")
    stack.client.set(claim, f"sending:{entry_id}:{time.time():.3f}")
    if reached_provider:  # the dead worker's request got through before it died
        stack.worker().providers[TENANT]["sms"][0].send(
            OutboundMessage(to="+14155550120", body="Hi Jo, thanks for your interest!")
        )
    stack.drain(until=lambda: _claim(stack, "lead-20").startswith(("sent", "dead")),
                seconds=5, claim_idle_ms=100)  # fmt: skip
    state = _claim(stack, "lead-20")
    if expected == "in_doubt":
        assert state == "dead:in_doubt"
        assert provider_twin.accepted == []
    else:
        [message] = provider_twin.accepted
        assert state == f"sent:twilio-0:{message.sid}"


def test_wrong_credentials_are_refused_not_retried(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    provider_twin.accounts = {next(iter(provider_twin.accounts)): "another-token"}
    provider_twin.sendgrid_keys = {"SG.another"}
    stack = _stack(redis_url, tmp_path, provider_twin)
    _schedule(stack, "lead-30", 0.9, Contact(phone="+14155550130", name="Ka"))
    _schedule(stack, "lead-31", 0.5, Contact(email="ka@example.org", name="Ka"))
    stack.drain(until=lambda: stack.client.xlen(keys.DEAD_LETTER) >= 2, seconds=5)
    reasons = sorted((d["channel"], d["reason"], d["attempts"]) for d in stack.queue.dead_letters())
    assert reasons == [("email", "refused", "1"), ("sms", "refused", "1")]
    assert provider_twin.rejected == {401: 2}


def test_a_rotated_away_key_makes_the_contact_unreadable(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    stack = _stack(redis_url, tmp_path, provider_twin)
    _schedule(stack, "lead-20", 0.9, Contact(phone="+14155550120", name="Ro"))
    # The worker's keyring no longer holds k1 (removed before the horizon passed).
    (tmp_path / "rotated").mkdir()
    rotated = config_data({TENANT: tenant_spec(tmp_path / "rotated", provider_twin)})
    rotated["tenants"][TENANT]["vault"]["current"] = "k2"
    rotated["tenants"][TENANT]["vault"]["keyFiles"] = {
        "k2": rotated["tenants"][TENANT]["vault"]["keyFiles"]["k1"]
    }
    later = Stack(stack.client, load_config(rotated, tmp_path / "rotated.json"))
    later.drain(until=lambda: stack.client.xlen(keys.DEAD_LETTER), seconds=5)
    assert provider_twin.accepted == []
    assert stack.queue.dead_letters()[0]["reason"] == "contact_unreadable"
