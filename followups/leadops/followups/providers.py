"""Providers behind one small interface: `send(message) -> provider message id`.

Each provider goes through its official SDK (Twilio for SMS and WhatsApp, SendGrid for
e-mail) or smtplib, and sorts every failure into one of two answers the worker acts on:

- NotAccepted: the provider certainly did not take the message (429, 5xx, a 4xx refusal, the
  connection never opened). The next provider may try; `retryable` says whether a later
  attempt can succeed.
- InDoubt: the request may have reached the provider (a read timeout, a connection dropped
  mid-request). Nothing else is tried: sending again could send twice.

After a worker crashed mid-send, `find` asks the provider whether it has the message (Twilio
can list messages by recipient); where it cannot tell, the follow-up is dead-lettered.
"""

from __future__ import annotations

import logging
import re
import smtplib
import threading
import urllib.error
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from enum import Enum
from typing import Any, Protocol

import requests
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

TWILIO_ORIGIN = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
# The SDKs log each request's payload (addresses, message bodies) at DEBUG/INFO: never
# below WARNING, whatever the root level, so no contact data reaches a log line.
for _sdk_logger in ("twilio.http_client", "python_http_client.client", "sendgrid"):
    logging.getLogger(_sdk_logger).setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    to: str  # phone number (E.164) or e-mail address
    body: str
    subject: str = ""
    # WhatsApp outside the session window: an approved template instead of `body`.
    content_sid: str | None = None
    status_callback: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # E-mail: where replies go (reply+<token>@domain) and the Message-ID and List-Unsubscribe
    # headers carrying the same token (leadops.followups.inbound_email).
    reply_to: str | None = None
    message_id: str | None = None
    list_unsubscribe: str | None = None


class NotAccepted(Exception):
    def __init__(self, reason: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status


class InDoubt(Exception):
    """The provider may have accepted the message; the worker dead-letters it for a human."""


class Lookup(Enum):
    NOT_SENT = "not_sent"
    CANNOT_TELL = "cannot_tell"


class Provider(Protocol):
    name: str

    def send(self, message: OutboundMessage) -> str: ...

    def find(self, message: OutboundMessage, *, since: float) -> str | Lookup:
        """After a crash mid-send: the id of `message` if the provider accepted it at or after
        `since` (unix seconds), else whether it certainly did not or cannot tell."""
        ...


def _status_retryable(status: int) -> bool:
    return status == 429 or status >= 500


class _BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to `base_url` instead of https://*.twilio.com (a
    regional edge, a proxy, or the test twin)."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, TWILIO_ORIGIN.sub(self.base_url, url), *args, **kwargs)


