"""`ArtifactFacts`, what the gates judge about one registry version, and how artifact bytes
become them via the shared model contract (pure).

Loading verifies the digest (and the signature when keys are given); a refusal becomes
`load_error` with the contract's CamelCase reason instead of an exception, so the gate chain
reports it like any other failed gate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from leadops.contract import artifact as contract

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactFacts:
    """What the gates need to know about one registry version (built by `facts_from_bytes`)."""

    version: int
    auc: Decimal | None = None
    n_train: int = 0
    positive_rate: Decimal | None = None
    created_at: datetime | None = None
    digest: str = ""
    signed: bool = False
    signature_verified: bool = False
    # Set when loading refused the artifact: ArtifactError.reason and its message.
    load_error: str | None = None
    load_message: str = ""
    # Set when the candidate's feature spec cannot be served by this scorer.
    feature_spec_problem: str | None = None


def feature_spec_problem(art: contract.Artifact) -> str | None:
    """Can the scorer feed this model? Names the first mismatch, or None."""
    spec = art.features
    names = spec.feature_names
    if not names:
        return "feature spec has no features"
    if len(set(names)) != len(names):
        return "feature spec has duplicate feature names"
    if art.training.label in spec.input_columns:
        return f"label column {art.training.label!r} is also a model input"
    learner: Any = art.model.get("learner", {})
    declared = (learner.get("learner_model_param") or {}).get("num_feature")
    if declared is not None and int(declared) != len(names):
        return f"model expects {declared} features, feature spec yields {len(names)}"
    return None


def facts_from_bytes(
    data: bytes, *, version: int, keys: contract.VerifyKeys | None = None
) -> ArtifactFacts:
    # Digest always; the signature when there is one and a key to check it with (the
    # Required policy is the gates' business, so an unsigned artifact still loads here).
    try:
        art = contract.load_artifact(data)
        if keys is not None and art.signature is not None:
            keys.verify(art.digest, art.signature)
    except contract.ArtifactError as exc:
        return ArtifactFacts(version=version, load_error=exc.reason, load_message=exc.message)
    problem = feature_spec_problem(art)
    if art.version != version:
        problem = f"artifact says version {art.version}, its registry label says {version}"
    return ArtifactFacts(
        version=version,
        auc=Decimal(str(art.metrics.auc)),
        n_train=art.metrics.n_train,
        positive_rate=Decimal(str(art.metrics.positive_rate)),
        created_at=art.created_at,
        digest=art.digest,
        signed=art.signature is not None,
        signature_verified=art.signature is not None and keys is not None,
        feature_spec_problem=problem,
    )
