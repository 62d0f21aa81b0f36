"""Lead validation bounds and the canonical row (no raw PII, attributes as columns)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from leadops import pii
from leadops.contract.columns import BASE_COLUMNS
from leadops.contract.lead import MAX_DETAILS, RESERVED_COLUMNS, Lead
from leadops.contract.rows import email_kind, lead_to_row, phone_region


def test_every_row_column_is_reserved_from_attributes() -> None:
    assert set(BASE_COLUMNS) <= RESERVED_COLUMNS


def test_seed_smoke_lead_is_valid() -> None:
    lead = Lead.model_validate({"name": "Test", "phone": "555", "details": "test"})
    assert lead.tenant == "default"
    assert lead.received_at.tzinfo is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("details", "x" * (MAX_DETAILS + 1)),
        ("name", "n" * 201),
        ("phone", "1" * 65),
        ("email", "a" * 250 + "@b.io"),
        ("tenant", "bad tenant!"),
    ],
)
def test_over_long_or_malformed_fields_are_rejected_naming_the_field(
    field: str, value: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Lead.model_validate({"name": "A", field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_attribute_names_are_checked_and_reserved_names_refused() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Lead(name="A", attributes={"converted": "1"})
    with pytest.raises(ValidationError, match="must start with a letter"):
        Lead(name="A", attributes={"9lives,x": "1"})
    with pytest.raises(ValidationError):
        Lead(name="A", attributes={f"k{i}": 1.0 for i in range(51)})
    with pytest.raises(ValidationError, match="finite"):
        Lead(name="A", attributes={"budget": float("nan")})


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="score"):
        Lead.model_validate({"name": "A", "score": 0.9})


def test_row_has_no_raw_contact_data_and_flattens_attributes() -> None:
    lead = Lead(
        name="Ada Lovelace",
        phone="+44 20 7946 0958",
        email="ada@example.org",
        details="Call me on +44 20 7946 0958 about pricing",
        source="web via ada@example.org",
        tenant="acme",
        chat_id="chat-1",
        received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        attributes={
            "company_size": 120.0,
            "budget": 2500.5,
            "industry": "Retail",
            "card": 4111111111111111,
            "phone_num": 4155552671,
            "contact": "ada@example.org",
        },
    )
    row = lead_to_row(lead, redact=pii.redact)
    assert list(row)[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert list(row)[len(BASE_COLUMNS) :] == [
        "budget",
        "card",
        "company_size",
        "contact",
        "industry",
        "phone_num",
    ]
    assert row["details"] == "Call me on [REDACTED] about pricing"
    assert row["source"] == "web via [REDACTED]"
    # Numbers whose digits are a card or a phone number are not stored; others are.
    assert row["card"] == row["phone_num"] == row["contact"] == "[REDACTED]"
    assert row["phone_region"] == "GB"
    assert row["email_kind"] == "business"
    assert row["company_size"] == "120"
    assert row["budget"] == "2500.5"
    assert row["received_at"] == "2026-01-02T03:04:05Z"
    flat = " ".join(row.values())
    for secret in ("Ada", "Lovelace", "7946", "ada@", "example.org", "chat-1", "4111", "555"):
        assert secret not in flat


@pytest.mark.parametrize(
    ("email", "kind"),
    [
        ("", "none"),
        ("not-an-email", "invalid"),
        ("someone@gmail.com", "free"),
        ("x@uni.ac.uk", "education"),
        ("x@acme.io", "business"),
    ],
)
def test_email_kind(email: str, kind: str) -> None:
    assert email_kind(email) == kind


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("", "none"),
        ("555", "invalid"),
        ("+1 000 000 0000", "invalid"),
        ("+1 202-555-0143", "US"),
        ("+49 30 901820", "DE"),
        ("0049 30 901820", "DE"),
        ("+91 98765 43210", "IN"),
        ("020 7946 0958", "unknown"),
    ],
)
def test_phone_region(phone: str, region: str) -> None:
    assert phone_region(phone) == region
