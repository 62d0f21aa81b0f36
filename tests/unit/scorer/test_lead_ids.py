"""Lead ids: 32 hex digits from the OS CSPRNG, never repeated across buffer refills."""

from __future__ import annotations

import re

from leadops.scorer.scoring import LeadIds


def test_ids_are_32_hex_digits_and_unique_across_refills() -> None:
    ids = LeadIds()
    drawn = [ids.next() for _ in range(3 * LeadIds.BATCH + 7)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", lead_id) for lead_id in drawn)
    assert len(set(drawn)) == len(drawn)


def test_two_generators_do_not_share_a_sequence() -> None:
    assert len({LeadIds().next() for _ in range(50)}) == 50
