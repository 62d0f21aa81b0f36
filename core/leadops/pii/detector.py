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
from collections.abc import Iterator, Sequence

import phonenumbers

from leadops.pii.checksums import iban_valid, luhn_valid, ssn_valid
from leadops.pii.types import Finding, PiiType

# Separators people write inside numbers (phonenumbers accepts these and more).
# The class as a literal (with its range) compiles to a faster matcher than one built
# from SEPARATORS; tests/unit/test_pii_screen.py checks both hold the same characters.
_SEP = r" \-.()/\[\]~\u00a0\u2010-\u2015\u2212\u3000\uff0d"
SEPARATORS = " -.()/[]~\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u3000\uff0d"
# Digit groups joined by separators: what every numeric kind of PII is made of.
_NUMBER = re.compile(rf"\d(?:[{_SEP}]*\d)*")
_DIGIT_OR_AT = re.compile(r"[\d@]")
_DIGIT = re.compile(r"\d")
# Seven or more digits close together: phones, cards, SSNs and every IBAN's account part have them.
_LONG_NUMBER = re.compile(rf"\d(?:[{_SEP}]*\d){{6,}}")
# Dates are the commonest long digit runs in chat: alone, they need no closer look. Only
# real ones (month 1-12, day 1-31, either order), so the phone rules reject each as a date too.
# Shared with the backfill's byte screen (leadops.pii.screen), which compiles it for bytes.
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
PLAIN_DATE = "|".join(
    [
        r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])",
        *(
            rf"{first}{sep}{second}{sep}\d{{4}}"
            for sep in (r"\.", "/")
            for first, second in ((_DAY, _MONTH), (_MONTH, _DAY))
        ),
    ]
)
_PLAIN_DATE = re.compile(PLAIN_DATE)
_IPV4_SHAPE = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d")  # starts at a literal: a fast scan
_IPV6_SHAPE = re.compile(r":[0-9A-Fa-f]*:")
_DIGITS_TABLE = str.maketrans("", "", "0123456789")
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")
_SSN_DIGITS = 9
_CARD_DIGITS = 13

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_OBFUSCATED_AT = re.compile(r"[(\[{<]\s*at\s*[)\]}>]", re.IGNORECASE)
_OBFUSCATED_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+\s*[(\[{<]\s*at\s*[)\]}>]\s*[\w-]+"
    r"(?:\s*(?:\.|[(\[{<]\s*dot\s*[)\]}>])\s*[\w-]+)+",
    re.IGNORECASE,
)
_LAST_LABEL = re.compile(r"[^\W\d_]{2,}$")

# Cards: 4-4-4-4(-3) groups (spaces, hyphens or dots), Amex 4-6-5, or one unbroken run;
# never part of a longer number.
_CARD = re.compile(
    r"(?<![\d.,-])(?:"
    r"\d{4}([ .-])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|\d{4}([ .-])\d{6}\2\d{4,5}"
    r"|\d{13,19}"
    r")(?![\d-]|[.,]\d)"
)
_SSN = re.compile(
    r"(?<![\d.,-])(?P<area>\d{3})(?P<sep>[ -])(?P<group>\d{2})(?P=sep)(?P<serial>\d{4})"
    r"(?![\d-]|[.,]\d)"
)
# A bare 9-digit SSN only counts right after the words that announce it.
# Shared with the byte screen: a labelled SSN makes no "#123..." a harmless reference.
SSN_LABEL = r"(?:ssn|ss#|social security(?: number| no\.?)?)\W{0,5}"
_SSN_LABELLED = re.compile(
    rf"\b{SSN_LABEL}(?P<area>\d{{3}})(?P<group>\d{{2}})(?P<serial>\d{{4}})(?!\d)", re.IGNORECASE
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:])"
)

