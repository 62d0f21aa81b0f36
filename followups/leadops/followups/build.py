"""Builds the worker's parts from a loaded config: providers (credentials read from their
Secret files now, so a missing Secret stops the start)."""

from __future__ import annotations

from leadops.followups.config import (
    FollowUpsConfig,
    ProviderSpec,
    SendGridProvider,
    SmtpProvider,
    TwilioProvider,
    read_secret,
)
from leadops.followups.providers import Provider, SendGridMail, SmtpMail, TwilioMessages


def provider(spec: ProviderSpec, *, channel: str) -> Provider:
    if isinstance(spec, TwilioProvider):
        return TwilioMessages(
            name=spec.name,
            account_sid=spec.account_sid,
            auth_token=read_secret(spec.auth_token_file),
            sender=spec.sender,
            whatsapp=channel == "whatsapp",
            base_url=spec.base_url,
        )
    if isinstance(spec, SendGridProvider):
        return SendGridMail(
            name=spec.name,
            api_key=read_secret(spec.api_key_file),
            sender=spec.sender,
            base_url=spec.base_url,
        )
    assert isinstance(spec, SmtpProvider)
    return SmtpMail(
        name=spec.name,
        host=spec.host,
        port=spec.port,
        sender=spec.sender,
        username=spec.username,
        password=read_secret(spec.password_file) if spec.password_file else None,
        starttls=spec.starttls,
    )


def providers(config: FollowUpsConfig) -> dict[str, dict[str, list[Provider]]]:
    return {
        tenant: {
            channel: [provider(p, channel=channel) for p in specs]
            for channel, specs in spec.providers.items()
        }
        for tenant, spec in config.tenants.items()
    }
