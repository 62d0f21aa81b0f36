"""Checks of `spec.followUps` the schema cannot make: every template renders on a sample lead.

A template that fails here would dead-letter every follow-up that uses it, so the spec is
refused (InvalidSpec) when it is applied instead. Rendering uses the worker's own sandbox
(leadops.followups.templates: Jinja2's immutable sandbox, StrictUndefined). A template kept
in a ConfigMap is checked once `followups_templates.resolve` has put its text in; until then
(body unset) it is skipped here.
"""

from __future__ import annotations

from leadops.followups import templates
from leadops.operator import spec

SAMPLE_LEAD = {"name": "Ada", "score": 0.83, "band": "0.7", "tenant": "sample"}


def _origin(template: spec.FollowUpTemplate, part: str) -> str:
    ref = template.config_map_ref
    if ref is None or (part == "subject" and ref.subject_key is None):
        return ""
    key = ref.key if part == "body" else ref.subject_key
    return f" from ConfigMap {ref.name} key {key!r}"


def problems(lm: spec.LeadModelSpec) -> list[str]:
    """One line per template that does not render (none without spec.followUps)."""
    if lm.follow_ups is None:
        return []
    found: list[str] = []
    for i, tenant in enumerate(lm.follow_ups.tenants):
        for j, template in enumerate(tenant.templates):
            if template.body is None:  # from a ConfigMap, not read yet
                continue
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
                        f"spec.followUps.tenants[{i}].templates[{j}] ({template.name}) {part}"
                        f"{_origin(template, part)} does not render on a sample lead: {exc}"
                    )
    return found
