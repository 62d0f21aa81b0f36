"""What a lead is: the seed's `name`, `phone`, `details`, plus its origin and free attributes.

Sizes are bounded so one oversized request cannot bloat Redis or the exports; an over-long
field is a validation error naming the field, never a silent truncation.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from leadops.contract.columns import BASE_COLUMNS, LABEL_COLUMN

MAX_NAME: Final = 200
MAX_PHONE: Final = 64
MAX_DETAILS: Final = 10_000
MAX_EMAIL: Final = 254  # RFC 5321 path limit
MAX_LABEL: Final = 100  # source, tenant, chat_id
MAX_ATTRIBUTES: Final = 50
MAX_ATTRIBUTE_VALUE: Final = 1_000

# Attribute keys become CSV columns, so they must be plain names that cannot clash with
# the row's own columns (see RESERVED_COLUMNS) or break a CSV header.
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\- ]{0,63}$")
# Names an attribute may not take (case-insensitive): the row's own columns and the lead's fields.
# The stored record's extra fields (score, model_version, lead_id) are reserved too.
RESERVED_COLUMNS: Final = frozenset(
    {
        *BASE_COLUMNS,
        LABEL_COLUMN,
        "score",
        "model_version",
        "lead_id",
        "name",
        "phone",
        "email",
        "chat_id",
        "chat_key",
    }
)
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_LABEL)]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Lead(BaseModel):
    """One inbound lead as the scorer receives it (`POST /v1/lead`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME)] = ""
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_PHONE)] = ""
    details: Annotated[str, StringConstraints(max_length=MAX_DETAILS)] = ""
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_EMAIL)] = ""
    source: ShortText = ""
    tenant: Annotated[str, StringConstraints(strip_whitespace=True, pattern=TENANT.pattern)] = (
        "default"
    )
    chat_id: ShortText | None = None
    received_at: datetime = Field(default_factory=_utc_now)
    attributes: dict[str, str | float] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)

    @field_validator("received_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        # A naive timestamp is taken as UTC so rows sort the same everywhere.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            raise ValueError("received_at is out of range once converted to UTC") from None

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, value: dict[str, str | float]) -> dict[str, str | float]:
        for key, item in value.items():
            if not ATTRIBUTE_KEY.match(key):
                raise ValueError(
                    f"attribute name {key[:70]!r} must start with a letter and use only "
                    "letters, digits, '_', '.', '-', ' ' (max 64 characters)"
                )
            if key.casefold() in RESERVED_COLUMNS:
                raise ValueError(f"attribute name {key!r} is reserved for a lead field")
            if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_VALUE:
                raise ValueError(
                    f"attribute {key!r} is {len(item)} characters, over {MAX_ATTRIBUTE_VALUE}"
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"attribute {key!r} must be a finite number")
        return value
