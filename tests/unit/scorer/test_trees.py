"""The compiled tree path (ONNX Runtime) against xgboost itself: random models trained here,
models trained from leads by the real trainer, NaN = missing, and models it must refuse."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost

from leadops.contract import artifact, featurize
from leadops.scorer import trees


def _train(
    *, rounds: int, depth: int, seed: int, missing: float = 0.25, **params: Any
) -> xgboost.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    x[rng.random(x.shape) < missing] = np.nan
    signal = np.nan_to_num(x[:, 0], nan=2.0) - np.nan_to_num(x[:, 1], nan=-1.0) * x[:, 2]
    y = (np.nan_to_num(signal) + rng.normal(scale=0.5, size=600) > 0).astype(np.float32)
    return xgboost.train(
        {"objective": "binary:logistic", "max_depth": depth, "nthread": 1, "seed": seed, **params},
        xgboost.DMatrix(x, label=y),
        num_boost_round=rounds,
    )


def _json(booster: xgboost.Booster) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(booster.save_raw("json"))
    return model


@pytest.mark.parametrize(
    ("rounds", "depth", "params"),
    [
        (40, 3, {}),
        (60, 6, {"base_score": 0.3}),
        (30, 8, {"grow_policy": "lossguide", "max_leaves": 20, "max_depth": 0}),
    ],
)
def test_matches_xgboost_on_probes_with_missing_values(
    rounds: int, depth: int, params: dict[str, Any]
) -> None:
    booster = _train(rounds=rounds, depth=depth, seed=rounds, **params)
    ensemble = trees.compile_model(_json(booster))
    probes = trees.probe_matrix(ensemble, rows=400, seed=1)
    assert np.isnan(probes).any()

    expected = booster.inplace_predict(probes)
    got = ensemble.predict_many(probes)

    assert ensemble.n_trees == rounds
    assert np.abs(expected - got).max() < 1e-6


def test_a_batch_call_scores_each_row_exactly_as_one_lead_per_call() -> None:
    # Shadow scores come from the batch path; a lead's answer from the one-lead path.
    booster = _train(rounds=60, depth=6, seed=11)
    ensemble = trees.compile_model(_json(booster))
    probes = trees.probe_matrix(ensemble, rows=300, seed=2)

    batched = ensemble.predict_batch(probes)

    assert np.isnan(probes).any()
    assert batched.tolist() == ensemble.predict_many(probes).tolist()
    assert ensemble.predict_batch(probes[:1]).tolist() == [ensemble.predict(probes[0])]


def test_both_default_directions_are_exercised() -> None:
    model = _json(_train(rounds=40, depth=4, seed=7, missing=0.4))
    default_left = [
        d
        for tree in model["learner"]["gradient_booster"]["model"]["trees"]
        for d, child in zip(tree["default_left"], tree["left_children"], strict=True)
        if child != -1
    ]
    # Without both directions the NaN test above would not prove the per-node routing.
    assert 0 < sum(default_left) < len(default_left)


def test_single_leaf_tree_and_threshold_boundary() -> None:
    booster = _train(rounds=5, depth=2, seed=3)
    model = _json(booster)
    ensemble = trees.compile_model(model)
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    root_feature = tree["split_indices"][0]
    cut = np.float32(tree["split_conditions"][0])
    on_cut = np.zeros((2, 8), dtype=np.float32)
    on_cut[:, root_feature] = [cut, np.nextafter(cut, np.float32(-np.inf))]
    assert np.abs(booster.inplace_predict(on_cut) - ensemble.predict_many(on_cut)).max() < 1e-6


def test_a_changed_leaf_changes_the_score() -> None:
    model = _json(_train(rounds=10, depth=3, seed=5))
    ensemble = trees.compile_model(model)
    bent = copy.deepcopy(model)
    tree = bent["learner"]["gradient_booster"]["model"]["trees"][0]
    for node, left in enumerate(tree["left_children"]):
        if left == -1:
            tree["split_conditions"][node] += 1.0
    x = np.zeros(8, dtype=np.float32)
    assert trees.compile_model(bent).margin(x) == pytest.approx(ensemble.margin(x) + 1.0)


def test_refuses_other_objectives() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "nthread": 1},
        xgboost.DMatrix(x, label=x[:, 0]),
        num_boost_round=2,
    )
    with pytest.raises(trees.UnsupportedModel, match="reg:squarederror"):
        trees.compile_model(_json(booster))


def test_refuses_a_document_that_is_not_an_xgboost_model() -> None:
    with pytest.raises(trees.UnsupportedModel, match="not an xgboost JSON model"):
        trees.compile_model({"trees": []})


def _xgboost(model: dict[str, Any]) -> xgboost.Booster:
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    booster.set_param({"nthread": 1})
    return booster


def test_matches_xgboost_on_a_model_trained_by_leadops_train(
    trained_artifact_path: Path, synthetic_outcomes: Path
) -> None:
    art = artifact.load_artifact(trained_artifact_path)
    ensemble = trees.compile_model(art.model)
    with synthetic_outcomes.open(newline="") as f:
        rows = [{k: v for k, v in row.items() if k != "converted"} for row in csv.DictReader(f)]
    leads = featurize.matrix(art.features, rows[:500])
    # Real leads with blank numeric fields: NaN must take xgboost's default direction.
    assert np.isnan(leads).any()
    probes = trees.probe_matrix(ensemble, rows=500, seed=3)
    booster = _xgboost(art.model)
    for x in (leads, probes):
        assert np.abs(booster.inplace_predict(x) - ensemble.predict_many(x)).max() < 1e-6


def test_matches_xgboost_on_all_missing_and_infinite_inputs(trained_artifact_path: Path) -> None:
    art = artifact.load_artifact(trained_artifact_path)
    ensemble = trees.compile_model(art.model)
    n = ensemble.n_features
    x = np.stack([np.full(n, np.nan), np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n)]).astype(
        np.float32
    )
    assert np.abs(_xgboost(art.model).inplace_predict(x) - ensemble.predict_many(x)).max() < 1e-6


def _with_first_split(model: dict[str, Any], **change: Any) -> dict[str, Any]:
    bent = copy.deepcopy(model)
    tree = bent["learner"]["gradient_booster"]["model"]["trees"][0]
    for key, value in change.items():
        tree[key] = value(tree)
    return bent


def test_refuses_categorical_splits() -> None:
    model = _json(_train(rounds=3, depth=2, seed=2))
    bent = _with_first_split(model, split_type=lambda t: [1, *t["split_type"][1:]])
    with pytest.raises(trees.UnsupportedModel, match="categorical splits"):
        trees.compile_model(bent)


def test_refuses_children_outside_the_tree() -> None:
    model = _json(_train(rounds=3, depth=2, seed=2))
    bent = _with_first_split(model, right_children=lambda t: [99, *t["right_children"][1:]])
    with pytest.raises(trees.UnsupportedModel, match="children outside the tree"):
        trees.compile_model(bent)


def test_refuses_a_truncated_tree() -> None:
    model = _json(_train(rounds=3, depth=2, seed=2))
    bent = _with_first_split(model, split_conditions=lambda t: t["split_conditions"][:1])
    with pytest.raises(trees.UnsupportedModel, match="inconsistent node arrays"):
        trees.compile_model(bent)