# A number right after these words is a reference (order, ticket, ...), not a phone or card.
# Spaces are bounded so a whole reference fits in the LOOKBEHIND window. The byte screen
# (leadops.pii.screen) builds its bytes version from these same parts.
REFERENCE_WORDS = (
    *("order", "invoice", "inv", "ref", "reference", "ticket", "tracking", "confirmation"),
    *("booking", "case", "po", "sku", "serial", "transaction", "txn", "id", "account", "acct"),
    *("part", "model", "item", "receipt", "bestellnummer", "bestellung", "rechnungsnummer"),
    *("rechnung", "auftragsnummer", "auftrag", "commande", "facture", "pedido", "factura"),
    *("ordine", "fattura", "bestelling", "factuur"),
)
# What may follow the word: "Order no. #", "Invoice number:", "Bestellung Nr.", ...
REFERENCE_TAIL = r"\b\.?\s{0,5}(?:no\b\.?|number|num\b|nr\b\.?|n[°º]\.?)?\s{0,5}[#:]?\s{0,5}"
REFERENCE_SIGN = r"#\s{0,5}"
_REFERENCE_BEFORE = re.compile(
    rf"(?:\b(?:{'|'.join(REFERENCE_WORDS)}){REFERENCE_TAIL}|{REFERENCE_SIGN})$", re.IGNORECASE
)


def reference_by_first_letter() -> str:
    """The reference words and what may follow them, for lower-case ASCII text, as branches
    that each start with a literal letter (the leading \\b becomes "no word character before
    this letter"): a regex search then skips fast to the letters that can start a word,
    where the IGNORECASE pattern tries every word at every position."""
    groups: dict[str, list[str]] = {}
    for word in REFERENCE_WORDS:
        groups.setdefault(word[0], []).append(word[1:])
    branches = [
        rf"{first}(?<!\w{first})(?:{'|'.join(rests)}){REFERENCE_TAIL}"
        for first, rests in groups.items()
    ]
    return f"(?:{'|'.join(branches)}|{REFERENCE_SIGN})"


_REFERENCE_BEFORE_ASCII = re.compile(reference_by_first_letter() + "$")
_VERSION_BEFORE = re.compile(
    r"(?:\bv|\b(?:version|ver|release|build|firmware|fw)\b\.?\s*:?\s*)$", re.IGNORECASE
)
LOOKBEHIND = 40  # shared with the byte screen
# Part of a longer token: "INV-14282774", "v2.17.33", "$567,837.88", "64887,36", "T10:56:54.3".
_GLUED_BEFORE = re.compile(r"(?:[A-Za-z0-9$€£¥_]|[A-Za-z][-/]|\d[.,:])$")
# A slash before another whole number is a list ("415 555 2671/415 555 2672"), not a glue.
_GLUED_AFTER = re.compile(r"[A-Za-z0-9_]|[.,:-]\d|/(?!(?:\d[ .\-]?){6}\d)\d")
_DATE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{2,4}(?!\1?\d)")
_LEADING_DIGITS = re.compile(r"\d+(?!\d)")
_MIN_PHONE_DIGITS = 7
_WINDOW_BEFORE = 4
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extn\.?|extension|#)\s*\d{1,7}", re.IGNORECASE)
_MASK = "\0"
# A number written plainly: an optional "+country" and "(area)", digit groups joined by
# single spaces, dots or hyphens (no slashes: dates; no brackets elsewhere).
_PLAIN_PHONE = re.compile(r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d(?:[ .\-]?\d)*")
_WHITESPACE = re.compile(r"\s+")
# Longer bare digit runs are card-shaped or references, whatever a country's metadata allows.
_MAX_BARE_PHONE_DIGITS = 12

# Characters that show nothing (zero-width spaces and joiners, soft hyphens, direction marks,
# BOMs, tags: Unicode's "format" category Cf, plus the combining grapheme joiner and the
# Hangul fillers): removed before detection, so "jane\u200b@example.com" is still an email.
# Shared with the byte screen; tests/unit/test_pii_detector.py checks it holds every Cf.
INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u180e\u3164\ufeff\uffa0\U000110bd\U000110cd\U000e0001"
    + "".join(
        chr(code)
        for first, last in (
            (0x0600, 0x0605),
            (0x06DD, 0x06DD),
            (0x070F, 0x070F),
            (0x0890, 0x0891),
            (0x08E2, 0x08E2),
            (0x200B, 0x200F),
            (0x202A, 0x202E),
            (0x2060, 0x2064),
            (0x2066, 0x206F),
            (0xFFF9, 0xFFFB),
            (0x13430, 0x1343F),
            (0x1BCA0, 0x1BCA3),
            (0x1D173, 0x1D17A),
            (0xE0020, 0xE007F),
        )
        for code in range(first, last + 1)
    )
)
_INVISIBLE = re.compile(f"[{re.escape(INVISIBLE)}]")

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


