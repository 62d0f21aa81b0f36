"""Follow-up templates kept in ConfigMaps (`templates[].configMapRef`).

The operator reads each named ConfigMap, puts the text into the template as if it were inline
and checks it like one (followups_check: it must render on a sample lead). The worker and the
scorer then get it inside the one follow-ups config the operator writes, never by mounting the
user's ConfigMap: what runs is always a whole, validated set of templates, and a ConfigMap
edited into a broken template is InvalidSpec while the Pods keep the last good one. A changed
ConfigMap changes the config's digest, so the Pods roll (the operator watches the ConfigMaps
its LeadModels name; handlers.py).

A ConfigMap holds no secret (Kubernetes' own rule), so unlike a Secret it need not opt in to
the LeadModel; the same holds for `training.bootstrap.configMapKeyRef`.
Pure except `read`, which gets the named ConfigMaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from leadops.operator import followups_check, spec

if TYPE_CHECKING:
    from leadops.operator.kube import Kube


def _text(
    configmap: Mapping[str, Any] | None, name: str, key: str, *, namespace: str, limit: int
) -> tuple[str | None, str]:
    """(text, "") or (None, why not)."""
    if configmap is None:
        return None, f"ConfigMap {namespace}/{name} does not exist"
    data = configmap.get("data") or {}
    if key not in data:
        if key in (configmap.get("binaryData") or {}):
            return None, f"ConfigMap {namespace}/{name} key {key!r} is binaryData, not text"
        return None, f"ConfigMap {namespace}/{name} has no key {key!r}"
    text = str(data[key])
    if not text.strip():
        return None, f"ConfigMap {namespace}/{name} key {key!r} is empty"
    if len(text) > limit:
        return None, f"ConfigMap {namespace}/{name} key {key!r} is over {limit} characters"
    return text, ""


def resolve(
    lm: spec.LeadModelSpec,
    configmaps: Mapping[str, Mapping[str, Any] | None],
    *,
    namespace: str,
) -> tuple[spec.LeadModelSpec, list[str]]:
    """`lm` with every ConfigMap template's text put in, and the problems found (a missing
    ConfigMap or key, text too long, a template that does not render), one line each naming
    the template, the ConfigMap and the key. `configmaps`: name -> object (None: absent)."""
    fu = lm.follow_ups
    if fu is None or not fu.template_configmaps():
        return lm, []
    problems: list[str] = []
    tenants = []
    for i, tenant in enumerate(fu.tenants):
        resolved = []
        for j, template in enumerate(tenant.templates):
            ref = template.config_map_ref
            if ref is None:
                resolved.append(template)
                continue
            where = f"spec.followUps.tenants[{i}].templates[{j}] ({template.name})"
            cm = configmaps.get(ref.name)
            body, why = _text(cm, ref.name, ref.key, namespace=namespace,
                              limit=spec.MAX_TEMPLATE_CHARS)  # fmt: skip
            if body is None:
                problems.append(f"{where}: {why}")
                continue
            update: dict[str, Any] = {"body": body}
            if ref.subject_key is not None:
                subject, why = _text(cm, ref.name, ref.subject_key, namespace=namespace,
                                     limit=spec.MAX_SUBJECT_CHARS)  # fmt: skip
                if subject is None:
                    problems.append(f"{where}: {why}")
                    continue
                update["subject"] = subject.strip()  # a header: no trailing newline
            resolved.append(template.model_copy(update=update))
        tenants.append(tenant.model_copy(update={"templates": resolved}))
    if problems:
        return lm, problems
    out = lm.model_copy(update={"follow_ups": fu.model_copy(update={"tenants": tenants})})
    return out, followups_check.problems(out)


def read(
    kube: Kube, namespace: str, lm: spec.LeadModelSpec
) -> tuple[spec.LeadModelSpec, list[str]]:
    """`resolve` over the ConfigMaps `lm` names, read now."""
    if lm.follow_ups is None:
        return lm, []
    names = sorted(lm.follow_ups.template_configmaps())
    found = {name: kube.get("ConfigMap", namespace, name) for name in names}
    return resolve(lm, found, namespace=namespace)
