"""What a LeadModel author may make LeadOps do: no more than they could do themselves.

Three checks before anything is built, each an InvalidSpec naming what was refused:
- images only from the registries/repositories the operator's admin allows
  (`settings.allowed_images`: LEADOPS_ALLOWED_IMAGES, the chart's `allowedImages`);
- a Secret only if it opts in to this LeadModel (annotation `leadops.io/usable-by`:
  comma-separated LeadModel names, or `*`), so a LeadModel cannot mount a Secret of the
  namespace its author could not read;
- Pod annotations only from an allowlist of exact keys (metrics scraping, mesh injection),
  never one that loosens AppArmor or seccomp.
Secrets that do not exist, or lack the key named, are not refused but missing
(Ready=False/MissingSecret): nothing is rolled out until they exist.
Pure except `secret_findings`, which reads the named Secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leadops.operator import builders
from leadops.operator.settings import OperatorSettings
from leadops.operator.spec import LeadModelSpec, SecretKeyRef

if TYPE_CHECKING:
    from leadops.operator.kube import Kube

USABLE_BY = "leadops.io/usable-by"

# Exact keys: a prefix such as sidecar.istio.io/ would also let an author pick the sidecar's
# image or mount volumes into it.
POD_ANNOTATIONS_ALLOWED = frozenset(
    {
        "prometheus.io/scrape",
        "prometheus.io/port",
        "prometheus.io/path",
        "prometheus.io/scheme",
        "sidecar.istio.io/inject",
        "traffic.sidecar.istio.io/includeInboundPorts",
        "traffic.sidecar.istio.io/excludeInboundPorts",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "linkerd.io/inject",
        "config.linkerd.io/skip-inbound-ports",
        "config.linkerd.io/skip-outbound-ports",
        "cluster-autoscaler.kubernetes.io/safe-to-evict",
        "kubectl.kubernetes.io/default-container",
    }
)
# Never, whatever an allowlist says: these loosen the Pod's confinement.
_LOOSENING = re.compile(
    r"^(container\.apparmor\.security\.beta\.kubernetes\.io/|"
    r"seccomp\.security\.alpha\.kubernetes\.io/|container\.seccomp\.security\.alpha\.)"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def max_name_length() -> int:
    """The longest LeadModel name whose every child name fits (a CronJob's is 52 at most)."""
    longest_suffix = max(len(child) - 1 for child in builders.names("x").values())
    return 52 - longest_suffix


def name_problems(name: str) -> list[str]:
    """The same rule as the CRD's CEL rule, for an apiserver without it (older CRD)."""
    limit = max_name_length()
    problems = []
    if len(name) > limit:
        problems.append(
            f"metadata.name {name!r} is {len(name)} characters; at most {limit}, so that "
            f"{builders.names(name)['backfill']!r} fits a CronJob's 52"
        )
    if not _DNS_1035.match(name):
        problems.append(
            f"metadata.name {name!r} must start with a letter and hold only a-z, 0-9 and '-' "
            "(it names the scorer's Service)"
        )
    return problems


def normalize_image(image: str) -> str:
    """docker.io/ spelled out, as the container runtime resolves a short name."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        return f"docker.io/{image}" if rest else f"docker.io/library/{image}"
    return image


def image_allowed(image: str, allowed: Iterable[str]) -> bool:
    full = normalize_image(image)
    for prefix in allowed:
        if prefix == "*":
            return True
        want = normalize_image(prefix) if "/" in prefix else prefix
        if want.endswith("/") and full.startswith(want):
            return True
        if full == want or (full.startswith(want) and full[len(want)] in ":@"):
            return True
    return False


def image_problems(lm: LeadModelSpec, allowed: tuple[str, ...]) -> list[str]:
    images = {
        "spec.scorer.image": lm.scorer.image,
        "spec.training.image": lm.training.image,
        "spec.piiBackfill.image": lm.pii_backfill.image,
        "spec.followUps.image": lm.follow_ups.image if lm.follow_ups is not None else None,
    }
    return [
        f"{field} {image!r} is not from an allowed registry or repository "
        f"({', '.join(allowed)}; the operator's allowedImages setting)"
        for field, image in images.items()
        if image is not None and not image_allowed(image, allowed)
    ]


def metadata_problems(lm: LeadModelSpec, *, extra: frozenset[str] = frozenset()) -> list[str]:
    """Pod annotations off the allowlist (plus the admin's `extra` keys), invalid labels."""
    allowed = POD_ANNOTATIONS_ALLOWED | extra
    problems = []
    for key in lm.scorer.pod_annotations:
        if _LOOSENING.match(key) or key not in allowed:
            problems.append(
                f"spec.scorer.podAnnotations {key!r} is not allowed (allowed: Prometheus, "
                "Istio and Linkerd injection and ports, safe-to-evict, default-container)"
            )
    for key, value in lm.scorer.pod_labels.items():
        prefix, _, name = key.rpartition("/")
        valid = (
            0 < len(name) <= 63
            and _LABEL_NAME.match(name) is not None
            and (not prefix or (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix) is not None))
            and _LABEL_VALUE.match(value) is not None
        )
        if not valid:
            problems.append(f"spec.scorer.podLabels {key!r}: not a valid label key and value")
    return problems


def secret_key_refs(lm: LeadModelSpec) -> dict[str, SecretKeyRef]:
    """Field path -> Secret and key, for every Secret a LeadModel makes LeadOps use."""
    refs = {
        "spec.redis.urlSecretRef": lm.redis.url_secret_ref,
        "spec.scorer.apiKeySecretRef": lm.scorer.api_key_secret_ref,
        "spec.scorer.ingestKeysSecretRef": lm.scorer.ingest_keys_secret_ref,
        "spec.signing.keySecretRef": lm.signing.key_secret_ref,
        "spec.pii.keySaltSecretRef": lm.pii.key_salt_secret_ref,
    }
    bootstrap = lm.training.bootstrap
    if bootstrap is not None and bootstrap.secret_key_ref is not None:
        refs["spec.training.bootstrap.secretKeyRef"] = bootstrap.secret_key_ref
    if lm.follow_ups is not None:
        refs |= lm.follow_ups.secret_refs()
    return {field: ref for field, ref in refs.items() if ref is not None}


def secret_refs(lm: LeadModelSpec) -> dict[str, str]:
    """Field path -> Secret name for every Secret a LeadModel makes LeadOps use."""
    return {field: ref.name for field, ref in secret_key_refs(lm).items()}


def usable_by(secret: Mapping[str, object], leadmodel: str) -> bool:
    meta = secret.get("metadata")
    annotations = (meta.get("annotations") if isinstance(meta, Mapping) else None) or {}
    names = {n.strip() for n in str(annotations.get(USABLE_BY, "")).split(",")}
    return "*" in names or leadmodel in names


@dataclass(frozen=True)
class Findings:
    """What a LeadModel asks for: `refused` it may not have (InvalidSpec); `missing`, Secrets
    or keys that do not exist (yet): Pods that mount them could not start."""

    refused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def judge_secrets(
    refs: Mapping[str, SecretKeyRef],
    secrets: Mapping[str, Mapping[str, Any] | None],
    *,
    namespace: str,
    leadmodel: str,
) -> Findings:
    """Pure: each named Secret (None: absent) must opt in to the LeadModel and hold its key."""
    found = Findings()
    for where, ref in refs.items():
        secret = secrets.get(ref.name)
        if secret is None:
            found.missing.append(
                f"{where}: Secret {namespace}/{ref.name} (key {ref.key!r}) does not exist"
            )
        elif not usable_by(secret, leadmodel):
            found.refused.append(
                f"{where}: Secret {namespace}/{ref.name} does not opt in to LeadModel {leadmodel} "
                f"(annotate it {USABLE_BY}={leadmodel}, or '*' for every LeadModel)"
            )
        elif ref.key not in (secret.get("data") or {}):
            found.missing.append(f"{where}: Secret {namespace}/{ref.name} has no key {ref.key!r}")
    return found


def secret_findings(kube: Kube, namespace: str, leadmodel: str, lm: LeadModelSpec) -> Findings:
    refs = secret_key_refs(lm)
    secrets = {
        name: kube.get("Secret", namespace, name) for name in {r.name for r in refs.values()}
    }
    return judge_secrets(refs, secrets, namespace=namespace, leadmodel=leadmodel)


def problems(
    kube: Kube, namespace: str, leadmodel: str, lm: LeadModelSpec, settings: OperatorSettings
) -> Findings:
    """Everything this LeadModel asks for that its author may not have LeadOps do, and the
    Secrets it names that are missing."""
    refused = name_problems(leadmodel)
    refused += image_problems(lm, settings.allowed_images)
    refused += metadata_problems(lm, extra=settings.extra_pod_annotations)
    if refused:  # the Secrets are read only for a spec that is otherwise acceptable
        return Findings(refused=refused)
    return secret_findings(kube, namespace, leadmodel, lm)
