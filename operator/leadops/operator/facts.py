"""Artifact bytes -> the facts the gates judge, via the shared model contract (pure).

Loading verifies the digest (and the signature when keys are given); a refusal becomes
`load_error` with the contract's CamelCase reason instead of an exception, so the gate chain
reports it like any other failed gate.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from leadops.operator import reasons
from leadops.operator.gates import ArtifactFacts

logger = logging.getLogger(__name__)


def facts_from_bytes(data: bytes, *, version: int, keys: Any = None) -> ArtifactFacts:
    from leadops.contract import artifact as contract  # type: ignore[attr-defined,unused-ignore]  # noqa: PLC0415

    try:
        art = contract.load_artifact(data, keys=keys)
    except contract.ArtifactError as exc:
        return ArtifactFacts(
            version=version,
            load_error=str(getattr(exc, "reason", reasons.CORRUPT_ARTIFACT)),
            load_message=str(exc),
        )
    except (ValueError, TypeError) as exc:
        return ArtifactFacts(
            version=version, load_error=reasons.CORRUPT_ARTIFACT, load_message=str(exc)
        )
    metrics = art.metrics
    created = getattr(art, "created_at", None)
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if created is None:
        created = datetime.fromtimestamp(int(art.version), tz=UTC)
    signature = getattr(art, "signature", None)
    problem = (
        None
        if int(art.version) == version
        else (f"artifact says version {art.version}, registry says {version}")
    )
    return ArtifactFacts(
        version=version,
        auc=Decimal(str(metrics.auc)),
        n_train=int(metrics.n_train),
        positive_rate=Decimal(str(metrics.positive_rate)),
        created_at=created,
        digest=str(getattr(art, "digest", "")),
        signed=bool(signature),
        signature_verified=bool(signature) and keys is not None,
        feature_spec_problem=problem,
    )
