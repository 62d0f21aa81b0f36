"""Loading a model artifact into a ServingModel, refusing anything not fit to serve.

`load_serving_model` builds the complete object (verified artifact, compiled
trees, xgboost parity checked, drift window) before anyone can see it, and
raises ModelRejected with the reason otherwise. Swapping it in is the caller's
single assignment (state.ScorerState.serve).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import xgboost

from leadops.contract import artifact as contract_artifact
from leadops.contract import drift as contract_drift
from leadops.contract import featurize
from leadops.contract.features import FeatureSpec
from leadops.scorer import schemas, trees
from leadops.scorer.drift import DriftWindow
from leadops.scorer.estimate import ScoreWindow

if TYPE_CHECKING:  # settings imports this module (through the matured-AUC guard)
    from leadops.scorer.settings import Settings

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-6
# A version is the training time (unix seconds). One more than a year ahead is no clock skew but
# a bad file, and dates derived from it (version_date, age) might not even be computable.
MAX_FUTURE_SECONDS = 365 * 24 * 3600
SignatureStatus = Literal["verified", "unsigned", "not_checked"]


class ModelRejected(Exception):
    """The artifact must not serve; `body` is the API's rejection body (seed format)."""

    def __init__(self, reason: str, error: str, **details: Any) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, "reason": self.reason, "rejected": True} | (
            self.details
        )


