"""An error that carries a reason: a CamelCase constant a caller branches on and a Kubernetes
condition or an API body shows as it is, beside a sentence for people."""

from __future__ import annotations


class ReasonedError(Exception):
    """`reason` (CamelCase, e.g. "DigestMismatch") and `message`; printed "reason: message"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
