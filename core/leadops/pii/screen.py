"""A byte-level screen over many stored values at once: which of them may hold PII.

The backfill reads millions of values and almost all are clean. Decoding each one
and running the detector on it costs microseconds in Python; this screen joins a
whole round of values and looks at them at once in C (`bytes.translate`, substring
searches, regexes that start at one literal byte), naming the few values worth the
detector's time. Python work is per value passed, not per value read. Values with
non-ASCII bytes get one exact bytes regex each (Unicode digits and spaces).

It is a superset by construction, never a second set of rules: every finding of
`Detector.find` needs one of these triggers in its text, so a value without any
cannot hold PII the detector would report.

- EMAIL: an `@`, or a bracketed "at" (`(at)`, `[ at ]`) for the obfuscated form.
- PHONE, CARD, SSN: seven or more digits joined only by separators (the detector's
  phone windows, 13+ digit cards and 9-digit SSNs are all such runs).
- IBAN: two capitals followed by two digits.
- IPv4: a dotted quad's first three dots; IPv6: two colons with at most four hex
  digits between them.

The detector removes invisible characters (`detector.INVISIBLE`) before it looks, and so
does the screen for values with non-ASCII bytes (invisible characters are all non-ASCII).
The detector works on text, where a digit is any Unicode decimal digit and
whitespace any Unicode space, so the byte patterns take in the UTF-8 encoding of
every such character, not only ASCII. tests/unit/test_pii_screen.py checks the
superset property on the whole labeled corpus and on hand-made hard cases.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence

from leadops.pii.detector import (
    INVISIBLE,
    LOOKBEHIND,
    PLAIN_DATE,
    SEPARATORS,
    SSN_LABEL,
    reference_by_first_letter,
)

# Joins values for one scan; it starts no trigger, so no match begins between two values.
_JOIN = b"\0"


def _alternation(chars: Iterable[str]) -> bytes:
    """A bytes regex matching exactly the UTF-8 encoding of any of `chars`."""
    ascii_part = sorted(c for c in chars if c.isascii())
    by_prefix: dict[bytes, list[int]] = {}
    for char in chars:
        if not char.isascii():
            encoded = char.encode("utf-8")
            by_prefix.setdefault(encoded[:-1], []).append(encoded[-1])
    branches = []
    if ascii_part:
        branches.append(_byte_class(ord(c) for c in ascii_part))
    non_ascii = [
        re.escape(prefix) + _byte_class(last) for prefix, last in sorted(by_prefix.items())
    ]
    if non_ascii:
        # A lead-byte test first, so plain ASCII is rejected without trying every branch.
        leads = _byte_class({prefix[0] for prefix in by_prefix})
        branches.append(b"(?=" + leads + b")(?:" + b"|".join(non_ascii) + b")")
    return b"(?:" + b"|".join(branches) + b")"


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(b"\\x%02x" % value for value in sorted(set(values))) + b"]"


@functools.cache
def _pattern() -> re.Pattern[bytes]:
    # One pass over Unicode (a quarter second, once per process) finds what Python's
    # str regexes call a digit (\d: decimal digits) and whitespace (\s).
    everything = list(map(chr, range(0x110000)))
    digits = [c for c in everything if c.isdecimal()]
    spaces = [c for c in everything if c.isspace()]
    digit = _alternation(digits)
    space = _alternation(spaces)
    separator = _alternation(SEPARATORS)
    non_ascii_digits: dict[int, list[str]] = {}
    for char in digits:
        encoded = char.encode("utf-8")
        if len(encoded) > 1:
            non_ascii_digits.setdefault(encoded[0], []).append(char)
    long_number_rest = b"(?:" + separator + b"*" + digit + b"){6}"
    # Each branch is chosen by the byte the match started with (a one-byte lookbehind),
    # so the regex engine can skip every other byte with a single set test.
    branches = [
        b"(?<=@)",
        b"(?<=[(\\[{<])" + space + b"*[aA][tT]" + space + b"*[)\\]}>]",
        b"(?<=:)[0-9A-Fa-f]{0,4}:",
        b"(?<=[A-Z])[A-Z]" + digit + digit,
        b"(?<=[0-9])(?:[0-9]{0,2}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]|" + long_number_rest + b")",
    ]
    for lead, chars in sorted(non_ascii_digits.items()):
        rests = b"|".join(re.escape(c.encode("utf-8")[1:]) for c in sorted(chars))
        branches.append(b"(?<=" + _byte_class([lead]) + b")(?:" + rests + b")" + long_number_rest)
    starts = _byte_class([*b"@([{<:", *_UPPER, *_DIGITS, *non_ascii_digits])
    return re.compile(starts + b"(?:" + b"|".join(branches) + b")")


@functools.cache
def _invisible() -> re.Pattern[bytes]:
    """The UTF-8 encodings of the characters the detector removes before it looks."""
    return re.compile(_alternation(INVISIBLE))


def prepare() -> None:
    """Build the exact non-ASCII pattern now (about a quarter second) rather than when the
    first non-ASCII value comes (the backfill builds it lazily: only slower, never a burst
    that --max-ops-per-sec would have to absorb)."""
    _pattern()
    _invisible()


# The fast path for ASCII values (most chat): bytes.translate, substring tests and one
# regex whose every match starts at a rare byte; no Python work per clean value.
_ASCII_SEPARATORS = bytes(ord(c) for c in SEPARATORS if c.isascii())
_DIGITS = b"0123456789"
_UPPER = bytes(range(ord("A"), ord("Z") + 1))
# Digits become "0", capitals "A", opening brackets "(" and closing ones ")": shapes are
# then found as plain substrings or by regexes that start with one literal byte (fast).
_SHAPES = bytes.maketrans(_DIGITS + _UPPER + b"([{<)]}>", b"0" * 10 + b"A" * 26 + b"((((" + b"))))")
# Searched in the shapes with the separators deleted: 7+ digits joined only by separators,
# two capitals and two digits (an IBAN's start), an "@".
_RUN_TRIGGERS = (b"AA00", b"@")
# What str regexes call whitespace, within ASCII.
_ASCII_SPACE = rb"[\t\n\x0b\x0c\r\x1c-\x1f ]"
_SHAPE_TRIGGERS = (
    re.compile(rb"\.0{1,3}\.0{1,3}\.0"),  # a dotted quad's dots
    re.compile(rb":[0Aa-f]{0,4}:"),  # two colons around at most four hex digits (A-F are "A")
    re.compile(rb"\(" + _ASCII_SPACE + rb"*[aA][tA]" + _ASCII_SPACE + rb"*\)"),  # "(at)"; T is "A"
)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_LONG_RUN = b"0" * 7

# Long digit runs the detector itself calls harmless (_harmless_number and _not_a_phone in
# leadops.pii.detector), told by the detector's own patterns: a real calendar date standing
# alone, and a 7-12 digit number right after a reference word ("Order #123456789"). Such a
# run makes no phone window and is too short for a card, so blanking it hides no finding.
# A value with an SSN label keeps its runs (the label turns "#078051120" into an SSN).
# Bytes patterns match a subset of what the str ones match in ASCII text (\s is narrower);
# values with other bytes keep every run (the exact non-ASCII pattern flags them).
#
# Speed: candidates are found in the shapes (digits are "0") by regexes that start with a
# literal "0", so the engine jumps from digit to digit; only candidates (about one per
# dated or referenced message) cost a Python call, which checks the raw lower-cased bytes.
_SEP_CLASS = b"[" + re.escape(_ASCII_SEPARATORS) + b"]"
_NOT_JOINED_AFTER = b"(?!" + _SEP_CLASS + b"*0)"
_SEP_OR_DIGIT = b"[0" + re.escape(_ASCII_SEPARATORS) + b"]"
_NOT_SEP_OR_DIGIT = b"[^0" + re.escape(_ASCII_SEPARATORS) + b"]"
# A run shaped like a plain date: 8-10 digits and [./-] with one in its first five bytes,
# after no digit (alone or across up to two separators; more only means fewer dates
# blanked, never a missed one). Lookarounds come after the first digit: a literal start.
_DATE_SHAPE = re.compile(
    b"0(?=0{0,3}[./-])(?:(?<!" + _SEP_OR_DIGIT + b".)"
    b"|(?<=" + _NOT_SEP_OR_DIGIT + _SEP_CLASS + b".)"
    b"|(?<=" + _NOT_SEP_OR_DIGIT + _SEP_CLASS * 2 + b".))[0./-]{7,9}" + _NOT_JOINED_AFTER
)
_PLAIN_DATE = re.compile(PLAIN_DATE.encode())
# 7-12 digits, alone, right after a space, "#" or ":" (what the detector asks before it
# looks for a reference word).
_BARE_NUMBER = re.compile(b"0000000(?<=[\\s#:]0000000)0{0,5}" + _NOT_JOINED_AFTER)


# The detector's _REFERENCE_BEFORE for lower-cased ASCII, in the form built to search fast.
_REFERENCE_BEFORE = re.compile(reference_by_first_letter().encode() + b"$")
_SSN_LABEL = re.compile(SSN_LABEL.encode() + b"[0-9]")


def _blank_harmless_runs(raw: bytes) -> bytes:
    """The shapes of lower-cased `raw` with every harmless run replaced by as many "_"."""

    def date(match: re.Match[bytes]) -> bytes:
        start, end = match.span()
        harmless = _PLAIN_DATE.fullmatch(raw, start, end) is not None
        return b"_" * (end - start) if harmless else match.group()

    def reference(match: re.Match[bytes]) -> bytes:
        start, end = match.span()
        harmless = _REFERENCE_BEFORE.search(raw, max(0, start - LOOKBEHIND), start) is not None
        return b"_" * (end - start) if harmless else match.group()

    shapes = raw.translate(_SHAPES)
    return _BARE_NUMBER.sub(reference, _DATE_SHAPE.sub(date, shapes))


def may_hold_pii(values: Sequence[bytes]) -> list[int]:
    """Indexes (ascending) of the UTF-8 `values` that may hold PII; every value the
    detector finds anything in is among them, most clean values are not."""
    if not values:
        return []
    joined = _JOIN.join(values)
    if joined.count(_JOIN) != len(values) - 1:
        # A value holds the join byte itself; \1, like \0, is in no trigger, so replacing
        # it changes nothing the screen sees and keeps one value per joined part.
        values = [value.replace(_JOIN, b"\1") for value in values]
        joined = _JOIN.join(values)
    flagged: set[int] = set()
    if not joined.isascii():
        # Values with other characters (Unicode digits, spaces) get the full byte pattern.
        # The detector looks at the text without its invisible characters; so does this.
        precise = _pattern().search
        visible = functools.partial(_invisible().sub, b"")
        for index in _hits(joined, _searcher(_NON_ASCII, joined)):
            if precise(visible(values[index])) is not None:
                flagged.add(index)
    shapes = joined.translate(_SHAPES)
    for pattern in _SHAPE_TRIGGERS:
        flagged.update(_hits(shapes, _searcher(pattern, shapes)))
    # Deleting the separators keeps one value per _JOIN-separated part: indexes still hold.
    runs = shapes.translate(None, _ASCII_SEPARATORS)
    for trigger in _RUN_TRIGGERS:
        flagged.update(_hits(runs, functools.partial(bytes.find, runs, trigger)))
    long_runs = _hits(runs, functools.partial(bytes.find, runs, _LONG_RUN))
    flagged.update(_without_harmless_runs([i for i in long_runs if i not in flagged], values))
    return sorted(flagged)


def _without_harmless_runs(indexes: list[int], values: Sequence[bytes]) -> list[int]:
    """Those of `indexes` whose value still has a long digit run once harmless runs (plain
    dates, references) are blanked, or holds an SSN label; one joined scan of them all."""
    if not indexes:
        return []
    raw = _JOIN.join([values[i] for i in indexes]).lower()
    kept = set(_hits(raw, _searcher(_SSN_LABEL, raw)))
    blanked = _blank_harmless_runs(raw).translate(None, _ASCII_SEPARATORS)
    kept.update(_hits(blanked, functools.partial(bytes.find, blanked, _LONG_RUN)))
    return [indexes[i] for i in sorted(kept)]


def _searcher(pattern: re.Pattern[bytes], buffer: bytes) -> Callable[[int], int]:
    def search(position: int) -> int:
        match = pattern.search(buffer, position)
        return -1 if match is None else match.start()

    return search


def _hits(buffer: bytes, search: Callable[[int], int]) -> list[int]:
    """Indexes of the _JOIN-separated values in `buffer` in which `search` (from a
    position; -1 for none) finds a match. After a match in one value the search goes on
    at the next value: a value's own match is never skipped, because any match found
    earlier starts in an earlier value (no trigger starts at _JOIN)."""
    indexes: list[int] = []
    position = index = 0
    while (start := search(position)) >= 0:
        index += buffer.count(_JOIN, position, start)
        indexes.append(index)
        position = buffer.find(_JOIN, start) + 1
        if position == 0:
            break
        index += 1
    return indexes
