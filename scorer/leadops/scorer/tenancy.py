"""Whose lead is it: the tenant comes from the caller's ingest key, never from the body.

With ingest keys configured, `/v1/lead`, `/v1/outcome` and `/v1/lead/{id}/messages` need
`x-api-key`; the caller's tenant is its key's. A lead body naming another tenant is a 403; a
body without `tenant` takes the key's. Without ingest keys the scorer serves the single tenant
`default` (the guide's open smoke test), and a body naming any other is a 403.
"""

from __future__ import annotations

from fastapi import HTTPException, status

from leadops.contract.lead import Lead
from leadops.scorer.auth import IngestKeys, KeysFileUnreadable

OPEN_TENANT = "default"
HEADER = "x-api-key"
MISSING_KEY = "missing or invalid ingest key (x-api-key header)"
KEYS_UNREADABLE = "ingest keys file unreadable; nothing was recorded, retry later"
OTHER_TENANT = "the body's tenant is not the ingest key's tenant"
OPEN_ONLY_DEFAULT = (
    "without ingest keys (LEADOPS_INGEST_KEYS) only tenant 'default' is served; "
    "send x-api-key with an ingest key to use another"
)


def caller_tenant(keys: IngestKeys, api_key: str | None) -> str:
    """The tenant the caller may read and write, or HTTPException 401/503."""
    if keys.open:
        return OPEN_TENANT
    try:
        tenant = keys.tenant_for(api_key)
    except KeysFileUnreadable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, KEYS_UNREADABLE) from None
    if tenant is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, MISSING_KEY)
    return tenant


def lead_of(lead: Lead, tenant: str, *, open_mode: bool) -> Lead:
    """`lead` as the tenant's (its `tenant` set), or HTTPException 403 when it names another."""
    if "tenant" in lead.model_fields_set and lead.tenant != tenant:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, OPEN_ONLY_DEFAULT if open_mode else OTHER_TENANT
        )
    return lead if lead.tenant == tenant else lead.model_copy(update={"tenant": tenant})


def admit(keys: IngestKeys, api_key: str | None, lead: Lead) -> Lead:
    """The lead as its caller's tenant's, or HTTPException 401/403/503."""
    return lead_of(lead, caller_tenant(keys, api_key), open_mode=keys.open)