def _worth_a_look(text: str) -> bool:
    """A few cheap scans every kind of PII passes; most chat messages fail them all."""
    first = _DIGIT_OR_AT.search(text)
    if first is None:
        return _may_hide_an_at(text)
    if first.group() == "@" or "@" in text:
        return True
    for match in _LONG_NUMBER.finditer(text):
        if not _harmless_number(text, match.start(), match.group()):
            return True
    if ":" in text and _IPV6_SHAPE.search(text):
        return True
    if text.count(".") >= 3 and _IPV4_SHAPE.search(text):
        return True
    return _may_hide_an_at(text)


def _harmless_number(text: str, start: int, run: str) -> bool:
    """Long digit runs that cannot be PII of any kind: a plain date; a reference or unix time."""
    if _PLAIN_DATE.fullmatch(run):
        return True
    if not run.isdigit() or len(run) > _MAX_BARE_PHONE_DIGITS:
        return False  # formatted, or card-length: look closer
    if start > 0 and not text[start - 1].isspace() and text[start - 1] not in "#:":
        return False  # glued to letters, e.g. an IBAN's account part
    if _may_have_ssn_label(text) and _SSN_LABELLED.search(text):
        return False  # "SSN #078051120": the label wins over the "#"
    return _is_epoch(run) or _is_reference(text, start)


def _may_hide_an_at(text: str) -> bool:
    # Substring tests first: far cheaper than the regex, and most text has no brackets.
    bracket = "(" in text or "[" in text or "{" in text or "<" in text
    return bracket and _OBFUSCATED_AT.search(text) is not None


def parse_regions(text: str) -> tuple[str, ...]:
    """`"US, gb,IN"` -> `("US", "GB", "IN")`: a comma list of phone regions, checked."""
    regions = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    for region in regions:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r} (want an ISO 3166 code like US, DE)")
    if not regions:
        raise ValueError("no phone region given (want ISO 3166 codes like US,GB)")
    return tuple(dict.fromkeys(regions))


