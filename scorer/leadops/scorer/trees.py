"""A vectorised evaluator for xgboost's binary:logistic tree ensembles.

The xgboost Booster's single-row predict costs 130-230 us here (DMatrix build
plus a C call); scoring one lead must cost far less. This evaluator walks all
trees at once, one tree level per step, with a handful of numpy `take` calls
per level, so one lead costs a few tens of microseconds.

Layout: every node of every tree gets one global id. Each step reads, for the
node each tree is at, its feature and threshold, compares, and jumps to a child.
A leaf is its own child on both sides, so trees shallower than the deepest one
just stay put. Missing values (NaN) follow xgboost's per-node default
direction: the input vector is doubled into "NaN as -inf" (always left) and
"NaN as +inf" (always right) halves, and each node reads from the half its
default direction selects. xgboost goes left iff `value < threshold`, in float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

SUPPORTED_OBJECTIVES = frozenset({"binary:logistic"})


class UnsupportedModel(ValueError):
    """The xgboost model uses something this evaluator does not implement."""


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """All trees of one model as flat arrays, ready to evaluate."""

    n_features: int
    n_trees: int
    depth: int
    base_margin: float
    roots: npt.NDArray[np.intp]
    # Indexed by 2 * node id (both slots of a node hold the same value), so the
    # walk keeps one doubled state and a child is `children[state + go_right]`.
    feature2: npt.NDArray[np.intp]
    threshold2: F32
    children2: npt.NDArray[np.intp]
    leaf_value: npt.NDArray[np.float64]
    # What a NaN becomes in each half of the doubled input: -inf (left half), +inf (right).
    missing_fill: F32

    def margin(self, x: F32) -> float:
        """Raw margin (log-odds) for one feature vector of length n_features."""
        x32 = np.asarray(x, dtype=np.float32)
        xe = np.concatenate((x32, x32))
        # Left half: NaN -> -inf (always `< threshold`, goes left); right half: NaN -> +inf.
        np.copyto(xe, self.missing_fill, where=np.isnan(xe))
        state = self.roots
        feature2, threshold2, children2 = self.feature2, self.threshold2, self.children2
        for _ in range(self.depth):
            go_right = xe.take(feature2.take(state)) >= threshold2.take(state)
            state = children2.take(state + go_right)
        return float(self.leaf_value.take(state >> 1).sum()) + self.base_margin

    def predict(self, x: F32) -> float:
        """Probability of conversion for one feature vector."""
        return _sigmoid(self.margin(x))

    def predict_many(self, rows: F32) -> npt.NDArray[np.float64]:
        """Probabilities for a matrix of feature vectors, one row at a time (the serving path)."""
        return np.array([self.predict(row) for row in np.asarray(rows, dtype=np.float32)])


def _sigmoid(margin: float) -> float:
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    z = math.exp(margin)
    return z / (1.0 + z)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _base_score(learner: Mapping[str, Any]) -> float:
    raw = str(learner["learner_model_param"]["base_score"])
    # xgboost >= 3 writes a vector like "[5E-1]"; 2.x a plain number.
    values = [float(v) for v in raw.strip("[]").split(",") if v.strip()]
    if len(values) != 1:
        raise UnsupportedModel(f"expected one base_score, got {raw!r}")
    return values[0]


def compile_model(model: Mapping[str, Any]) -> TreeEnsemble:
    """Turn xgboost's JSON model (Booster.save_raw('json') parsed) into a TreeEnsemble."""
    try:
        learner = model["learner"]
        objective = learner["objective"]["name"]
        booster = learner["gradient_booster"]
        n_features = int(learner["learner_model_param"]["num_feature"])
        n_class = int(learner["learner_model_param"].get("num_class", "0"))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsupportedModel(f"not an xgboost JSON model: missing {exc}") from None
    if objective not in SUPPORTED_OBJECTIVES:
        raise UnsupportedModel(f"objective {objective!r} is not supported (binary:logistic only)")
    if booster.get("name") != "gbtree":
        raise UnsupportedModel(f"booster {booster.get('name')!r} is not supported (gbtree only)")
    if n_class > 1:
        raise UnsupportedModel("multi-class models are not supported")
    trees = booster["model"]["trees"]
    if not trees:
        raise UnsupportedModel("the model has no trees")

    features: list[int] = []
    thresholds: list[float] = []
    children: list[int] = []
    leaves: list[float] = []
    roots: list[int] = []
    depth = 0
    for tree in trees:
        offset = len(leaves)
        roots.append(offset)
        depth = max(
            depth,
            _add_tree(
                tree,
                offset=offset,
                n_features=n_features,
                features=features,
                thresholds=thresholds,
                children=children,
                leaves=leaves,
            ),
        )

    def doubled(values: list[Any], dtype: Any) -> Any:
        return np.repeat(np.asarray(values, dtype=dtype), 2)

    children_pairs = np.asarray(children, dtype=np.intp).reshape(-1, 2) * 2
    return TreeEnsemble(
        n_features=n_features,
        n_trees=len(trees),
        depth=depth,
        base_margin=_logit(_base_score(learner)),
        roots=np.asarray(roots, dtype=np.intp) * 2,
        feature2=doubled(features, np.intp),
        threshold2=doubled(thresholds, np.float32),
        children2=children_pairs.reshape(-1),
        leaf_value=np.asarray(leaves, dtype=np.float64),
        missing_fill=np.repeat(np.array([-np.inf, np.inf], dtype=np.float32), n_features),
    )


