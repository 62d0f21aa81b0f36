"""The backfill's byte screen never hides a value the detector would flag (a strict superset)."""

from __future__ import annotations

import random
import re

import pytest
from bench import pii_scoring

from leadops.pii import Detector, detector, screen

HARD = [
    "",
    "ok thanks",
    "mail jane@example.com",
    "jane (at) example.com",
    "jane [ AT ] example [dot] com",
    "jane {\tat\u3000} example.com",  # Unicode space inside the brackets
    "jane <\u00a0At\u2003> example.org",
    "call (415) 555-2671",
    "call 415.555.2671 x12",
    "+44 20 7946 0958",
    "Handy 0151 23456789",
    "tel 512 3456",  # seven digits: a full number in Austria
    "tel 016977 123",
    "tel\u00a0415\u00a0555\u00a02671",  # no-break spaces
    "tel 415\u2011555\u20112671",  # non-breaking hyphens
    "tel 415\u2212555\u22122671",  # minus signs
    # fullwidth digits
    "\u96fb\u8a71 \uff10\uff13\u2212\uff11\uff12\uff13\uff14\u2212\uff15\uff16\uff17\uff18",
    "\u96fb\u8a71 \uff10\uff13\uff0d\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18",
    "رقم ٠٥٠١٢٣٤٥٦٧",  # Arabic-Indic digits
    "फोन ९८७६५४३२१०",  # Devanagari digits
    "card 4111 1111 1111 1111",
    "card 4111-1111-1111-1111",
    "card 378282246310005",
    "card 3782 822463 10005",
    "ssn 078-05-1120",
    "SSN 078 05 1120",
    "social security 078051120",
    "iban DE89 3704 0044 0532 0130 00",
    "iban GB82WEST12345698765432",
    "from 203.0.113.195",
    "from 10.0.0.1:8080",
    "from 2001:db8::ff00:42:8329",
    "from fe80::1",
    "from ::ffff:192.0.2.1",
    "from 2001:DB8:0:0:8:800:200C:417A",
    "Order #2125550134 shipped on 2024-01-15 at 10:30",
    "on 2024-13-45 at noon",
    "on 13/13/2024",
    "Grüße aus München, bis 2025-03-05!",
    "value with a \0 byte and 415 555 2671",
    "value with\nnew lines\n(415) 555-2671",
    # Runs the screen blanks as harmless (plain dates, references), next to ones it must not.
    "Order #123456789 arrived, thanks",
    "ORDER NO. 4155552671 and InVoIcE nr 4155552671",
    "SSN #078051120",
    "ssn: #078051120 thanks",
    "Social Security No. 078051120",
    "order #078051120 for the ss# 078051120",
    "order" + " " * 12 + "4155552671",  # too far from the word: not a reference
    "order no.4155552671",  # glued to the reference: the detector looks closer
    "Order #415 555 2671",
    "Order #4155552671 2025-03-05",
    "Order #4155552671-2025-03-05",
    "ref 12345678901234",
    "#4155552671",
    "Order#4155552671",
    "invoice 2125550134 or call (415) 555-2671",
    "on 2025-03-05 4155552671",
    "on 2025-03-05-415-555-2671",
    "on 2025-03-05 / 555 1234",
    "on 5/3/2025 415 555 2671",
    "on 5/3/2025, 415 555 2671",
    "on 2024-13-45 :12345: x",
    "on 31.12.2025 or 12/31/2025 or 13/13/2025 or 2025-02-30",
    "on 0.12.2025 or 00/12/2025",
    "session 2025-03-05 and IP 10.1.2.3",
    "Bestellung Nr. 4155552671 für München",
    "éorder #4155552671",
    "order #4155552671\u00a0123",
    # Invisible characters the detector removes before it looks (issue 13, item 10).
    "mail jane\u200b@example.com",
    "mail jane@\u200dexample\u00ad.com",
    "call 415\u200b555\u200b2671",
    "call 4\u20601\u20605 5\ufeff55 2671",
    "card 4111\u200c1111\u200c1111\u200c1111",
    "jane (\u200bat\u200b) example.com",
    "from 10\u200b.0.0.1",
    "order #\u200b4155552671",
    "on 2025\u200b-03-05 4155552671",
    # Cards with dots, a slash between two phones, UK national and 00-prefixed numbers.
    "card 4111.1111.1111.1111",
    "tel 415 555 2671/415 555 2672",
    "call 020 7946 0958",
    "mobile 07700 900123",
    "mobile 0044 7700 900123",
]


