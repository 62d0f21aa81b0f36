"""The PII detector: cheap prefilters, precompiled candidate patterns, then real validation.

Each kind of PII is found by a pattern that over-matches and a check that decides
(Luhn for cards, mod-97 for IBANs, SSA ranges for SSNs, `ipaddress` for IPs, the
`phonenumbers` library for phone numbers). Overlaps are settled by a fixed order
of confidence, so a card number is never also reported as a phone number.

Obfuscated emails: a bracketed "at" (`jane (at) example.com`, `jane [at] example [dot] com`)
is redacted as EMAIL, because brackets around "at" only ever mean an address someone
tried to hide. A bare word "at" (`jane at example dot com`) is NOT redacted: "meet me
at example.com" is ordinary prose and redacting it would ruin precision.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator

import phonenumbers

from leadops.pii.checksums import iban_valid, luhn_valid, ssn_valid
from leadops.pii.types import Finding, PiiType

# Anything worth a closer look has a digit, an @ or a bracketed "at".
_HINT = re.compile(r"[\d@]|[(\[{<]\s*at\s*[)\]}>]", re.IGNORECASE)

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_OBFUSCATED_AT = re.compile(r"[(\[{<]\s*at\s*[)\]}>]", re.IGNORECASE)
_OBFUSCATED_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+\s*[(\[{<]\s*at\s*[)\]}>]\s*[\w-]+"
    r"(?:\s*(?:\.|[(\[{<]\s*dot\s*[)\]}>])\s*[\w-]+)+",
    re.IGNORECASE,
)
_LAST_LABEL = re.compile(r"[^\W\d_]{2,}$")

# Cards: 4-4-4-4(-3) groups, Amex 4-6-5, or one unbroken run; never part of a longer number.
_CARD = re.compile(
    r"(?<![\d.,-])(?:"
    r"\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|\d{4}([ -])\d{6}\2\d{4,5}"
    r"|\d{13,19}"
    r")(?![\d-]|[.,]\d)"
)
_SSN = re.compile(
    r"(?<![\d.,-])(?P<area>\d{3})(?P<sep>[ -])(?P<group>\d{2})(?P=sep)(?P<serial>\d{4})"
    r"(?![\d-]|[.,]\d)"
)
# A bare 9-digit SSN only counts right after the words that announce it.
_SSN_LABELLED = re.compile(
    r"\b(?:ssn|ss#|social security(?: number| no\.?)?)\W{0,5}"
    r"(?P<area>\d{3})(?P<group>\d{2})(?P<serial>\d{4})(?!\d)",
    re.IGNORECASE,
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:])"
)
# Seven digits close together: the least a phone number has, checked before the slow matcher.
_PHONE_HINT = re.compile(r"\d(?:[^\w]{0,4}\d){6}")

# A number right after these words is a reference (order, ticket, ...), not a phone or card.
_REFERENCE_BEFORE = re.compile(
    r"(?:\b(?:order|invoice|inv|ref|reference|ticket|tracking|confirmation|booking|case|po"
    r"|sku|serial|transaction|txn|id|account|acct|part|model|item|receipt)\b\.?"
    r"\s*(?:no\b\.?|number|num\b|nr\b\.?)?\s*[#:]?\s*|#\s*)$",
    re.IGNORECASE,
)
_VERSION_BEFORE = re.compile(
    r"(?:\bv|\b(?:version|ver|release|build|firmware|fw)\b\.?\s*:?\s*)$", re.IGNORECASE
)
_LOOKBEHIND = 40
# Part of a longer token: "INV-14282774", "v2.17.33", "$567,837.88", "64887,36", "T10:56:54.3".
_GLUED_BEFORE = re.compile(r"(?:[A-Za-z0-9$€£¥_]|[A-Za-z][-/]|\d[.,:])$")
_GLUED_AFTER = re.compile(r"[A-Za-z0-9_]|[.,:/-]\d")
_DATE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{2,4}(?!\1?\d)")
_LEADING_DIGITS = re.compile(r"\d+(?!\d)")
_MIN_PHONE_DIGITS = 7
_MASK = "\0"
_WHITESPACE = re.compile(r"\s+")
# Longer bare digit runs are card-shaped or references, whatever a country's metadata allows.
_MAX_BARE_PHONE_DIGITS = 12

# When candidates overlap, the more certain kind wins (checksums beat the phone heuristics).
_PRIORITY = (PiiType.EMAIL, PiiType.IBAN, PiiType.CARD, PiiType.SSN, PiiType.IP, PiiType.PHONE)
_RANK = {kind: rank for rank, kind in enumerate(_PRIORITY)}


def placeholder(kind: PiiType | None = None) -> str:
    """The replacement text; it has no digit, @ or bracketed "at", so it never matches itself."""
    return "[REDACTED]" if kind is None else f"[REDACTED:{kind.value}]"


def replace(text: str, findings: list[Finding], *, typed: bool = False) -> str:
    """`text` with the given findings (from `find` on this same text) replaced."""
    if not findings:
        return text
    pieces: list[str] = []
    cursor = 0
    for finding in findings:
        pieces.append(text[cursor : finding.start])
        pieces.append(placeholder(finding.type if typed else None))
        cursor = finding.end
    pieces.append(text[cursor:])
    return "".join(pieces)


class Detector:
    """Finds PII in text; `region` is the phonenumbers region for numbers without a country code."""

    def __init__(self, *, region: str = "US") -> None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r} (want an ISO 3166 code like US, DE)")
        self.region = region

    def find(self, text: str) -> list[Finding]:
        """Every piece of PII in `text`, in order, without overlaps."""
        if not _HINT.search(text):
            return []
        candidates = sorted(self._candidates(text), key=lambda f: (_RANK[f.type], f.start))
        taken: list[Finding] = []
        for candidate in candidates:
            if all(candidate.end <= t.start or candidate.start >= t.end for t in taken):
                taken.append(candidate)
        # Phones last, on the text with the surer findings blanked out, so the matcher
        # cannot glue the last octet of an IP or the end of a card onto a number.
        if _PHONE_HINT.search(text):
            masked = text
            for found in taken:
                masked = (
                    masked[: found.start] + _MASK * (found.end - found.start) + masked[found.end :]
                )
            taken.extend(self._phones(masked, 0, len(masked)))
        taken.sort(key=lambda f: f.start)
        return taken

    def redact(self, text: str, *, typed: bool = False) -> str:
        """`text` with each finding replaced by [REDACTED] (or [REDACTED:TYPE] when `typed`)."""
        return replace(text, self.find(text), typed=typed)

    def _candidates(self, text: str) -> Iterator[Finding]:
        if "@" in text:
            yield from _emails(text)
        if _OBFUSCATED_AT.search(text):
            yield from _obfuscated_emails(text)
        yield from _ibans(text)
        yield from _cards(text)
        yield from _ssns(text)
        if "." in text:
            yield from _ipv4s(text)
        if ":" in text:
            yield from _ipv6s(text)

    def _phones(self, text: str, start: int, end: int) -> Iterator[Finding]:
        # POSSIBLE (length rules) rather than VALID: people type numbers whose area code
        # the metadata does not list, and a privacy filter must still catch them.
        matcher = phonenumbers.PhoneNumberMatcher(
            text[start:end], self.region, leniency=phonenumbers.Leniency.POSSIBLE
        )
        for match in matcher:
            first, last = start + match.start, start + match.end
            if _plausible_phone(match.number) and not _not_a_phone(text, first, last):
                yield Finding(PiiType.PHONE, first, last)
                continue
            # The matcher may have swallowed a leading token ("v1.2.3 555 0134"): retry without it.
            gap = _WHITESPACE.search(text, first, last)
            if gap is not None:
                yield from self._phones(text, gap.end(), last)


def _not_a_phone(text: str, start: int, end: int) -> bool:
    """Look-alikes the phone matcher accepts: parts of longer tokens, dates, references, epochs."""
    raw = text[start:end]
    if _GLUED_BEFORE.search(text, max(0, start - 2), start) or _GLUED_AFTER.match(text, end):
        return True
    date = _DATE.match(raw)
    if date and _is_date(date.group()):
        return True
    leading = _LEADING_DIGITS.match(raw)
    if leading and _is_epoch(leading.group()):
        return True
    if raw.isdigit() and len(raw) > _MAX_BARE_PHONE_DIGITS:
        return True
    return _follows(text, start, _REFERENCE_BEFORE) or _follows(text, start, _VERSION_BEFORE)


def _is_date(raw: str) -> bool:
    parts = [int(p) for p in re.split(r"[./-]", raw)]
    if len(str(parts[0])) == 4 or raw[:4].isdigit():
        _, month, day = parts
    else:
        day, month, _ = parts
        if month > 12:  # US order: month/day/year
            day, month = month, day
    return 1 <= month <= 12 and 1 <= day <= 31


def _is_epoch(digits: str) -> bool:
    """Unix time in seconds or milliseconds (2001-2038): machine output, not a number to dial."""
    value = int(digits)
    return (len(digits) == 10 and 10**9 <= value < 2**31) or (
        len(digits) == 13 and 10**12 <= value < 2**31 * 1000
    )


def _plausible_phone(number: phonenumbers.PhoneNumber) -> bool:
    """Valid per the metadata, or as long as a full number of its country.

    The second case catches numbers in ranges the metadata does not list (new or
    made-up area codes) while rejecting short runs such as ZIP codes, which some
    countries' metadata accepts as (local) numbers.
    """
    if phonenumbers.is_valid_number(number):
        return True
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return False
    national = phonenumbers.national_significant_number(number)
    return len(national) >= _full_length(number.country_code)


@functools.cache
def _full_length(country_code: int) -> int:
    """Digits in the country's shorter example number (fixed line or mobile)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    lengths = [
        len(phonenumbers.national_significant_number(example))
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE)
        if (example := phonenumbers.example_number_for_type(region, kind)) is not None
    ]
    return min(lengths, default=_MIN_PHONE_DIGITS)


