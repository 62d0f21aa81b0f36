"""Every Redis key name the follow-ups use, in one place. Names hold a tenant and keyed hashes,
never a lead id, phone number or e-mail address as sent (the privacy rule for key names)."""

from __future__ import annotations

from typing import Final

from leadops.pii.chat_keys import keyed_hash

STREAM: Final = "fu:stream"
GROUP: Final = "fu:workers"
SCHEDULED: Final = "fu:scheduled"
DEAD_LETTER: Final = "fu:dlq"
# Tenants with delivery counts (the SET `GET /ops/followups` walks).
STATS_TENANTS: Final = "fu:stats-tenants"


class Keys:
    """Key names for one deployment; `salt` is the key salt (LEADOPS_KEY_SALT_FILE)."""

    def __init__(self, salt: bytes | None) -> None:
        self.salt = salt

    def lead_ref(self, tenant: str, lead_id: str) -> str:
        """The name a lead goes by in Redis: a keyed hash, since a lead id may be an address."""
        return keyed_hash(self.salt, "lead", tenant, lead_id)

    def address_ref(self, tenant: str, address: str) -> str:
        """The suppression list's entry for a normalized phone number or e-mail address."""
        return keyed_hash(self.salt, "address", tenant, address)

    def reply_token(self, tenant: str, lead_ref: str, step: str) -> str:
        """The opaque token of an e-mail follow-up's reply address (reply+<token>@domain)."""
        return keyed_hash(self.salt, "reply", tenant, lead_ref, step)

    def inbound_ref(self, tenant: str, message_id: str) -> str:
        """An inbound e-mail's Message-ID, hashed: redeliveries of one reply count once."""
        return keyed_hash(self.salt, "inbound", tenant, message_id)

    @staticmethod
    def reply(tenant: str, token: str) -> str:
        """HASH of an e-mail follow-up's reply token: `lead`, `step`, `to` (keyed hash of the
        address it went to), `replied_at` once answered. Written before the send."""
        return f"fu:{tenant}:reply:{token}"

    @staticmethod
    def inbound_seen(tenant: str, inbound_ref: str) -> str:
        return f"fu:{tenant}:inbound-seen:{inbound_ref}"

    @staticmethod
    def contact(tenant: str, lead_ref: str) -> str:
        return f"fu:{tenant}:contact:{lead_ref}"

    @staticmethod
    def claim(tenant: str, lead_ref: str, step: str) -> str:
        return f"fu:{tenant}:claim:{lead_ref}:{step}"

    @staticmethod
    def suppressed(tenant: str) -> str:
        return f"fu:{tenant}:suppressed"

    @staticmethod
    def session(tenant: str, address_ref: str) -> str:
        """When the address last wrote on WhatsApp (its 24 h session window)."""
        return f"fu:{tenant}:wa-session:{address_ref}"

    @staticmethod
    def sent_to(tenant: str, address_ref: str) -> str:
        """The lead whose follow-up was last sent to the address: whom a reply is from."""
        return f"fu:{tenant}:sent-to:{address_ref}"

    @staticmethod
    def replies(tenant: str) -> str:
        """HASH lead reference -> when the lead first replied (unix seconds): a reply as an
        experiment's primary metric (the scorer's experiment export reads it)."""
        return f"fu:{tenant}:replies"

    @staticmethod
    def stats(tenant: str) -> str:
        """Delivery counts of a tenant: HASH of `{channel}:{outcome}` -> count."""
        return f"fu:{tenant}:stats"

    @staticmethod
    def rate(tenant: str) -> str:
        return f"fu:{tenant}:rate"

    @staticmethod
    def message(provider_message_id: str) -> str:
        """Which follow-up a provider's message id belongs to (ids are the provider's, not PII)."""
        return f"fu:msg:{provider_message_id}"

    @staticmethod
    def seen(provider_message_id: str) -> str:
        """Statuses already recorded for a message: callbacks are deduplicated on (id, status)."""
        return f"fu:msg:{provider_message_id}:seen"
