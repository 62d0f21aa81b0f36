"""Loading refuses a model the compiled tree path would score differently from xgboost."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from leadops.scorer import trees
from leadops.scorer.model import ModelRejected, load_serving_model
from tests.fixtures.artifacts import Built


def test_a_good_model_loads_with_parity(good_model: Built) -> None:
    model = load_serving_model(good_model.path, probe_rows=64)
    assert model.version == good_model.version
    assert model.ensemble.n_features == good_model.n_features


@pytest.mark.parametrize("path", ["predict_many", "predict_batch"])  # one lead, or a batch
def test_parity_mismatch_refuses_the_model(
    good_model: Built, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    honest = getattr(trees.TreeEnsemble, path)

    def off_by_a_little(
        self: trees.TreeEnsemble, rows: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        off: npt.NDArray[np.float64] = honest(self, rows) + 1e-5
        return off

    monkeypatch.setattr(trees.TreeEnsemble, path, off_by_a_little)
    with pytest.raises(ModelRejected) as refused:
        load_serving_model(good_model.path, probe_rows=64)
    assert refused.value.reason == "ParityMismatch"
    # The honest gap (under 1e-6) plus the injected 1e-5.
    assert refused.value.details["max_difference"] == pytest.approx(1e-5, abs=1e-6)


def test_min_auc_gate(good_model: Built) -> None:
    with pytest.raises(ModelRejected) as refused:
        load_serving_model(good_model.path, min_auc=0.81)
    assert refused.value.body() == {
        "ok": False,
        "error": "Model AUC below threshold",
        "reason": "AucBelowThreshold",
        "rejected": True,
        "auc": 0.8,
        "min_auc": 0.81,
    }