def _follows(text: str, start: int, pattern: re.Pattern[str]) -> bool:
    return pattern.search(text, max(0, start - _LOOKBEHIND), start) is not None


def _emails(text: str) -> Iterator[Finding]:
    for match in _EMAIL.finditer(text):
        if _LAST_LABEL.search(match.group()):
            yield Finding(PiiType.EMAIL, match.start(), match.end())


def _obfuscated_emails(text: str) -> Iterator[Finding]:
    for match in _OBFUSCATED_EMAIL.finditer(text):
        if _LAST_LABEL.search(match.group()):
            yield Finding(PiiType.EMAIL, match.start(), match.end())


def _ibans(text: str) -> Iterator[Finding]:
    for match in _IBAN.finditer(text):
        raw = match.group()
        # The pattern may run into a following word: shrink group by group until the checksum holds.
        while len(raw) >= 15:
            if iban_valid(raw.replace(" ", "")):
                yield Finding(PiiType.IBAN, match.start(), match.start() + len(raw))
                break
            cut = raw.rfind(" ")
            if cut < 0:
                break
            raw = raw[:cut]


def _cards(text: str) -> Iterator[Finding]:
    for match in _CARD.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or not luhn_valid(digits):
            continue
        if len(digits) == len(match.group()) and _follows(text, match.start(), _REFERENCE_BEFORE):
            continue
        yield Finding(PiiType.CARD, match.start(), match.end())


def _ssns(text: str) -> Iterator[Finding]:
    for pattern in (_SSN, _SSN_LABELLED):
        for match in pattern.finditer(text):
            if ssn_valid(match["area"], match["group"], match["serial"]):
                yield Finding(PiiType.SSN, match.start("area"), match.end())


def _ipv4s(text: str) -> Iterator[Finding]:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if _follows(text, match.start(), _VERSION_BEFORE):
            continue
        yield Finding(PiiType.IP, match.start(), match.end())


def _ipv6s(text: str) -> Iterator[Finding]:
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if not any(char.isdigit() for char in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Finding(PiiType.IP, match.start(), match.end())
