"""The follow-up writer's pure parts: the experiment delay flag, the contact taken from a lead,
and the start refused where the worker could not share the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadops.contract.lead import Lead
from leadops.followups.vault import Contact
from leadops.scorer import app, metrics, store
from leadops.scorer.followup_writer import contact_of, delay_flag
from leadops.scorer.settings import Settings


@pytest.mark.parametrize(
    ("flags", "minutes"),
    [
        (None, None),
        ({}, None),
        ({"memory": "on"}, None),
        ({"followUpDelayMinutes": "0"}, 0),
        ({"followUpDelayMinutes": "15"}, 15),
        ({"followUpDelayMinutes": "43200"}, 43200),
        ({"followUpDelayMinutes": "43201"}, None),  # past a rule's own limit (30 days)
        ({"followUpDelayMinutes": "-5"}, None),
        ({"followUpDelayMinutes": "5.5"}, None),
        ({"followUpDelayMinutes": "\u0665"}, None),  # a digit, but not an ASCII one
    ],
)
def test_delay_flag(flags: dict[str, str] | None, minutes: int | None) -> None:
    assert delay_flag(flags) == minutes


def test_contact_is_the_lead_as_sent() -> None:
    lead = Lead(name="Ada", phone="+14155550101", email="ada@example.org",
                attributes={"timezone": "Europe/Paris", "visits": 3.0})  # fmt: skip
    assert contact_of(lead) == Contact(
        phone="+14155550101", email="ada@example.org", name="Ada", timezone="Europe/Paris"
    )
    assert contact_of(Lead(email="ada@example.org")) == Contact(email="ada@example.org")
    assert contact_of(Lead(name="Ada", details="call me")) is None  # nothing to send to


def test_follow_ups_need_a_standalone_redis(tmp_path: Path) -> None:
    settings = Settings(followups_config=tmp_path / "followups.json")
    with pytest.raises(RuntimeError, match="standalone Redis"):
        app._followups(settings, store.MemoryStore(), metrics.Metrics())
    assert app._followups(Settings(), store.MemoryStore(), metrics.Metrics()) is None
