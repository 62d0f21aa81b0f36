"""A cap on each tenant's distinct attribute columns: leads cannot explode the export's width.

Every distinct attribute name becomes a column of the stored records, the export and the
trainer's table; 600 leads with 50 made-up names each made a 30,009-column export. A tenant
may use up to `cap` names (LEADOPS_MAX_ATTRIBUTE_COLUMNS, default 200); a new name past that
is dropped from the lead (scoring goes on without it), counted in
`leadops_attributes_dropped_total{reason="column_cap"}` and logged once per name. A name the
PII detector finds something in (`tel 415 555 2671`) is never stored either
(`reason="pii_in_name"`), and never logged.

The names admitted are held per scorer process (not in Redis): a restart or a second replica
may admit up to `cap` further names for a tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from leadops.contract.lead import Lead
from leadops.scorer import metrics

logger = logging.getLogger(__name__)

# Past this many distinct dropped names per tenant, drops are only counted, not logged.
LOGGED_NAMES_LIMIT = 100


class AttributeColumns:
    """The attribute names admitted per tenant, and the drop of every other one."""

    def __init__(self, *, cap: int, m: metrics.Metrics, redact: Callable[[str], str]) -> None:
        self._cap = cap
        self._redact = redact
        self._admitted: dict[str, set[str]] = {}
        self._logged: dict[str, set[str]] = {}
        self._over_cap = m.attributes_dropped.labels(reason="column_cap")
        self._pii_in_name = m.attributes_dropped.labels(reason="pii_in_name")

    def admit(self, lead: Lead) -> Lead:
        """`lead`, or a copy without the attributes its tenant may not add."""
        attributes = lead.attributes
        if not attributes:
            return lead
        admitted = self._admitted.setdefault(lead.tenant, set())
        if admitted.issuperset(attributes):  # the usual case: names seen before
            return lead
        kept: dict[str, str | float] = {}
        for name, value in attributes.items():
            if name in admitted:
                kept[name] = value
            elif self._redact(name) != name:
                self._pii_in_name.inc()
                self._log_once(lead.tenant, None)
            elif len(admitted) >= self._cap:
                self._over_cap.inc()
                self._log_once(lead.tenant, name)
            else:
                admitted.add(name)
                kept[name] = value
        if len(kept) == len(attributes):
            return lead
        return lead.model_copy(update={"attributes": kept})

    def _log_once(self, tenant: str, name: str | None) -> None:
        logged = self._logged.setdefault(tenant, set())
        key = "" if name is None else name  # "" stands for "a name holding PII"
        if key in logged or len(logged) > LOGGED_NAMES_LIMIT:
            return
        logged.add(key)
        if name is None:
            logger.warning(
                "Dropped an attribute of tenant %s: its name holds PII (never stored)", tenant
            )
        elif len(logged) > LOGGED_NAMES_LIMIT:
            logger.warning(
                "Tenant %s: more than %d attribute names dropped; further drops are only "
                "counted (leadops_attributes_dropped_total)",
                tenant,
                LOGGED_NAMES_LIMIT,
            )
        else:
            logger.warning(
                "Dropped attribute %r of tenant %s: the tenant already has %d attribute "
                "columns (LEADOPS_MAX_ATTRIBUTE_COLUMNS)",
                name,
                tenant,
                self._cap,
            )
