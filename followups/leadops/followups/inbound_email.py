"""Replies to e-mail follow-ups, as SendGrid's Inbound Parse posts them.

Every e-mail follow-up goes out with `Reply-To: reply+<token>@<reply domain>` and
`Message-ID: <fu.<token>@<reply domain>>`, where the token is a keyed hash of (tenant, lead,
step): opaque, no address in it, the same on every attempt of the step. A reply reaches the
reply domain (its MX is SendGrid's), and Inbound Parse posts it to the webhooks app as
multipart/form-data. The token is looked for, in this order, in the SMTP envelope's recipient,
the To and Cc headers, then In-Reply-To and References (a client that ignored Reply-To but
answered our Message-ID); the first one the worker recorded names the follow-up. The sender's
address is read only to suppress it after an opt-out that carries no token, and never stored.

Inbound Parse signs nothing in its classic form, so the URL configured in SendGrid carries
basic-auth credentials (https://user:password@host/...), compared here in constant time.

Pure module: the standard library only (multipart and MIME through `email`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Final

LOCAL_PART: Final = "reply"
# Twilio's own opt-out keywords (Advanced Opt-Out defaults), compared case-insensitively; an
# e-mail's first line or subject (List-Unsubscribe mailto sends "unsubscribe") counts too.
OPT_OUT: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
                            "REVOKE", "STOP ALL"})  # fmt: skip
# Fields kept from a post; attachments (file parts) are skipped unread.
FIELDS: Final = frozenset(
    {"to", "cc", "from", "subject", "text", "html", "headers", "envelope", "email", "charsets"}
)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg)\s*:\s*)+", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def reply_address(token: str, domain: str) -> str:
    return f"{LOCAL_PART}+{token}@{domain}"


def message_id(token: str, domain: str) -> str:
    return f"<fu.{token}@{domain}>"


def list_unsubscribe(token: str, domain: str) -> str:
    """A mailto List-Unsubscribe: a mail client's unsubscribe button sends it to us."""
    return f"<mailto:{reply_address(token, domain)}?subject=unsubscribe>"


def authorized(header: str, credentials: Iterable[bytes]) -> bool:
    """`Authorization: Basic ...` names one of `credentials` (user:password), compared in
    constant time; anything missing or malformed is False."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    matched = False
    for pair in credentials:
        matched |= hmac.compare_digest(given, pair)
    return matched


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (FIELDS only, file parts skipped),
    decoded with the charsets SendGrid names in its `charsets` field (UTF-8 otherwise)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("not multipart/form-data")
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    outer = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not outer.is_multipart():
        raise ValueError("no parts")
    raw: dict[str, bytes] = {}
    for part in outer.get_payload():
        if not isinstance(part, Message) or part.get_filename():
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name not in FIELDS or name in raw:
            continue
        payload = part.get_payload(decode=True)
        raw[name] = payload if isinstance(payload, bytes) else b""
    try:
        charsets = json.loads(raw.get("charsets", b"{}").decode("utf-8", "replace"))
    except json.JSONDecodeError:
        charsets = {}
    out = {}
    for name, value in raw.items():
        charset = charsets.get(name) if isinstance(charsets, dict) else None
        try:
            out[name] = value.decode(str(charset or "utf-8"), "replace")
        except LookupError:  # an unknown charset name
            out[name] = value.decode("utf-8", "replace")
    return out


@dataclass(frozen=True, slots=True)
class InboundMail:
    tokens: tuple[str, ...]  # reply tokens found, most trusted first
    sender: str  # the From address: only ever hashed, never stored or logged
    message_id: str  # the reply's own Message-ID (deduplicates SendGrid's redeliveries)
    opt_out: bool


def _first_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(">"):
            return stripped
    return ""


def _is_opt_out(subject: str, text: str) -> bool:
    words = (_SUBJECT_PREFIX.sub("", subject), _first_line(text))
    return any(w.strip().rstrip(".!").strip().upper() in OPT_OUT for w in words if w.strip())


def _body_of(mime: EmailMessage) -> str:
    part = mime.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    text = content if isinstance(content, str) else ""
    return _TAG.sub(" ", text) if part.get_content_subtype() == "html" else text


def read(fields: Mapping[str, str], domain: str) -> InboundMail:
    """What a posted reply says: parsed mode (`headers`, `text`, ...) or raw mode (`email`,
    the whole MIME message, SendGrid's "POST the raw, full MIME message")."""
    if fields.get("email"):
        mime = BytesParser(policy=policy.default).parsebytes(
            fields["email"].encode("utf-8", "surrogateescape")
        )
        assert isinstance(mime, EmailMessage)
        headers: Message = mime
        text = _body_of(mime)
    else:
        headers = HeaderParser(policy=policy.default).parsestr(fields.get("headers", ""))
        text = fields.get("text") or _TAG.sub(" ", fields.get("html", ""))
    subject = fields.get("subject") or str(headers.get("Subject", ""))
    try:
        envelope = json.loads(fields.get("envelope") or "{}")
    except json.JSONDecodeError:
        envelope = {}
    envelope_to = envelope.get("to") if isinstance(envelope, dict) else None
    recipients = [str(a) for a in envelope_to] if isinstance(envelope_to, list) else []
    for value in (fields.get("to", ""), fields.get("cc", ""), *headers.get_all("To", []),
                  *headers.get_all("Cc", [])):  # fmt: skip
        recipients += [address for _name, address in getaddresses([str(value)])]
    address = re.compile(
        rf"^{re.escape(LOCAL_PART)}\+([0-9a-f]{{32}})@{re.escape(domain)}$", re.IGNORECASE
    )
    referenced = re.compile(rf"<fu\.([0-9a-f]{{32}})@{re.escape(domain)}>", re.IGNORECASE)
    tokens: list[str] = []
    for recipient in recipients:
        if (m := address.match(recipient.strip())) and m.group(1).lower() not in tokens:
            tokens.append(m.group(1).lower())
    for header in ("In-Reply-To", "References"):
        for value in headers.get_all(header, []):
            for token in referenced.findall(str(value)):
                if token.lower() not in tokens:
                    tokens.append(token.lower())
    sender = parseaddr(fields.get("from") or str(headers.get("From", "")))[1]
    return InboundMail(
        tokens=tuple(tokens),
        sender=sender,
        message_id=str(headers.get("Message-ID", "")).strip(),
        opt_out=_is_opt_out(subject, text),
    )
