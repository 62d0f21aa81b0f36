"""The model registry: one immutable ConfigMap per model version (pure codec and GC rules).

A version's ConfigMap holds the gzipped artifact in `binaryData` (spec.artifacts configMap), or
names its object in the bucket in an annotation (spec.artifacts s3), labels naming its LeadModel
and version, and annotations with AUC, n_train, positive rate and digest so `kubectl get cm
-L` shows them without decoding. The data is immutable; the operator only adds history
annotations (promoted/retired/rolled back), which is how history survives operator restarts.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from leadops.contract import artifact as contract
from leadops.operator import reasons
from leadops.operator.artifact_facts import ArtifactFacts

DATA_KEY = "model.json.gz"
MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_LEADMODEL = "leadops.io/leadmodel"
# One key, used as the registry ConfigMap label and the scorer Deployment annotation.
MODEL_VERSION = "leadops.io/model-version"
LABEL_COMPONENT = "leadops.io/component"
COMPONENT_MODEL = "model"
ANN_AUC = "leadops.io/auc"
ANN_N_TRAIN = "leadops.io/n-train"
ANN_POSITIVE_RATE = "leadops.io/positive-rate"
ANN_DIGEST = "leadops.io/digest"
ANN_CREATED_AT = "leadops.io/created-at"
# s3://bucket/key of the gzipped artifact when it lives in object storage (no binaryData then).
ANN_ARTIFACT_OBJECT = "leadops.io/artifact-object"
ANN_PROMOTED_AT = "leadops.io/promoted-at"
ANN_RETIRED_AT = "leadops.io/retired-at"
ANN_ROLLED_BACK_AT = "leadops.io/rolled-back-at"
ANN_ROLLBACK_REASON = "leadops.io/rollback-reason"
# Who rolled the version back (the operator, or the person's Kubernetes user) and why, in words.
ANN_ROLLED_BACK_BY = "leadops.io/rolled-back-by"
ANN_ROLLBACK_MESSAGE = "leadops.io/rollback-message"
# Every annotation of the rolled-back mark: `leadops allow` removes them all.
ROLLBACK_MARK = (ANN_ROLLED_BACK_AT, ANN_ROLLBACK_REASON, ANN_ROLLED_BACK_BY, ANN_ROLLBACK_MESSAGE)
# ConfigMaps are capped at 1 MiB in etcd; leave room for metadata.
MAX_COMPRESSED_BYTES = 900 * 1024


class RegistryError(Exception):
    """A registry ConfigMap or artifact that cannot be stored or read."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def configmap_name(leadmodel: str, version: int) -> str:
    return f"{leadmodel}-model-{version}"


def selector(leadmodel: str) -> str:
    return f"{LABEL_LEADMODEL}={leadmodel},{LABEL_COMPONENT}={COMPONENT_MODEL}"


@dataclass(frozen=True)
class Summary:
    """The few artifact fields that go on the ConfigMap's annotations."""

    version: int
    auc: str
    n_train: int
    positive_rate: str
    digest: str
    created_at: str


