"""Replies to e-mail follow-ups through SendGrid's Inbound Parse (multipart/form-data posted
to the webhooks app over HTTP, real redis-server): sent by the SendGrid twin or over SMTP to a
real aiosmtpd, each e-mail carries reply+<token>@domain and a Message-ID with the token; a
reply posted as Inbound Parse posts it is recorded for the right lead and step and counted
`replied`; a redelivery counts once; STOP or unsubscribe suppresses the next send; wrong or
missing basic auth is 403 with nothing recorded; no address is stored, logged or labelled."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY, generate_latest

from leadops.followups.keys import Keys
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.suppression import SuppressionList
from leadops.followups.vault import Contact
from leadops.followups.webhooks import create_app
from tests.fixtures.artifacts import Built
from tests.fixtures.followups import (
    TENANT,
    Stack,
    WebhookServer,
    _Inbox,
    config_data,
    load_config,
    tenant_spec,
    write_secret,
)
from tests.fixtures.planted import leaks, stored_outside_the_vault
from tests.fixtures.provider_twins import Twin, inbound_parse_post
from tests.fixtures.scorer import StartScorer

pytestmark = pytest.mark.redis

DOMAIN = "reply.example.test"
USER, PASSWORD = "sendgrid-parse", "parse-pass-0123456789"


@dataclass
class Replies:
    stack: Stack
    url: str  # the webhooks app

    def inbound(self, *, user: str = USER, password: str = PASSWORD, tenant: str = TENANT) -> str:
        """The URL configured in SendGrid's Inbound Parse settings, credentials included."""
        host = self.url.removeprefix("http://")
        return f"http://{user}:{password}@{host}/v1/webhooks/sendgrid-inbound/{tenant}"


def _replies_spec(tmp_path: Path, twin: Twin, **kwargs: Any) -> dict[str, Any]:
    spec = tenant_spec(tmp_path, twin, **kwargs)
    spec["emailReplies"] = {
        "domain": DOMAIN,
        # Two pairs: a rotation in progress; either authenticates.
        "inboundParseCredentialsFile": write_secret(
            tmp_path, "inbound-parse", f"old-user:old-pass\n{USER}:{PASSWORD}"
        ),
    }
    return spec


@pytest.fixture
def replies(redis_url: str, tmp_path: Path, provider_twin: Twin) -> Iterator[Replies]:
    client = redis.Redis.from_url(redis_url)
    data = config_data({TENANT: _replies_spec(tmp_path, provider_twin)})
    config = load_config(data, tmp_path / "config.json")
    stack = Stack(client, config)
    with WebhookServer(create_app(config, client, stack.keys)) as server:
        yield Replies(stack, server.url)


@pytest.fixture
def smtp_replies(
    redis_url: str, tmp_path: Path, provider_twin: Twin, smtp_inbox: _Inbox
) -> Iterator[Replies]:
    client = redis.Redis.from_url(redis_url)
    port: int = smtp_inbox.port  # type: ignore[attr-defined]
    data = config_data({TENANT: _replies_spec(tmp_path, provider_twin, smtp_port=port)})
    config = load_config(data, tmp_path / "config.json")
    stack = Stack(client, config)
    with WebhookServer(create_app(config, client, stack.keys)) as server:
        yield Replies(stack, server.url)


def _schedule(stack: Stack, lead: str, contact: Contact, *, step: str = "1") -> None:
    schedule_follow_up(
        tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys, vault=stack.vault,
        queue=stack.queue, lead_id=lead, score=0.5, contact=contact, now=stack.now, step=step,
    )  # fmt: skip


def _claim(stack: Stack, lead: str, step: str = "1") -> bytes | None:
    value: Any = stack.client.get(Keys.claim(TENANT, stack.keys.lead_ref(TENANT, lead), step))
    return value  # type: ignore[no-any-return]


def _send(stack: Stack, lead: str, contact: Contact, *, step: str = "1") -> None:
    _schedule(stack, lead, contact, step=step)
    stack.drain(until=lambda: (_claim(stack, lead, step) or b"").startswith(b"sent:"), seconds=5)
    assert (_claim(stack, lead, step) or b"").startswith(b"sent:")


