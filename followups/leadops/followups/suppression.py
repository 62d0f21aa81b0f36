"""The per-tenant suppression list: who asked not to be contacted (STOP, unsubscribe, spam
report) or cannot be (a bounce). Entries are keyed hashes of the normalized address, so the
list can be checked before every send without holding a single phone number or address."""

from __future__ import annotations

import redis

from leadops.followups.keys import Keys


def normalize_address(address: str) -> str:
    """One spelling per address: e-mail lower-cased; phone as +digits (a `whatsapp:` prefix and
    spaces, dashes, dots and brackets dropped) so an SMS STOP also covers WhatsApp."""
    text = address.strip()
    if "@" in text:
        return text.lower()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    digits = "".join(ch for ch in text if ch.isdigit())
    return f"+{digits}"


class SuppressionList:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def _ref(self, tenant: str, address: str) -> str:
        return self.keys.address_ref(tenant, normalize_address(address))

    def add(self, tenant: str, address: str) -> bool:
        """Suppress `address` for every channel of `tenant`; True if it was not yet suppressed."""
        return bool(self.client.sadd(Keys.suppressed(tenant), self._ref(tenant, address)))

    def add_ref(self, tenant: str, address_ref: str) -> bool:
        """Suppress an address known only by its keyed hash (an e-mail reply's recipient)."""
        return bool(self.client.sadd(Keys.suppressed(tenant), address_ref))

    def contains(self, tenant: str, address: str) -> bool:
        return bool(self.client.sismember(Keys.suppressed(tenant), self._ref(tenant, address)))

    def remove(self, tenant: str, address: str) -> bool:
        """Re-consent (the lead opted in again, e.g. replied START)."""
        return bool(self.client.srem(Keys.suppressed(tenant), self._ref(tenant, address)))