class TwilioMessages:
    """SMS, or WhatsApp when `whatsapp` is set (addresses get Twilio's `whatsapp:` prefix)."""

    def __init__(
        self,
        *,
        name: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        whatsapp: bool = False,
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._sender = sender
        self._whatsapp = whatsapp
        self._base_url = base_url
        self._timeout_s = timeout_s
        # requests.Session is not documented thread-safe: one SDK client per worker thread.
        self._local = threading.local()

    def _client(self) -> TwilioClient:
        client: TwilioClient | None = getattr(self._local, "client", None)
        if client is None:
            http = (
                _BaseUrlHttpClient(self._base_url, timeout=self._timeout_s)
                if self._base_url
                else TwilioHttpClient(timeout=self._timeout_s)
            )
            client = TwilioClient(self._account_sid, self._auth_token, http_client=http)
            self._local.client = client
        return client

    def _address(self, number: str) -> str:
        return f"whatsapp:{number}" if self._whatsapp else number

    def send(self, message: OutboundMessage) -> str:
        args: dict[str, Any] = {
            "to": self._address(message.to),
            "from_": self._address(self._sender),
        }
        if message.content_sid:
            args["content_sid"] = message.content_sid
        else:
            args["body"] = message.body
        if message.status_callback:
            args["status_callback"] = message.status_callback
        try:
            created = self._client().messages.create(**args)
        except TwilioRestException as exc:
            raise NotAccepted(
                f"{self.name}: HTTP {exc.status} code {exc.code}",
                retryable=_status_retryable(exc.status),
                status=exc.status,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise NotAccepted(f"{self.name}: connection refused", retryable=True) from None
            raise InDoubt(f"{self.name}: connection lost mid-request") from None
        except requests.exceptions.Timeout:
            raise InDoubt(f"{self.name}: no answer within {self._timeout_s}s") from None
        return str(created.sid)

    def find(self, message: OutboundMessage, *, since: float) -> str | Lookup:
        # Newest first; date_created (not DateSent, which stays empty while queued) decides.
        try:
            recent = self._client().messages.list(to=self._address(message.to), limit=20)
        except (TwilioRestException, requests.exceptions.RequestException):
            return Lookup.CANNOT_TELL
        for found in recent:
            created = found.date_created.timestamp() if found.date_created else 0.0
            same = (found.body or "") == message.body or (
                message.content_sid is not None and not message.body
            )
            if created >= since - 1 and same:  # Twilio's dates have whole seconds
                return str(found.sid)
        return Lookup.NOT_SENT


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc.args)
    return "NewConnectionError" in text or "Connection refused" in text


class SendGridMail:
    def __init__(
        self,
        *,
        name: str,
        api_key: str,
        sender: str,
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._sender = sender
        self._client = SendGridAPIClient(api_key, host=base_url or "https://api.sendgrid.com")
        self._client.client.timeout = timeout_s

    def send(self, message: OutboundMessage) -> str:
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": {"email": self._sender},
            "subject": message.subject,
            "content": [{"type": "text/plain", "value": message.body}],
        }
        if message.tags:
            body["custom_args"] = message.tags
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        headers = {
            name: value
            for name, value in (
                ("Message-ID", message.message_id),
                ("List-Unsubscribe", message.list_unsubscribe),
            )
            if value
        }
        if headers:
            body["headers"] = headers
        try:
            response = self._client.send(body)
        except http_errors.HTTPError as exc:
            status = int(exc.status_code)
            raise NotAccepted(
                f"{self.name}: HTTP {status}", retryable=_status_retryable(status), status=status
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                raise NotAccepted(f"{self.name}: connection refused", retryable=True) from None
            raise InDoubt(f"{self.name}: connection lost mid-request") from None
        except (TimeoutError, ConnectionError):
            raise InDoubt(f"{self.name}: no answer or connection lost") from None
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            raise InDoubt(f"{self.name}: accepted without an X-Message-Id")
        return str(message_id)

    def find(self, message: OutboundMessage, *, since: float) -> str | Lookup:
        return Lookup.CANNOT_TELL  # no lookup by recipient in the v3 mail API


class SmtpMail:
    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._host, self._port = host, port
        self._sender = sender
        self._login = (username, password) if username and password else None
        self._starttls = starttls
        self._timeout_s = timeout_s

    def send(self, message: OutboundMessage) -> str:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self._sender, message.to, message.subject
        message_id = message.message_id or make_msgid(
            domain=self._sender.rpartition("@")[2] or None
        )
        mail["Message-ID"] = message_id
        if message.reply_to:
            mail["Reply-To"] = message.reply_to
        if message.list_unsubscribe:
            mail["List-Unsubscribe"] = message.list_unsubscribe
        mail.set_content(message.body)
        try:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
        except OSError:
            raise NotAccepted(f"{self.name}: cannot connect", retryable=True) from None
        try:
            with smtp:
                if self._starttls:
                    smtp.starttls()
                if self._login:
                    smtp.login(*self._login)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise NotAccepted(
                f"{self.name}: recipient refused", retryable=all(400 <= c < 500 for c in codes)
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise NotAccepted(
                f"{self.name}: SMTP {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except (OSError, smtplib.SMTPException):
            raise InDoubt(f"{self.name}: connection lost during the SMTP dialogue") from None
        return message_id.strip("<>")

    def find(self, message: OutboundMessage, *, since: float) -> str | Lookup:
        return Lookup.CANNOT_TELL  # SMTP keeps no record a client can ask