def summarize(document: Mapping[str, Any]) -> Summary:
    """Read the annotation fields from an artifact's JSON document."""
    try:
        metrics = document["metrics"]
        return Summary(
            version=int(document["version"]),
            auc=str(metrics["auc"]),
            n_train=int(metrics["n_train"]),
            positive_rate=str(metrics.get("positive_rate", "")),
            digest=str(document.get("digest", "")),
            created_at=str(document.get("created_at", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(reasons.CORRUPT_ARTIFACT, f"artifact lacks {exc}") from exc


def pack(artifact_bytes: bytes) -> bytes:
    """The stored form of an artifact: gzip, deterministic (no mtime), so a retry is identical."""
    return gzip.compress(artifact_bytes, compresslevel=9, mtime=0)


def encode(
    artifact_bytes: bytes,
    *,
    leadmodel: str,
    namespace: str,
    owner: Mapping[str, Any] | None = None,
    object_url: str = "",
) -> dict[str, Any]:
    """The immutable ConfigMap for one artifact (the bytes exactly as written by training), or,
    with `object_url`, its metadata only: the bytes are that object in the bucket."""
    if len(artifact_bytes) > contract.MAX_UNPACKED_BYTES:  # the operator would refuse it unpacked
        raise RegistryError(
            reasons.ARTIFACT_TOO_LARGE,
            f"artifact is {len(artifact_bytes)} bytes, over the registry's "
            f"{contract.MAX_UNPACKED_BYTES}",
        )
    try:
        document = json.loads(artifact_bytes)
    except ValueError as exc:
        raise RegistryError(reasons.CORRUPT_ARTIFACT, f"artifact is not JSON: {exc}") from exc
    summary = summarize(document)
    packed = b"" if object_url else pack(artifact_bytes)
    if len(packed) > MAX_COMPRESSED_BYTES:
        raise RegistryError(
            reasons.ARTIFACT_TOO_LARGE,
            f"artifact is {len(packed)} bytes gzipped, over the ConfigMap store's "
            f"{MAX_COMPRESSED_BYTES}: store it in object storage with spec.artifacts.s3",
        )
    metadata: dict[str, Any] = {
        "name": configmap_name(leadmodel, summary.version),
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": "leadops",
            "app.kubernetes.io/instance": leadmodel,
            MANAGED_BY: "leadops",
            LABEL_LEADMODEL: leadmodel,
            LABEL_COMPONENT: COMPONENT_MODEL,
            MODEL_VERSION: str(summary.version),
        },
        "annotations": {
            ANN_AUC: summary.auc,
            ANN_N_TRAIN: str(summary.n_train),
            ANN_POSITIVE_RATE: summary.positive_rate,
            ANN_DIGEST: summary.digest,
            ANN_CREATED_AT: summary.created_at,
        },
    }
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
    }
    if object_url:
        metadata["annotations"][ANN_ARTIFACT_OBJECT] = object_url
    else:
        configmap["binaryData"] = {DATA_KEY: base64.b64encode(packed).decode("ascii")}
    return configmap


def object_url_of(configmap: Mapping[str, Any]) -> str:
    """The s3:// URL of the version's artifact when it lives in object storage, else ""."""
    ann = (configmap.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(ANN_ARTIFACT_OBJECT, ""))


def decode(configmap: Mapping[str, Any], *, limit: int = contract.MAX_UNPACKED_BYTES) -> bytes:
    """The artifact bytes stored in a registry ConfigMap, unpacked as a bounded stream: a gzip
    bomb is ArtifactTooLarge before more than `limit` bytes are held."""
    name = configmap.get("metadata", {}).get("name", "?")
    blob = (configmap.get("binaryData") or {}).get(DATA_KEY)
    if not blob:
        raise RegistryError(reasons.CORRUPT_ARTIFACT, f"ConfigMap {name} has no {DATA_KEY}")
    try:
        packed = base64.b64decode(blob, validate=True)
    except ValueError as exc:
        raise RegistryError(
            reasons.CORRUPT_ARTIFACT, f"ConfigMap {name}: {DATA_KEY} is not base64"
        ) from exc
    try:
        return contract.gunzip_bounded(packed, limit=limit)
    except contract.ArtifactError as exc:
        raise RegistryError(
            exc.reason, f"ConfigMap {name}: cannot unpack {DATA_KEY}: {exc.message}"
        ) from exc


@dataclass(frozen=True)
class Entry:
    """One version in the registry as the planner sees it (no artifact bytes)."""

    version: int
    name: str
    auc: str = ""
    n_train: int = 0
    created_at: str = ""
    promoted_at: str = ""
    retired_at: str = ""
    rolled_back_at: str = ""
    rollback_reason: str = ""
    rolled_back_by: str = ""
    rollback_message: str = ""
    # s3://bucket/key when the artifact is in object storage; "" when in the ConfigMap.
    object_url: str = ""
    facts: ArtifactFacts | None = field(default=None, compare=False)

    @property
    def rolled_back(self) -> bool:
        return bool(self.rolled_back_at)


def entry_of(configmap: Mapping[str, Any], *, facts: ArtifactFacts | None = None) -> Entry:
    meta = configmap.get("metadata", {})
    labels = meta.get("labels") or {}
    ann = meta.get("annotations") or {}
    return Entry(
        version=int(labels[MODEL_VERSION]),
        name=str(meta.get("name", "")),
        auc=str(ann.get(ANN_AUC, "")),
        n_train=_int(ann.get(ANN_N_TRAIN)),
        created_at=str(ann.get(ANN_CREATED_AT, "")),
        promoted_at=str(ann.get(ANN_PROMOTED_AT, "")),
        retired_at=str(ann.get(ANN_RETIRED_AT, "")),
        rolled_back_at=str(ann.get(ANN_ROLLED_BACK_AT, "")),
        rollback_reason=str(ann.get(ANN_ROLLBACK_REASON, "")),
        rolled_back_by=str(ann.get(ANN_ROLLED_BACK_BY, "")),
        rollback_message=str(ann.get(ANN_ROLLBACK_MESSAGE, "")),
        object_url=object_url_of(configmap),
        facts=facts,
    )


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def decimal_or_none(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def garbage(
    versions: Iterable[int],
    *,
    limit: int,
    keep: Iterable[int | None] = (),
) -> list[int]:
    """Versions to delete: all but the newest `limit`, never any in `keep` (serving, previous,
    pinned, rolling out)."""
    protected = {v for v in keep if v is not None}
    ordered = sorted(set(versions), reverse=True)
    return sorted(v for v in ordered[limit:] if v not in protected)