@dataclass(frozen=True, slots=True)
class ServingModel:
    """One verified, compiled model and the drift and score windows of the leads it scored."""

    artifact: contract_artifact.Artifact
    spec: FeatureSpec
    ensemble: trees.TreeEnsemble
    # The file it was read from; None when its bytes came from another replica's announcement.
    path: Path | None
    loaded_at: float
    signature: SignatureStatus
    drift: DriftWindow = field(repr=False)
    # Its recent scores, for the AUC to expect before outcomes arrive (estimate.py).
    estimate: ScoreWindow = field(repr=False)
    # The spec compiled once at load: scoring a lead then does no per-spec work.
    featurizer: featurize.Featurizer = field(repr=False)

    @property
    def version(self) -> int:
        return int(self.artifact.version)

    @property
    def auc(self) -> float:
        return float(self.artifact.metrics.auc)

    @property
    def n_train(self) -> int:
        return int(self.artifact.metrics.n_train)

    @property
    def version_date(self) -> str:
        return datetime.fromtimestamp(self.version, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def age_hours(self, *, now: float) -> float:
        return max(0.0, (now - self.version) / 3600.0)

    def card(self, *, now: float, stale_hours: float) -> schemas.ModelCardResponse:
        art = self.artifact
        age = self.age_hours(now=now)
        sig = art.signature
        return schemas.ModelCardResponse(
            version=self.version,
            version_date=self.version_date,
            created_at=art.created_at,
            training_window=art.card.training_window,
            training=art.training,
            metrics=art.metrics,
            card=art.card,
            digest=art.digest,
            digest_verified=True,  # load_artifact refuses a file whose digest does not match
            signature=schemas.SignatureInfo(
                status=self.signature,
                algorithm=sig.algorithm if sig is not None else None,
                key_id=sig.key_id if sig is not None else None,
            ),
            staleness=schemas.Staleness(
                age_hours=round(age, 3), stale_after_hours=stale_hours, stale=age > stale_hours
            ),
        )

    def score_row(
        self, row: dict[str, str], cells: featurize.RowCells | None = None
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """The lead's conversion probability and its feature vector. `cells`: the row's cells,
        kept for another model's featurizer (an experiment's shadow scores)."""
        vector = self.featurizer.vector(row, cells)
        return self.ensemble.predict(vector), vector

    def score_vectors(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The conversion probabilities of a matrix of feature vectors (this model's spec) in
        one call: the shadow scores of a batch of records (leadops.scorer.shadow)."""
        return self.ensemble.predict_batch(vectors)


def load_serving_model(
    source: Path | bytes,
    *,
    min_auc: float | None = None,
    verify_keys: contract_artifact.VerifyKeys | None = None,
    expect_digest: str | None = None,
    drift_window: int = 500,
    drift_min_samples: int = 50,
    probe_rows: int = 256,
    estimate_window: int = 5000,
    estimate_min_leads: int = 100,
) -> ServingModel:
    """Read, verify, compile and parity-check the artifact at `source` (a file, or its bytes),
    or raise ModelRejected."""
    try:
        return _load(
            source,
            min_auc=min_auc,
            verify_keys=verify_keys,
            expect_digest=expect_digest,
            drift_window=drift_window,
            drift_min_samples=drift_min_samples,
            probe_rows=probe_rows,
            estimate_window=estimate_window,
            estimate_min_leads=estimate_min_leads,
        )
    except RecursionError:  # a model nested deeper than any real one: refused, not an error
        raise ModelRejected(
            "CorruptArtifact", _ARTIFACT_ERRORS["CorruptArtifact"], detail="nested too deeply"
        ) from None


def load_configured(
    source: Path | bytes,
    settings: Settings,
    *,
    verify_keys: contract_artifact.VerifyKeys | None,
    expect_digest: str | None,
    min_auc: float | None = None,
) -> ServingModel:
    """`load_serving_model` with the scorer's own windows and parity probe
    (LEADOPS_DRIFT_WINDOW, LEADOPS_ESTIMATE_WINDOW, ...): every model a running scorer loads,
    serving, previous or variant, is loaded alike."""
    return load_serving_model(
        source,
        min_auc=min_auc,
        verify_keys=verify_keys,
        expect_digest=expect_digest,
        drift_window=settings.drift_window,
        drift_min_samples=settings.drift_min_samples,
        estimate_window=settings.estimate_window,
        estimate_min_leads=settings.estimate_min_leads,
        probe_rows=settings.parity_probe_rows,
    )


def _load(
    source: Path | bytes,
    *,
    min_auc: float | None,
    verify_keys: contract_artifact.VerifyKeys | None,
    expect_digest: str | None,
    drift_window: int,
    drift_min_samples: int,
    probe_rows: int,
    estimate_window: int,
    estimate_min_leads: int,
) -> ServingModel:
    try:
        art = contract_artifact.load_artifact(source, keys=verify_keys, expect_digest=expect_digest)
    except contract_artifact.ArtifactError as exc:
        raise ModelRejected(
            exc.reason, _ARTIFACT_ERRORS.get(exc.reason, "Model file refused"), detail=exc.message
        ) from None
    signature: SignatureStatus
    if verify_keys is not None:
        signature = "verified"  # load_artifact refuses unsigned or badly signed files then
    else:
        signature = "unsigned" if art.signature is None else "not_checked"

    if art.version > time.time() + MAX_FUTURE_SECONDS:
        raise ModelRejected(
            "VersionInFuture",
            "Model version (its training time) is in the future",
            version=art.version,
        )
    auc = float(art.metrics.auc)
    if min_auc is not None and not auc >= min_auc:
        raise ModelRejected(
            "AucBelowThreshold", "Model AUC below threshold", auc=auc, min_auc=min_auc
        )

    spec = art.features
    try:
        ensemble = trees.compile_model(art.model)
    except trees.UnsupportedModel as exc:
        raise ModelRejected("UnsupportedModel", f"Model cannot be served: {exc}") from None
    if ensemble.n_features != len(spec.feature_names):
        raise ModelRejected(
            "FeatureSpecMismatch",
            "Model and feature spec disagree on the number of features",
            model_features=ensemble.n_features,
            spec_features=len(spec.feature_names),
        )
    worst = _parity_gap(art.model, ensemble, probe_rows=probe_rows)
    if not worst <= PARITY_TOLERANCE:
        raise ModelRejected(
            "ParityMismatch",
            "Compiled tree path (ONNX Runtime) disagrees with xgboost on this model",
            max_difference=worst,
        )

    stats = art.feature_stats
    window = DriftWindow(
        n_features=ensemble.n_features,
        window=drift_window,
        min_samples=drift_min_samples,
        compute=lambda rows: contract_drift.drift_score(stats, rows),
    )
    return ServingModel(
        artifact=art,
        spec=spec,
        ensemble=ensemble,
        path=source if isinstance(source, Path) else None,
        loaded_at=time.time(),
        signature=signature,
        drift=window,
        estimate=ScoreWindow(art.calibration, window=estimate_window, min_leads=estimate_min_leads),
        featurizer=featurize.compiled(spec),
    )


_ARTIFACT_ERRORS = {
    "ArtifactNotFound": "Model file not found",
    "ArtifactTooLarge": "Model file is too large",
    "SignatureMissing": "Model is not signed and a signature is required",
    "CorruptArtifact": "Model file is corrupt",
    "DigestMismatch": "Model digest does not match its contents or the validated digest",
    "SignatureInvalid": "Model signature is invalid",
    "UnsupportedFormat": "Model file format is not supported",
}


def read_artifact(path: Path) -> bytes:
    """The artifact file's bytes (read once, so what is validated is what is announced), or
    ModelRejected (ArtifactNotFound, ArtifactTooLarge)."""
    try:
        return contract_artifact.read_bytes(path)
    except contract_artifact.ArtifactError as exc:
        raise ModelRejected(
            exc.reason, _ARTIFACT_ERRORS.get(exc.reason, "Model file refused"), detail=exc.message
        ) from None


def _parity_gap(model: dict[str, Any], ensemble: trees.TreeEnsemble, *, probe_rows: int) -> float:
    """Largest |compiled - xgboost| probability over a probe batch (xgboost is used only here),
    through both paths that score leads: one lead per call, and a batch per call (shadow)."""
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    booster.set_param({"nthread": 1})
    probes = trees.probe_matrix(ensemble, rows=probe_rows)
    expected = np.asarray(booster.inplace_predict(probes), dtype=np.float64)
    one_by_one = np.abs(expected - ensemble.predict_many(probes))
    batched = np.abs(expected - ensemble.predict_batch(probes))
    worst = float(max(one_by_one.max(), batched.max()))
    return worst if math.isfinite(worst) else math.inf