def _add_tree(
    tree: Mapping[str, Any],
    *,
    offset: int,
    n_features: int,
    features: list[int],
    thresholds: list[float],
    children: list[int],
    leaves: list[float],
) -> int:
    """Append one tree's nodes to the flat lists; return its depth (edges root to deepest leaf)."""
    left = tree["left_children"]
    right = tree["right_children"]
    split_index = tree["split_indices"]
    split_condition = tree["split_conditions"]
    default_left = tree["default_left"]
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        raise UnsupportedModel("categorical splits are not supported (features must be numeric)")
    n = len(left)
    node_depth = [0] * n
    for node in range(n):
        is_leaf = left[node] == -1
        if is_leaf:
            features.append(0)
            thresholds.append(0.0)
            children += [offset + node, offset + node]
            leaves.append(float(split_condition[node]))
            continue
        feature = int(split_index[node])
        if not 0 <= feature < n_features:
            raise UnsupportedModel(f"split on feature {feature} outside 0..{n_features - 1}")
        # Left half of the doubled input maps NaN to -inf (goes left); right half to +inf.
        features.append(feature if default_left[node] else feature + n_features)
        thresholds.append(float(split_condition[node]))
        children += [offset + int(left[node]), offset + int(right[node])]
        leaves.append(0.0)
        node_depth[left[node]] = node_depth[right[node]] = node_depth[node] + 1
    return max(node_depth)


def probe_matrix(ensemble: TreeEnsemble, *, rows: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Inputs that hit every kind of branch: split thresholds exactly, just off them, and NaN."""
    rng = np.random.default_rng(seed)
    n = ensemble.n_features
    feature_of = ensemble.feature2[::2] % n
    is_split = ensemble.children2[::2] != ensemble.children2[1::2]
    cuts: list[npt.NDArray[np.float32]] = []
    for f in range(n):
        values = ensemble.threshold2[::2][is_split & (feature_of == f)]
        cuts.append(values if values.size else np.zeros(1, dtype=np.float32))
    out = rng.normal(scale=3.0, size=(rows, n)).astype(np.float32)
    for f in range(n):
        picks = rng.choice(cuts[f], size=rows)
        mode = rng.integers(0, 5, size=rows)
        column = out[:, f]
        column[mode == 0] = picks[mode == 0]  # exactly on the threshold: goes right
        below = np.nextafter(picks, np.float32(-np.inf), dtype=np.float32)
        column[mode == 1] = below[mode == 1]  # one float32 step under: goes left
        column[mode == 2] = np.nan  # missing: the node's default direction
    return out