class Detector:
    """Finds PII in text. `regions` are the phonenumbers regions whose national formats are
    recognised for numbers written without a country code (tried in order); `region` is the
    one-region form."""

    def __init__(self, *, region: str = "US", regions: Sequence[str] | None = None) -> None:
        self.regions = parse_regions(",".join(regions if regions is not None else [region]))
        self.region = self.regions[0]

    def find(self, text: str) -> list[Finding]:
        """Every piece of PII in `text`, in order, without overlaps; invisible characters
        inside a finding are part of it."""
        if text.isascii() or _INVISIBLE.search(text) is None:
            return self._find(text)
        kept = [i for i, char in enumerate(text) if not _INVISIBLE.match(char)]
        visible = "".join(text[i] for i in kept)
        return [Finding(f.type, kept[f.start], kept[f.end - 1] + 1) for f in self._find(visible)]

    def _find(self, text: str) -> list[Finding]:
        if not _worth_a_look(text):
            return []
        numbers = [(m.start(), m.end(), _digit_count(m.group())) for m in _NUMBER.finditer(text)]
        most = max((digits for _, _, digits in numbers), default=0)
        candidates = sorted(self._candidates(text, most), key=lambda f: (_RANK[f.type], f.start))
        taken: list[Finding] = []
        for candidate in candidates:
            if all(candidate.end <= t.start or candidate.start >= t.end for t in taken):
                taken.append(candidate)
        # Phones last, on the text with the surer findings blanked out, so the matcher
        # cannot glue the last octet of an IP or the end of a card onto a number.
        windows = _phone_windows(
            text, [(s, e) for s, e, digits in numbers if _may_be_phone(text, s, e, digits)]
        )
        if windows:
            masked = text
            for found in taken:
                masked = (
                    masked[: found.start] + _MASK * (found.end - found.start) + masked[found.end :]
                )
            for start, end, run in windows:
                # The matcher needs a digit: a window the surer findings masked whole is skipped.
                if not _DIGIT.search(masked, start, end):
                    continue
                plain = self._plain_phone(masked, run) if run is not None else None
                if plain is not None:
                    taken.append(plain)
                else:
                    taken.extend(self._phones(masked, start, end))
        taken.sort(key=lambda f: f.start)
        return taken

    def redact(self, text: str, *, typed: bool = False) -> str:
        """`text` with each finding replaced by [REDACTED] (or [REDACTED:TYPE] when `typed`)."""
        return replace(text, self.find(text), typed=typed)

    def _candidates(self, text: str, most_digits: int) -> Iterator[Finding]:
        # Each pattern runs only when the text has what that kind of PII is made of.
        if "@" in text:
            yield from _emails(text)
        if _OBFUSCATED_AT.search(text):
            yield from _obfuscated_emails(text)
        if most_digits == 0:
            return
        if _IBAN_START.search(text):
            yield from _ibans(text)
        if most_digits >= _CARD_DIGITS:
            yield from _cards(text)
        if most_digits >= _SSN_DIGITS:
            yield from _ssns(text)
        if most_digits >= 4 and "." in text:
            yield from _ipv4s(text)
        if ":" in text:
            yield from _ipv6s(text)

    def _plain_phone(self, text: str, run: tuple[int, int]) -> Finding | None:
        """A number written plainly ("(415) 555-2671", "+44 20 7946 0958", alone between
        spaces) parsed as it stands, without the matcher's search over the window: the same
        finding the matcher gives such a run, at about half the cost. None: ask the matcher."""
        start, end = run
        if start > 0 and text[start - 1] in "+(":
            start -= 1
        if start > 0 and not text[start - 1].isspace():
            return None
        if end < len(text) and not (text[end].isspace() or text[end] in ",.;!?"):
            return None
        candidate = text[start:end]
        if not candidate.isascii() or not _PLAIN_PHONE.fullmatch(candidate):
            return None
        # "00" is how most of the world dials abroad ("0044 7700 900123"), whatever the regions.
        attempts: list[tuple[str, str | None]] = [(candidate, r) for r in self.regions]
        if candidate.startswith("00"):
            attempts.append(("+" + candidate[2:], None))
        for text_form, region in attempts:
            try:
                number = phonenumbers.parse(text_form, region)
            except phonenumbers.NumberParseException:
                continue
            if _plausible_phone(number):
                if _not_a_phone(text, start, end):
                    return None
                return Finding(PiiType.PHONE, start, end)
        return None

    def _phones(self, text: str, start: int, end: int) -> Iterator[Finding]:
        """The matcher's phones in text[start:end] for each region in turn; a later region
        adds only numbers that overlap none found before."""
        found = list(self._region_phones(text, start, end, self.region))
        for region in self.regions[1:]:
            found += [
                phone
                for phone in self._region_phones(text, start, end, region)
                if all(phone.end <= f.start or phone.start >= f.end for f in found)
            ]
        yield from sorted(found, key=lambda f: f.start)

    def _region_phones(self, text: str, start: int, end: int, region: str) -> Iterator[Finding]:
        # POSSIBLE (length rules) rather than VALID: people type numbers whose area code
        # the metadata does not list, and a privacy filter must still catch them.
        matcher = phonenumbers.PhoneNumberMatcher(
            text[start:end], region, leniency=phonenumbers.Leniency.POSSIBLE
        )
        for match in matcher:
            first, last = start + match.start, start + match.end
            if _plausible_phone(match.number) and not _not_a_phone(text, first, last):
                yield Finding(PiiType.PHONE, first, last)
                continue
            # The matcher may have swallowed a leading token ("v1.2.3 555 0134"): retry without it.
            gap = _WHITESPACE.search(text, first, last)
            if gap is not None:
                yield from self._region_phones(text, gap.end(), last, region)


