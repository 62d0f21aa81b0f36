"""Checks of `spec.followUps` the schema cannot make: every template renders on a sample lead.

A template that fails here would dead-letter every follow-up that uses it, so the spec is
refused (InvalidSpec) when it is applied instead. Rendering uses the worker's own sandbox
(leadops.followups.templates: Jinja2's immutable sandbox, StrictUndefined).
"""

from __future__ import annotations

from leadops.followups import templates
from leadops.operator import spec

SAMPLE_LEAD = {"name": "Ada", "score": 0.83, "band": "0.7", "tenant": "sample"}


def problems(lm: spec.LeadModelSpec) -> list[str]:
    """One line per template that does not render (none without spec.followUps)."""
    if lm.follow_ups is None:
        return []
    found: list[str] = []
    for i, tenant in enumerate(lm.follow_ups.tenants):
        for j, template in enumerate(tenant.templates):
            for part in ("subject", "body"):
                source = getattr(template, part)
                if not source:
                    continue
                try:
                    templates.render(
                        templates.compile_template(source), {**SAMPLE_LEAD, "tenant": tenant.name}
                    )
                except templates.TemplateRenderError as exc:
                    found.append(
                        f"spec.followUps.tenants[{i}].templates[{j}] ({template.name}) {part} "
                        f"does not render on a sample lead: {exc}"
                    )
    return found
