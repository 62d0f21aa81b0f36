"""The webhooks app: provider callbacks, verified before anything is recorded.

- Twilio (`POST /v1/webhooks/twilio/{tenant}`): status callbacks and inbound messages,
  verified with the SDK's RequestValidator against the tenant's auth token and the public URL
  Twilio called (`statusCallbackBase` + path).
- SendGrid (`POST /v1/webhooks/sendgrid/{tenant}`): the signed event webhook, verified with
  the SDK's EventWebhook (ECDSA P-256) against the tenant's verification key.
- WhatsApp Cloud API (`POST /v1/webhooks/whatsapp/{tenant}`): X-Hub-Signature-256, an
  HMAC-SHA256 of the raw body with the app secret; `GET` answers Meta's subscription check.
- SendGrid Inbound Parse (`POST /v1/webhooks/sendgrid-inbound/{tenant}`): replies to e-mail
  follow-ups (multipart/form-data), authenticated by the basic-auth credentials the URL
  configured in SendGrid carries (leadops.followups.inbound_email).

Unsigned, wrongly signed or unauthenticated: 403 and nothing recorded. The tenant in the
path only chooses which tenant's secret must have signed the request, so a caller cannot
speak for a tenant whose secret it does not hold. STOP-like replies, unsubscribes, spam
reports and bounces feed the suppression list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any, Final

import redis
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from leadops.followups import inbound_email, metrics
from leadops.followups.config import FollowUpsConfig, TwilioProvider, read_secret
from leadops.followups.keys import Keys
from leadops.followups.statuses import StatusBook
from leadops.followups.suppression import SuppressionList, normalize_address

logger = logging.getLogger(__name__)

OPT_OUT: Final = inbound_email.OPT_OUT
SUPPRESSING_EVENTS: Final = frozenset(
    {"unsubscribe", "group_unsubscribe", "spamreport", "bounce", "dropped"}
)
MAX_BODY: Final = 1_000_000
# An Inbound Parse post carries the whole e-mail, attachments too (up to 30 MB): the reply's
# fields come first in practice, and only they are read.
MAX_INBOUND: Final = 4 * 1024 * 1024


class _Secrets:
    """Each tenant's webhook secrets, read from their files once at start."""

    def __init__(self, config: FollowUpsConfig) -> None:
        self.twilio: dict[str, list[str]] = {}
        self.sendgrid: dict[str, EventWebhook] = {}
        self.whatsapp: dict[str, bytes] = {}
        self.whatsapp_verify: dict[str, str] = {}
        self.inbound: dict[str, list[bytes]] = {}  # basic-auth user:password pairs
        self.reply_domain: dict[str, str] = {}
        for tenant, spec in config.tenants.items():
            self.twilio[tenant] = sorted({
                read_secret(p.auth_token_file)
                for specs in spec.providers.values()
                for p in specs
                if isinstance(p, TwilioProvider)
            })  # fmt: skip
            hooks = spec.webhooks
            if hooks.sendgrid_public_key_file:
                self.sendgrid[tenant] = EventWebhook(read_secret(hooks.sendgrid_public_key_file))
            if hooks.whatsapp_app_secret_file:
                self.whatsapp[tenant] = read_secret(hooks.whatsapp_app_secret_file).encode()
            if hooks.whatsapp_verify_token_file:
                self.whatsapp_verify[tenant] = read_secret(hooks.whatsapp_verify_token_file)
            if spec.email_replies is not None:
                self.inbound[tenant] = spec.email_replies.credentials()
                self.reply_domain[tenant] = spec.email_replies.domain


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body's first `limit` bytes; the rest (attachments) is read and dropped."""
    kept: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if size < limit:
            kept.append(chunk[: limit - size])
        size += len(chunk)
    return b"".join(kept)


def _forbidden(provider: str) -> Response:
    metrics.WEBHOOKS.labels(provider=provider, verdict="forbidden").inc()
    return JSONResponse({"error": "signature missing or invalid"}, status_code=403)


