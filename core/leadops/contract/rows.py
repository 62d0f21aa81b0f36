"""A lead's canonical flat row: what the scorer stores, the export holds and training reads.

The row carries no raw PII: every stored string (`details`, `source`, string attributes)
passes through the caller's redaction function, a numeric attribute whose digits form a card
or phone number is stored as `[REDACTED]`, the name and chat id are dropped, and phone and
email are reduced to presence flags and non-identifying derived values (calling-code region,
kind of mailbox).
Training and serving both featurize this same row shape, so there is no training/serving skew.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

from leadops.contract.lead import Lead

# Mailbox providers anyone can sign up to: a lead from one says less about a company.
FREE_MAIL_DOMAINS: Final = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "orange.fr",
        "free.fr",
        "libero.it",
        "rediffmail.com",
        "zoho.com",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)$")
_EDU = re.compile(r"(\.edu|\.ac\.[a-z]{2}|\.edu\.[a-z]{2})$")
_DIGITS = re.compile(r"\d")
REDACTED_NUMBER: Final = "[REDACTED]"


def email_kind(email: str) -> str:
    """`none`, `invalid`, `free`, `education` or `business`: what kind of mailbox, never which."""
    if not email:
        return "none"
    match = _EMAIL.match(email)
    if match is None:
        return "invalid"
    domain = match.group(1).casefold()
    if domain in FREE_MAIL_DOMAINS:
        return "free"
    if _EDU.search(domain):
        return "education"
    return "business"


def phone_region(phone: str) -> str:
    """The ISO region of a number's calling code (`GB`), `unknown` (national), `invalid`, `none`."""
    if not phone:
        return "none"
    if len(_DIGITS.findall(phone)) < 5:
        return "invalid"
    international = phone.replace(" ", "")
    if international.startswith("00"):
        international = "+" + international[2:]
    if not international.startswith("+"):
        return "unknown"  # a national number: no calling code, so no region to tell
    # The train/scorer extra; imported here so importing rows never needs it.
    import phonenumbers  # noqa: PLC0415

    try:
        number = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException:
        return "invalid"
    if not phonenumbers.is_valid_number(number):
        return "invalid"
    region = phonenumbers.region_code_for_number(number)
    return str(region) if region else "invalid"


def format_value(value: str | float) -> str:
    """An attribute value as a CSV cell: integral floats without `.0`, others round-trip exact."""
    if isinstance(value, str):
        return value
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def lead_to_row(lead: Lead, *, redact: Callable[[str], str]) -> dict[str, str]:
    """The canonical row of `lead`; `redact` removes PII from free text (leadops.pii.redact)."""
    row = {
        "received_at": lead.received_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenant": lead.tenant,
        "source": redact(lead.source) if lead.source else "",
        "has_name": "1" if lead.name else "0",
        "has_phone": "1" if lead.phone else "0",
        "phone_region": phone_region(lead.phone),
        "has_email": "1" if lead.email else "0",
        "email_kind": email_kind(lead.email),
        "details": redact(lead.details) if lead.details else "",
    }
    for key in sorted(lead.attributes):
        value = lead.attributes[key]
        if isinstance(value, str):
            row[key] = redact(value) if value else ""
        else:
            row[key] = _redact_number(format_value(value), redact)
    return row


def _redact_number(text: str, redact: Callable[[str], str]) -> str:
    """`text`, or `[REDACTED]` when the detector finds a card or phone number in its digits
    (`"budget": 4111111111111111`, `"phone_num": 4155552671`)."""
    return REDACTED_NUMBER if redact(text) != text else text
