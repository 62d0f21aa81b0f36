"""PII detection and redaction: the one detector the scorer and the backfill job share."""