def create_app(  # noqa: PLR0915 (the three handlers share the app's state)
    config: FollowUpsConfig, client: redis.Redis, keys_: Keys
) -> Starlette:
    secrets = _Secrets(config)
    book = StatusBook(client, ttl_s=config.horizon_hours * 3600)
    suppression = SuppressionList(client, keys_)
    base = config.status_callback_base.rstrip("/")

    def done(provider: str, verdicts: Sequence[str]) -> Response:
        for verdict in verdicts:
            metrics.WEBHOOKS.labels(provider=provider, verdict=verdict).inc()
        return JSONResponse({"ok": True, "recorded": verdicts.count("recorded")})

    def inbound(tenant: str, sender: str, text: str, *, channel: str) -> str:
        """A reply from a lead: opens the WhatsApp session; an opt-out word suppresses; any
        other reply is the replying lead's (its first reply time, for experiments)."""
        ref = keys_.address_ref(tenant, normalize_address(sender))
        if channel == "whatsapp":
            client.set(Keys.session(tenant, ref), str(time.time()), ex=24 * 3600)
        outcome: metrics.Outcome = "suppressed" if text.strip().upper() in OPT_OUT else "replied"
        if outcome == "suppressed":
            suppression.add(tenant, sender)
        lead = client.get(Keys.sent_to(tenant, ref)) if outcome == "replied" else None
        metrics.count(tenant, channel, outcome)
        with client.pipeline(transaction=True) as tx:
            metrics.tally(tx, tenant, channel, outcome)
            if lead is not None:
                tx.hsetnx(Keys.replies(tenant), _text(lead), f"{time.time():.3f}")
            tx.execute()
        return "recorded" if outcome == "replied" else outcome

    async def twilio(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        tokens = secrets.twilio.get(tenant, [])
        signature = request.headers.get("x-twilio-signature", "")
        raw = await request.body()
        try:  # Twilio posts application/x-www-form-urlencoded; no multipart parser needed
            params = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return _forbidden("twilio")
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not signature or not any(
            RequestValidator(token).validate(url, params, signature) for token in tokens
        ):
            return _forbidden("twilio")
        channel = "whatsapp" if params.get("From", "").startswith("whatsapp:") else "sms"
        if "MessageStatus" in params and params.get("SmsStatus") != "received":
            sid, status = params.get("MessageSid", ""), params["MessageStatus"]
            return done("twilio", [book.record(sid, status, tenant=tenant)])
        if "Body" in params and params.get("From"):
            return done(
                "twilio", [inbound(tenant, params["From"], params["Body"], channel=channel)]
            )
        return JSONResponse({"error": "neither a status callback nor a message"}, status_code=400)

    async def sendgrid(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        verifier = secrets.sendgrid.get(tenant)
        body = await request.body()
        signature = request.headers.get("x-twilio-email-event-webhook-signature", "")
        stamp = request.headers.get("x-twilio-email-event-webhook-timestamp", "")
        try:
            valid = bool(
                verifier is not None
                and signature
                and stamp
                and len(body) <= MAX_BODY
                and verifier.verify_signature(body.decode("utf-8"), signature, stamp)
            )
        except (ValueError, UnicodeDecodeError):  # not base64, not UTF-8
            valid = False
        if not valid:
            return _forbidden("sendgrid")
        try:
            events: Any = json.loads(body)
        except json.JSONDecodeError:
            return JSONResponse({"error": "body is not a JSON array of events"}, status_code=400)
        if not isinstance(events, list):
            return JSONResponse({"error": "body is not a JSON array of events"}, status_code=400)
        verdicts = []
        for event in events:
            if not isinstance(event, dict):
                continue
            kind = str(event.get("event", ""))
            if kind in SUPPRESSING_EVENTS and event.get("email"):
                suppression.add(tenant, str(event["email"]))
                metrics.count(tenant, "email", "suppressed")
            # sg_message_id is the X-Message-Id of the send plus a suffix after a dot.
            message_id = str(event.get("sg_message_id", "")).split(".", 1)[0]
            if message_id:
                verdicts.append(book.record(message_id, kind, tenant=tenant))
        return done("sendgrid", verdicts)

    def email_reply(tenant: str, mail: inbound_email.InboundMail) -> str:
        """A reply to an e-mail follow-up (found by its token): the lead's first reply time
        and the step's; an opt-out suppresses the address the follow-up went to (or, with no
        token, the sender). Neither address is stored: only keyed hashes."""
        ttl = config.horizon_hours * 3600
        seen = None
        if mail.message_id:  # SendGrid redelivers a post it did not see answered 2xx
            seen = Keys.inbound_seen(tenant, keys_.inbound_ref(tenant, mail.message_id))
            if not client.set(seen, "1", nx=True, ex=ttl):
                return "duplicate"
        try:
            return _email_reply(tenant, mail)
        except redis.RedisError:
            if seen is not None:
                client.delete(seen)  # not recorded: a redelivery must try again
            raise

    def _email_reply(tenant: str, mail: inbound_email.InboundMail) -> str:
        token, record = "", {}
        for candidate in mail.tokens:
            found: Any = client.hgetall(Keys.reply(tenant, candidate))
            if found.get(b"lead"):
                token, record = candidate, found
                break
        if mail.opt_out:
            if record:
                suppression.add_ref(tenant, _text(record[b"to"]))
            elif mail.sender:
                suppression.add(tenant, mail.sender)
            else:
                return "unknown"
            metrics.count(tenant, "email", "suppressed")
            with client.pipeline(transaction=True) as tx:
                metrics.tally(tx, tenant, "email", "suppressed")
                tx.execute()
            return "suppressed"
        if not record:  # not an answer to one of our e-mails (or past the horizon)
            return "unknown"
        now = f"{time.time():.3f}"
        with client.pipeline(transaction=True) as tx:
            metrics.tally(tx, tenant, "email", "replied")
            tx.hsetnx(Keys.replies(tenant), _text(record[b"lead"]), now)
            tx.hsetnx(Keys.reply(tenant, token), "replied_at", now)
            tx.execute()
        metrics.count(tenant, "email", "replied")
        return "recorded"

    async def sendgrid_inbound(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        credentials = secrets.inbound.get(tenant)
        if not credentials or not inbound_email.authorized(
            request.headers.get("authorization", ""), credentials
        ):
            return _forbidden("sendgrid_inbound")
        body = await _read_capped(request, MAX_INBOUND)
        try:
            fields = inbound_email.parse_form(body, request.headers.get("content-type", ""))
        except ValueError:
            return JSONResponse({"error": "not an Inbound Parse post"}, status_code=400)
        mail = inbound_email.read(fields, secrets.reply_domain[tenant])
        return done("sendgrid_inbound", [email_reply(tenant, mail)])

    async def whatsapp(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if request.method == "GET":
            token = secrets.whatsapp_verify.get(tenant)
            given = request.query_params.get("hub.verify_token", "")
            if token is None or not hmac.compare_digest(given.encode(), token.encode()):
                return _forbidden("whatsapp")
            return PlainTextResponse(request.query_params.get("hub.challenge", ""))
        secret = secrets.whatsapp.get(tenant)
        body = await request.body()
        header = request.headers.get("x-hub-signature-256", "")
        expected = "sha256=" + hmac.new(secret or b"", body, hashlib.sha256).hexdigest()
        if secret is None or not hmac.compare_digest(header.encode(), expected.encode()):
            return _forbidden("whatsapp")
        try:
            payload: Any = json.loads(body)
            changes = [c["value"] for e in payload.get("entry", []) for c in e.get("changes", [])]
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
            return JSONResponse({"error": "not a WhatsApp Cloud API notification"}, 400)
        verdicts: list[str] = []
        for value in changes:
            for status in value.get("statuses", []):
                sid, state = str(status.get("id", "")), str(status.get("status", ""))
                verdicts.append(book.record(sid, state, tenant=tenant))
            for message in value.get("messages", []):
                text = str((message.get("text") or {}).get("body", ""))
                verdicts.append(inbound(tenant, "+" + str(message.get("from", "")).lstrip("+"),
                                        text, channel="whatsapp"))  # fmt: skip
        return done("whatsapp", verdicts)

    async def metrics_endpoint(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/v1/webhooks/twilio/{tenant}", twilio, methods=["POST"]),
            Route("/v1/webhooks/sendgrid/{tenant}", sendgrid, methods=["POST"]),
            Route("/v1/webhooks/sendgrid-inbound/{tenant}", sendgrid_inbound, methods=["POST"]),
            Route("/v1/webhooks/whatsapp/{tenant}", whatsapp, methods=["GET", "POST"]),
        ]
    )