def _reply(sender: str, *, to: str, subject: str, text: str, in_reply_to: str = "") -> EmailMessage:
    """What the lead's mail client sends back: Re: subject, the answer above the quote."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = f"Lead Person <{sender}>", to, f"Re: {subject}"
    mail["Message-ID"] = make_msgid(domain="corpus.example")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(f"{text}\n\nOn Monday, we wrote:\n> Dear someone, here is more.\n")
    return mail


def _replied(tenant: str = TENANT) -> float:
    labels = {"tenant": tenant, "channel": "email", "outcome": "replied"}
    return REGISTRY.get_sample_value("leadops_followups_total", labels) or 0.0


def _snapshot(client: redis.Redis) -> dict[bytes, Any]:
    return {key: client.dump(key) for key in client.scan_iter()}


def test_a_reply_to_a_sendgrid_email_is_recorded_for_its_lead_and_step(
    replies: Replies, provider_twin: Twin
) -> None:
    stack = replies.stack
    _send(stack, "lead-1", Contact(email="Ann.Lead@Corpus.example", name="Ann"))
    [mail] = provider_twin.accepted
    lead_ref = stack.keys.lead_ref(TENANT, "lead-1")
    token = stack.keys.reply_token(TENANT, lead_ref, "1")
    # What SendGrid was asked to send: our reply address and headers with the token.
    assert mail.reply_to == f"reply+{token}@{DOMAIN}"
    assert mail.headers["Message-ID"] == f"<fu.{token}@{DOMAIN}>"
    assert (
        mail.headers["List-Unsubscribe"] == f"<mailto:reply+{token}@{DOMAIN}?subject=unsubscribe>"
    )
    assert token not in lead_ref
    assert "ann" not in token

    before = _replied()
    reply = _reply("ann.lead@corpus.example", to=mail.reply_to, subject=mail.subject,
                   text="Yes please, call me on Tuesday.")  # fmt: skip
    response = inbound_parse_post(replies.inbound(), reply, envelope_to=mail.reply_to)
    assert (response.status_code, response.json()["recorded"]) == (200, 1)
    record: Any = stack.client.hgetall(Keys.reply(TENANT, token))
    assert (record[b"lead"].decode(), record[b"step"]) == (lead_ref, b"1")
    replied_at = float(record[b"replied_at"])
    # The lead's first reply time: what the experiment export's replied_at reads.
    assert float(stack.client.hget(Keys.replies(TENANT), lead_ref) or 0) == replied_at
    assert _replied() == before + 1
    assert stack.client.hget(Keys.stats(TENANT), "email:replied") == b"1"

    # SendGrid redelivers a post it did not see answered: the same reply counts once.
    again = inbound_parse_post(replies.inbound(), reply, envelope_to=mail.reply_to)
    assert (again.status_code, again.json()["recorded"]) == (200, 0)
    assert _replied() == before + 1

    # Raw mode (the whole MIME message as `email`), with an attachment, to a second step.
    _send(stack, "lead-1", Contact(email="ann.lead@corpus.example", name="Ann"), step="2")
    second = provider_twin.accepted[-1]
    token2 = stack.keys.reply_token(TENANT, lead_ref, "2")
    assert second.reply_to == f"reply+{token2}@{DOMAIN}"
    raw = _reply("ann.lead@corpus.example", to=second.reply_to, subject=second.subject,
                 text="Sounds good")  # fmt: skip
    response = inbound_parse_post(replies.inbound(), raw, envelope_to=second.reply_to, raw=True,
                                  attachment=b"\xff\xd8" + b"x" * 50_000)  # fmt: skip
    assert (response.status_code, response.json()["recorded"]) == (200, 1)
    assert stack.client.hexists(Keys.reply(TENANT, token2), "replied_at")
    # The lead's first reply stays its reply time.
    assert float(stack.client.hget(Keys.replies(TENANT), lead_ref) or 0) == replied_at
    assert _replied() == before + 2


def test_wrong_or_missing_auth_is_403_and_records_nothing(
    replies: Replies, provider_twin: Twin
) -> None:
    stack = replies.stack
    _send(stack, "lead-2", Contact(email="bo.lead@corpus.example", name="Bo"))
    [mail] = provider_twin.accepted
    reply = _reply("bo.lead@corpus.example", to=mail.reply_to, subject=mail.subject, text="STOP")
    before, replied = _snapshot(stack.client), _replied()
    no_auth = replies.inbound().replace(f"{USER}:{PASSWORD}@", "")
    bad = [
        inbound_parse_post(no_auth, reply, envelope_to=mail.reply_to),
        inbound_parse_post(replies.inbound(password="guess"), reply, envelope_to=mail.reply_to),
        inbound_parse_post(replies.inbound(user="other"), reply, envelope_to=mail.reply_to),
        inbound_parse_post(replies.inbound(password=""), reply, envelope_to=mail.reply_to),
        # A tenant that does not take replies (or does not exist): never the caller's choice.
        inbound_parse_post(replies.inbound(tenant="other-tenant"), reply,
                           envelope_to=mail.reply_to),
    ]  # fmt: skip
    assert [r.status_code for r in bad] == [403] * len(bad)
    assert _snapshot(stack.client) == before
    assert _replied() == replied
    assert not SuppressionList(stack.client, stack.keys).contains(TENANT, "bo.lead@corpus.example")


def test_stop_or_unsubscribe_by_email_suppresses_the_next_send(
    replies: Replies, provider_twin: Twin
) -> None:
    stack = replies.stack
    suppressed = SuppressionList(stack.client, stack.keys)
    _send(stack, "lead-3", Contact(email="cy.lead@corpus.example", name="Cy"))
    mail = provider_twin.accepted[-1]
    # Replied from another address of theirs: the address we wrote to is suppressed.
    stop = _reply("cy.other@corpus.example", to=mail.reply_to, subject=mail.subject, text="Stop.")
    response = inbound_parse_post(replies.inbound(), stop, envelope_to=mail.reply_to)
    assert (response.status_code, response.json()["recorded"]) == (200, 0)
    assert suppressed.contains(TENANT, "cy.lead@corpus.example")
    assert not stack.client.hexists(Keys.replies(TENANT), stack.keys.lead_ref(TENANT, "lead-3"))
    _schedule(stack, "lead-3", Contact(email="cy.lead@corpus.example", name="Cy"), step="2")
    stack.drain(until=lambda: _claim(stack, "lead-3", "2"), seconds=5)
    assert _claim(stack, "lead-3", "2") == b"suppressed"
    assert provider_twin.count_to("cy.lead@corpus.example") == 1

    # A mail client's unsubscribe button (List-Unsubscribe mailto: subject "unsubscribe").
    _send(stack, "lead-4", Contact(email="di.lead@corpus.example", name="Di"))
    mail = provider_twin.accepted[-1]
    button = EmailMessage()
    button["From"], button["To"] = "di.lead@corpus.example", mail.reply_to
    button["Subject"] = "unsubscribe"
    button.set_content("This message was automatically generated by Gmail.")
    assert inbound_parse_post(replies.inbound(), button, envelope_to=mail.reply_to).is_success
    assert suppressed.contains(TENANT, "di.lead@corpus.example")


def test_a_reply_to_an_smtp_email_matches_by_its_message_id(
    smtp_replies: Replies, smtp_inbox: _Inbox
) -> None:
    stack = smtp_replies.stack
    _send(stack, "lead-5", Contact(email="ed.lead@corpus.example", name="Ed"))
    [sent] = smtp_inbox.messages  # as the real SMTP server received it
    lead_ref = stack.keys.lead_ref(TENANT, "lead-5")
    token = stack.keys.reply_token(TENANT, lead_ref, "1")
    assert sent["Reply-To"] == f"reply+{token}@{DOMAIN}"
    assert sent["Message-ID"] == f"<fu.{token}@{DOMAIN}>"
    assert sent["List-Unsubscribe"]
    # The client ignored Reply-To; the reply reached the reply domain some other way, and
    # only its In-Reply-To/References name our e-mail.
    before = _replied()
    reply = _reply("ed.lead@corpus.example", to=f"hello@{DOMAIN}", subject=str(sent["Subject"]),
                   text="Interested!", in_reply_to=str(sent["Message-ID"]))  # fmt: skip
    response = inbound_parse_post(smtp_replies.inbound(), reply, envelope_to=f"hello@{DOMAIN}")
    assert (response.status_code, response.json()["recorded"]) == (200, 1)
    assert stack.client.hexists(Keys.replies(TENANT), lead_ref)
    assert _replied() == before + 1
    # A mail to the reply domain that answers none of ours is nobody's reply.
    stray = _reply("ed.lead@corpus.example", to=f"hello@{DOMAIN}", subject="hi", text="hello")
    response = inbound_parse_post(smtp_replies.inbound(), stray, envelope_to=f"hello@{DOMAIN}")
    assert (response.status_code, response.json()["recorded"]) == (200, 0)
    assert _replied() == before + 1


CORPUS = [Contact(email=f"planted.replier{i}@corpus.example", name=f"Plantedreplier{i}")
          for i in range(8)]  # fmt: skip


def test_no_replying_address_is_stored_logged_or_labelled(
    replies: Replies, provider_twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = replies.stack
    for i, contact in enumerate(CORPUS):
        _schedule(stack, f"lead-{i}", contact)
    stack.drain(until=lambda: len(provider_twin.accepted) >= len(CORPUS), seconds=10)
    sent = {m.to: m for m in provider_twin.accepted}
    for i, contact in enumerate(CORPUS):
        assert contact.email is not None
        mail = sent[contact.email]
        text = ["Yes, tell me more", "STOP", "unsubscribe", "Call me"][i % 4]
        reply = _reply(contact.email, to=mail.reply_to, subject=mail.subject, text=text)
        assert inbound_parse_post(replies.inbound(), reply, envelope_to=mail.reply_to,
                                  raw=i % 2 == 0).is_success  # fmt: skip
    # An opt-out without any token: its sender is suppressed, by keyed hash only.
    stray = _reply("planted.stranger@corpus.example", to=f"x@{DOMAIN}", subject="x", text="STOP")
    assert inbound_parse_post(replies.inbound(), stray, envelope_to=f"x@{DOMAIN}").is_success
    assert SuppressionList(stack.client, stack.keys).contains(
        TENANT, "planted.stranger@corpus.example"
    )

    stored = b"\n".join(stored_outside_the_vault(stack.client))
    metrics_text = generate_latest(REGISTRY)
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    needles = [b"planted.stranger", b"Plantedreplier"] + [
        part
        for c in CORPUS
        for part in (c.email.encode(), c.email.split("@")[0].encode())  # type: ignore[union-attr]
    ]
    assert leaks(needles, stored=stored, metrics=metrics_text, logs=logs) == []


def test_an_email_reply_shows_in_the_experiment_export(
    start_scorer: StartScorer, good_model: Built, redis_url: str, tmp_path: Path,
    provider_twin: Twin,
) -> None:  # fmt: skip
    from tests.integration.followups.test_from_scorer import (  # noqa: PLC0415
        HOT,
        KEYS,
        NOW_EXPERIMENT,
        _await,
        _jobs,
        _person,
        _score,
    )

    client = redis.Redis.from_url(redis_url)
    rules = [{"minScore": "0.0", "channel": "email", "template": "warm"}]  # due at once
    spec = _replies_spec(tmp_path, provider_twin, name="default", rules=rules)
    config_path = tmp_path / "followups.json"
    config = load_config(config_data({"default": spec}), config_path)
    with WebhookServer(create_app(config, client, KEYS)) as hooks:
        server = start_scorer(
            model=good_model.path,
            redis_url=redis_url,
            followups_config=str(config_path),
            experiment=json.dumps(NOW_EXPERIMENT),
        )
        with server.client(api_key=None) as http:
            replying, silent = (_score(http, HOT | _person(i))["lead_id"] for i in (1, 2))
        _await(lambda: len(_jobs(client)) == 2)
        Stack(client, config, KEYS).drain(until=lambda: len(provider_twin.accepted) >= 2)
        mail = next(m for m in provider_twin.accepted if m.to == _person(1)["email"])
        reply = _reply(_person(1)["email"], to=mail.reply_to, subject=mail.subject, text="Yes!")
        url = f"http://{USER}:{PASSWORD}@{hooks.url.removeprefix('http://')}"
        response = inbound_parse_post(f"{url}/v1/webhooks/sendgrid-inbound/default", reply,
                                      envelope_to=mail.reply_to)  # fmt: skip
        assert response.json()["recorded"] == 1
        with server.client() as http:
            export = http.get("/ops/export/experiment.csv")
        # Erasure takes the reply record with the lead: a later reply belongs to no lead.
        ref = KEYS.lead_ref("default", replying)
        record = Keys.reply("default", KEYS.reply_token("default", ref, "1"))
        assert client.exists(record)
        with server.client(api_key=None) as http:
            assert http.delete(f"/v1/lead/{replying}").status_code == 200
        assert not client.exists(record)
        assert not client.hexists(Keys.replies("default"), ref)
        late = _reply(_person(1)["email"], to=mail.reply_to, subject="x", text="hello again")
        again = inbound_parse_post(
            f"{url}/v1/webhooks/sendgrid-inbound/default", late, envelope_to=mail.reply_to
        )
        assert (again.status_code, again.json()["recorded"]) == (200, 0)
    assert export.status_code == 200, export.text
    rows = {row["lead_id"]: row for row in csv.DictReader(io.StringIO(export.text))}
    assert float(rows[replying]["replied_at"]) >= float(rows[replying]["scored_at"])
    assert rows[silent]["replied_at"] == ""
