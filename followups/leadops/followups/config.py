"""The follow-ups configuration: what `spec.followUps` of a LeadModel becomes, as one JSON file
mounted into the worker and the webhooks app. Credentials are never inline: each is the path
of a mounted Secret file, read when the config loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadops.followups import templates
from leadops.followups.rules import Channel, QuietHours, Rule
from leadops.followups.vault import Keyring

_STRICT = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ConfigError(ValueError):
    """The follow-ups config is invalid; one line naming the field."""


def read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"secret file {path}: {exc.strerror or exc}") from None


class TwilioProvider(BaseModel):
    model_config = _STRICT
    type: Literal["twilio"]
    name: str = "twilio"
    account_sid: str = Field(alias="accountSid")
    auth_token_file: Path = Field(alias="authTokenFile")
    sender: str = Field(alias="from")
    base_url: str | None = Field(default=None, alias="baseUrl")


class SendGridProvider(BaseModel):
    model_config = _STRICT
    type: Literal["sendgrid"]
    name: str = "sendgrid"
    api_key_file: Path = Field(alias="apiKeyFile")
    sender: str = Field(alias="from")
    base_url: str | None = Field(default=None, alias="baseUrl")


class SmtpProvider(BaseModel):
    model_config = _STRICT
    type: Literal["smtp"]
    name: str = "smtp"
    host: str
    port: int = Field(ge=1, le=65535)
    sender: str = Field(alias="from")
    username: str | None = None
    password_file: Path | None = Field(default=None, alias="passwordFile")
    starttls: bool = False


ProviderSpec = Annotated[
    TwilioProvider | SendGridProvider | SmtpProvider, Field(discriminator="type")
]


class Template(BaseModel):
    model_config = _STRICT
    body: str
    subject: str = ""


class VaultSpec(BaseModel):
    model_config = _STRICT
    current: str
    key_files: dict[str, Path] = Field(alias="keyFiles")

    def keyring(self) -> Keyring:
        return Keyring.from_files(self.current, self.key_files)


class WebhookSecrets(BaseModel):
    model_config = _STRICT
    # SendGrid's "Verification Key" (base64 DER public key) for its signed event webhook.
    sendgrid_public_key_file: Path | None = Field(default=None, alias="sendgridPublicKeyFile")
    # The Meta app secret that signs WhatsApp Cloud API callbacks (X-Hub-Signature-256).
    whatsapp_app_secret_file: Path | None = Field(default=None, alias="whatsappAppSecretFile")
    whatsapp_verify_token_file: Path | None = Field(default=None, alias="whatsappVerifyTokenFile")


class EmailReplies(BaseModel):
    """Replies to e-mail follow-ups: sent with Reply-To `reply+<token>@domain`, received
    through SendGrid's Inbound Parse (the domain's MX), authenticated by basic auth."""

    model_config = _STRICT
    domain: str = Field(
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+$"
    )
    # `user:password`, one pair a line (several while rotating): what the Inbound Parse URL
    # carries as https://user:password@host/...
    inbound_parse_credentials_file: Path = Field(alias="inboundParseCredentialsFile")

    def credentials(self) -> list[bytes]:
        pairs = [
            line.strip() for line in read_secret(self.inbound_parse_credentials_file).splitlines()
        ]
        pairs = [p for p in pairs if p]
        if not pairs or any(":" not in p or p.startswith(":") for p in pairs):
            raise ConfigError(
                f"secret file {self.inbound_parse_credentials_file}: want user:password lines"
            )
        return [p.encode() for p in pairs]


class TenantSpec(BaseModel):
    model_config = _STRICT
    rate_limit_per_second: int | None = Field(default=None, alias="rateLimitPerSecond", ge=1)
    vault: VaultSpec
    quiet_hours: QuietHours = Field(default_factory=QuietHours, alias="quietHours")
    rules: list[Rule]
    templates: dict[str, Template]
    providers: dict[Channel, list[ProviderSpec]]
    webhooks: WebhookSecrets = Field(default_factory=WebhookSecrets)
    email_replies: EmailReplies | None = Field(default=None, alias="emailReplies")

    @model_validator(mode="after")
    def _consistent(self) -> TenantSpec:
        for rule in self.rules:
            if rule.template not in self.templates:
                raise ValueError(f"rule template {rule.template!r} is not in templates")
            if not self.providers.get(rule.channel):
                raise ValueError(f"channel {rule.channel!r} of a rule has no providers")
        return self


class FollowUpsConfig(BaseModel):
    model_config = _STRICT
    horizon_hours: int = Field(default=72, alias="horizonHours", ge=1, le=24 * 90)
    max_attempts: int = Field(default=5, alias="maxAttempts", ge=1, le=50)
    backoff_base_s: float = Field(default=1.0, alias="backoffBaseSeconds", gt=0)
    backoff_max_s: float = Field(default=300.0, alias="backoffMaxSeconds", gt=0)
    # Base of the URLs providers post status callbacks to (the webhooks app), e.g.
    # https://hooks.example.com; "" sends without a status callback.
    status_callback_base: str = Field(default="", alias="statusCallbackBase")
    tenants: dict[str, TenantSpec]


SAMPLE_LEAD = {"name": "Ada", "score": 0.83, "band": "0.7", "tenant": "sample"}


def validate_templates(config: FollowUpsConfig) -> None:
    """Every template renders on a sample lead (else InvalidSpec when the spec is applied)."""
    for tenant, spec in config.tenants.items():
        for name, template in spec.templates.items():
            for part in (template.subject, template.body):
                try:
                    templates.render(templates.compile_template(part), SAMPLE_LEAD)
                except templates.TemplateRenderError as exc:
                    raise ConfigError(f"tenant {tenant!r} template {name!r}: {exc}") from None


def parse(data: object) -> FollowUpsConfig:
    try:
        config = FollowUpsConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"{where}: {first['msg']}") from None
    validate_templates(config)
    return config


def load(path: Path) -> FollowUpsConfig:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path}: not JSON (line {exc.lineno})") from None
    return parse(data)


def keyrings(config: FollowUpsConfig) -> dict[str, Keyring]:
    """Each tenant's vault keyring (its key files read now). Here, not in `build`, so the
    scorer seals contacts without importing the provider SDKs."""
    return {tenant: spec.vault.keyring() for tenant, spec in config.tenants.items()}