def _check(texts: list[str], regions: list[str]) -> int:
    """Asserts the superset property for `texts` screened together and one by one;
    returns how many of them the detector flags."""
    detectors: dict[str, Detector] = {}
    values = [text.encode("utf-8", "surrogateescape") for text in texts]
    together = set(screen.may_hold_pii(values))
    flagged = 0
    for index, (text, region) in enumerate(zip(texts, regions, strict=True)):
        detector = detectors.setdefault(region, Detector(regions=region.split(",")))
        if detector.find(text):
            flagged += 1
            assert index in together, f"screen missed value {index}: {text!r}"
            assert screen.may_hold_pii([values[index]]) == [0], f"screen missed {text!r}"
    return flagged


def test_every_corpus_message_with_a_finding_passes_the_screen() -> None:
    for path in (pii_scoring.CORPUS, pii_scoring.HOLDOUT):
        records = pii_scoring.load(path)
        flagged = _check([r.text for r in records], [r.region for r in records])
        assert flagged > len(records) // 2  # the corpus is PII-dense: the check has teeth


@pytest.mark.parametrize("region", ["US", "DE", "AT", "JP", "IN", "US,GB,IN"])
def test_hard_cases_with_a_finding_pass_the_screen(region: str) -> None:
    assert _check(HARD, [region] * len(HARD)) >= 25


def test_random_texts_built_from_trigger_characters() -> None:
    """Fuzz: texts made of digits (ASCII and not), separators, brackets, "at", colons,
    capitals and letters; whatever the detector finds in them, the screen must pass."""
    rng = random.Random(20261126)
    pieces = [
        *"0123456789",
        *"0123456789",
        "٣",
        "\uff17",
        "९",
        *" -.()/[]~",
        "\u00a0",
        "\u2013",
        "\u3000",
        "\uff0d",
        "\u200b",
        "\u00ad",
        "\ufeff",
        "@",
        ":",
        "::",
        "at",
        "AT",
        "(at)",
        "[ at ]",
        "DE",
        "GB",
        "x",
        "ext ",
        "#",
        "+",
        "+1 ",
        "+49 ",
        "ssn ",
        "ssn #",
        "order ",
        "Order #",
        "invoice no. ",
        "#",
        "2025-03-05",
        "13/12/2024",
        "5.3.2025",
        "123456789",
        "jane",
        "example.com",
        "ab",
        "ff",
        "\n",
        "\t",
        "é",
    ]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(4, 40))) for _ in range(3000)]
    for region in ("US", "GB", "AT"):
        assert _check(texts, [region] * len(texts)) >= 200


def test_most_clean_chat_does_not_pass() -> None:
    clean = [
        "ok thanks",
        "We are a team of 12 people looking at the MBA programme for next year.",
        "Can you send me the brochure? Budget is around $300,000 per person.",
        "What is the difference between the online and the campus version 4.2?",
        "Grüße aus München: ist der Kurs auf Deutsch?",
        "\u3053\u306e\u8b1b\u5ea7\u306f\u9031\u672b\u306b\u3082\u3042\u308a\u307e\u3059\u304b\uff1f",
        "[REDACTED] [REDACTED:PHONE] thanks",
        # Long digit runs the detector calls harmless: a plain date, a reference number.
        "Thanks! The session on 2025-03-05 at 10:30 works for me.",
        "See you on 05/03/2025 or 3.5.2025 then",
        "Order #123456789 arrived, thank you very much for the quick help.",
        "Invoice no. 2125550134 and ticket: 4155552671",
    ]
    assert screen.may_hold_pii([text.encode() for text in clean]) == []


def test_separator_list_matches_the_detectors_number_pattern() -> None:
    """The screen reads the separators from SEPARATORS, the detector's regexes from _SEP."""

    separator = re.compile(f"[{detector._SEP}]")
    matched = {chr(c) for c in range(0x110000) if separator.match(chr(c))}
    assert matched == set(detector.SEPARATORS)


def test_every_plain_date_is_no_phone_to_the_detector() -> None:
    """The screen blanks runs matching PLAIN_DATE; that is only safe if the detector's phone
    rules reject each of them as a date (so no phone window starts there)."""
    dates = 0
    for first in range(40):
        for second in range(40):
            for a, b in ((str(first), str(second)), (f"{first:02d}", f"{second:02d}")):
                for run in (f"2025-{a}-{b}", f"{a}.{b}.2025", f"{a}/{b}/2025", f"{a}-{b}-2025"):
                    if detector._PLAIN_DATE.fullmatch(run):
                        dates += 1
                        text = f"on {run} ok"
                        assert detector._not_a_phone(text, 3, 3 + len(run), check_after=False)
    assert dates > 2000  # both orders, both separators, one- and two-digit parts
