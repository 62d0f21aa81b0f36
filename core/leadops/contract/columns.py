"""Column names of a lead's flat row, shared by the row builder and the lead's attribute check.

Its own module because rows.py imports lead.py, and lead.py must know the row's columns too.
"""

from __future__ import annotations

from typing import Final

# Row columns in export order (lead_to_row builds them in this order); attributes follow
# (sorted), then the label `converted`.
BASE_COLUMNS: Final = (
    "received_at",
    "tenant",
    "source",
    "has_name",
    "has_phone",
    "phone_region",
    "has_email",
    "email_kind",
    "details",
)
LABEL_COLUMN: Final = "converted"