def _phone_windows(
    text: str, runs: list[tuple[int, int]]
) -> list[tuple[int, int, tuple[int, int] | None]]:
    """Stretches of text around candidate runs, merged: the matcher parses only these, not
    every stray number in the message ("after 5pm"). They take in a leading "+" or "("
    and a trailing extension ("x1234", " ext. 23"). Each comes with its run when it holds
    just one and no extension (then it may be a plainly written number)."""
    windows: list[tuple[int, int, tuple[int, int] | None]] = []
    for start, end in runs:
        extension = _EXTENSION.match(text, end)
        low = max(0, start - _WINDOW_BEFORE)
        high = extension.end() if extension else min(len(text), end + 1)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], high), None)
        else:
            windows.append((low, high, None if extension else (start, end)))
    return windows


def _digit_count(raw: str) -> int:
    return len(raw) - len(raw.translate(_DIGITS_TABLE)) if not raw.isdigit() else len(raw)


def _may_be_phone(text: str, start: int, end: int, digits: int) -> bool:
    """Cheap screen before the matcher: enough digits, and not a plain date/reference/epoch."""
    if digits < _MIN_PHONE_DIGITS:
        return False
    # A run with spaces may hold a phone after a rejected head ("ref 123 415 555 2671").
    # What follows is not checked: the matcher takes an extension ("x123") into the number.
    return bool(_WHITESPACE.search(text, start, end)) or not _not_a_phone(
        text, start, end, check_after=False
    )


def _not_a_phone(text: str, start: int, end: int, *, check_after: bool = True) -> bool:
    """Look-alikes the phone matcher accepts: parts of longer tokens, dates, references, epochs."""
    raw = text[start:end]
    if _GLUED_BEFORE.search(text, max(0, start - 2), start):
        return True
    if check_after and _GLUED_AFTER.match(text, end):
        return True
    date = _DATE.match(raw)
    if date and _is_date(date.group()):
        return True
    leading = _LEADING_DIGITS.match(raw)
    if leading and _is_epoch(leading.group()):
        return True
    if raw.isdigit() and len(raw) > _MAX_BARE_PHONE_DIGITS:
        return True
    return _is_reference(text, start) or _follows(text, start, _VERSION_BEFORE)


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
    # Length first: int() of an unbounded digit run is slow and refused past 4,300 digits.
    if len(digits) not in (10, 13):
        return False
    value = int(digits)
    return 10**9 <= value < 2**31 if len(digits) == 10 else 10**12 <= value < 2**31 * 1000


def _plausible_phone(number: phonenumbers.PhoneNumber) -> bool:
    """Valid per the metadata, or a possible length within one digit of a full number there.

    The second case catches numbers in ranges the metadata does not list (new or
    made-up area codes) and areas with a digit less than the example (UK 016977 xxxx),
    while rejecting short runs such as ZIP codes, which some countries' metadata
    accepts as (local) numbers.
    """
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        national = phonenumbers.national_significant_number(number)
        if len(national) >= _full_length(number.country_code) - 1:
            return True  # the cheap test first: is_valid_number is the costly one
    return bool(phonenumbers.is_valid_number(number))


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
    return pattern.search(text, max(0, start - LOOKBEHIND), start) is not None


def _is_reference(text: str, start: int) -> bool:
    """Whether text[start:] follows a reference word ("Order #"): _REFERENCE_BEFORE, but on
    ASCII text (where lower-casing is exactly what IGNORECASE does) the faster pattern."""
    if text.isascii():
        low = max(0, start - LOOKBEHIND)
        return _REFERENCE_BEFORE_ASCII.search(text.lower(), low, start) is not None
    return _follows(text, start, _REFERENCE_BEFORE)


def _may_have_ssn_label(text: str) -> bool:
    """False only when no SSN label can be in `text` (cheap substring tests, ASCII only)."""
    if not text.isascii():
        return True
    lowered = text.lower()
    return "ss" in lowered or "social" in lowered


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
        digits = match.group().replace(" ", "").replace("-", "").replace(".", "")
        if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or not luhn_valid(digits):
            continue
        if len(digits) == len(match.group()) and _is_reference(text, match.start()):
            continue
        yield Finding(PiiType.CARD, match.start(), match.end())


def _ssns(text: str) -> Iterator[Finding]:
    for pattern in (_SSN, _SSN_LABELLED) if _may_have_ssn_label(text) else (_SSN,):
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
