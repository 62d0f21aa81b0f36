"""What the detector reports: the kind of PII and where it is, never the text itself."""

from __future__ import annotations

import dataclasses
import enum


class PiiType(enum.StrEnum):
    """Kinds of PII the detector finds; the value is what typed redaction shows."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    SSN = "SSN"
    IBAN = "IBAN"
    IP = "IP"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII at text[start:end]; holds positions only so it is safe to log."""

    type: PiiType
    start: int
    end: int

    def to_dict(self) -> dict[str, str | int]:
        return {"type": self.type.value, "start": self.start, "end": self.end}
