"""xgboost's binary:logistic tree ensembles compiled to ONNX Runtime for single-lead scoring.

The xgboost Booster's single-row predict costs 130-230 us here (DMatrix build plus a C
call); one lead must cost far less. The model's trees are parsed from xgboost's JSON,
checked, and written as one ONNX `TreeEnsembleRegressor` node (ai.onnx.ml) that ONNX
Runtime evaluates in C++: a few microseconds per lead plus the `run` call.

Exactness, so the load-time parity check against xgboost holds to 1e-6:
- xgboost goes left iff `value < threshold` in float32: nodes are `BRANCH_LT` and the
  input is the float32 feature vector widened to float64 (exact), compared with the
  float32 thresholds widened to float64 (exact), so every comparison is xgboost's.
- NaN = missing follows each node's default direction: `missing_value_tracks_true` is
  xgboost's `default_left` (the true branch is the left one).
- Leaf values are summed in float64 (thresholds and weights as double tensors make ONNX
  Runtime accumulate in double), so the margin is not worse than xgboost's own float32 sum.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

F32 = npt.NDArray[np.float32]

SUPPORTED_OBJECTIVES = frozenset({"binary:logistic"})
INPUT = "features"
OUTPUT = "margin"
# TreeEnsembleRegressor with tensor (double) attributes needs ai.onnx.ml opset 3.
ONNX_ML_OPSET = 3


class UnsupportedModel(ValueError):
    """The xgboost model uses something the compiled tree path does not implement."""


@dataclass(frozen=True, slots=True)
class _Nodes:
    """Every node of every tree as flat lists, in ONNX TreeEnsemble attribute order."""

    tree_ids: list[int]
    node_ids: list[int]
    features: list[int]
    thresholds: list[float]
    modes: list[str]
    true_ids: list[int]
    false_ids: list[int]
    missing_goes_true: list[int]
    leaf_tree_ids: list[int]
    leaf_node_ids: list[int]
    leaf_values: list[float]


class TreeEnsemble:
    """One model's trees as an ONNX Runtime session: one feature vector in, its score out."""

    __slots__ = (
        "_binding",
        "_input",
        "_lock",
        "_output",
        "_run",
        "_session",
        "_values",
        "base_margin",
        "cuts",
        "n_features",
        "n_trees",
    )

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        *,
        n_features: int,
        n_trees: int,
        base_margin: float,
        cuts: tuple[F32, ...],
    ) -> None:
        self.n_features = n_features
        self.n_trees = n_trees
        self.base_margin = base_margin
        # Split thresholds per feature: what probe_matrix aims at.
        self.cuts = cuts
        self._session = session
        # Input and output bound once to buffers we own (io_binding): a lead is copied in and
        # its margin read out, with no per-call feed dict, input checks or output allocation.
        # Inside a request, where ONNX Runtime's code and the trees are out of cache, this
        # path measured ~10-18 us against ~16-32 us for session.run.
        self._input = np.zeros((1, n_features), dtype=np.float64)
        self._output = np.zeros((1, 1), dtype=np.float32)
        self._values = (
            onnxruntime.OrtValue.ortvalue_from_numpy(self._input),
            onnxruntime.OrtValue.ortvalue_from_numpy(self._output),
        )
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(INPUT, self._values[0])
        self._binding.bind_ortvalue_output(OUTPUT, self._values[1])
        self._run = session.run_with_iobinding
        # The buffers are shared: one lead at a time (the event loop never contends for it).
        self._lock = threading.Lock()

    def margin(self, x: F32) -> float:
        """Raw margin (log-odds) for one feature vector of length n_features."""
        with self._lock:
            # float32 -> float64 is exact: the comparisons stay xgboost's float32 ones.
            self._input[0] = x
            self._run(self._binding)
            return float(self._output[0, 0])

    def predict(self, x: F32) -> float:
        """Probability of conversion for one feature vector (the serving path)."""
        return _sigmoid(self.margin(x))

    def predict_many(self, rows: F32) -> npt.NDArray[np.float64]:
        """Probabilities for a matrix of feature vectors, one row at a time: the serving path,
        so the load-time parity check tests exactly what scores leads."""
        return np.array([self.predict(row) for row in np.asarray(rows, dtype=np.float32)])

    def predict_batch(self, rows: F32) -> npt.NDArray[np.float64]:
        """Probabilities for a matrix of feature vectors in one ONNX Runtime call: the shadow
        scores of a batch of lead records (leadops.scorer.shadow). The same margins as
        `predict`, row by row, and the same sigmoid, so a lead's shadow score equals the score
        the model answers it with (the load-time parity check covers this path too)."""
        matrix = np.asarray(rows, dtype=np.float64).reshape(-1, self.n_features)
        margins = self._session.run([OUTPUT], {INPUT: matrix})[0]
        return np.array([_sigmoid(float(margin)) for margin in margins[:, 0]])


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
    if not 0.0 < values[0] < 1.0:
        raise UnsupportedModel(f"base_score {values[0]} is not a probability in (0, 1)")
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
    if n_features < 1:
        raise UnsupportedModel("the model has no features")
    trees = booster["model"]["trees"]
    if not trees:
        raise UnsupportedModel("the model has no trees")
    nodes = _Nodes([], [], [], [], [], [], [], [], [], [], [])
    for tree_id, tree in enumerate(trees):
        try:
            _add_tree(tree, tree_id=tree_id, n_features=n_features, nodes=nodes)
        except UnsupportedModel:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UnsupportedModel(f"tree {tree_id} is malformed: {exc!r}") from None
    base_margin = _logit(_base_score(learner))
    session = _session(_onnx_model(nodes, n_features=n_features, base_margin=base_margin))
    return TreeEnsemble(
        session,
        n_features=n_features,
        n_trees=len(trees),
        base_margin=base_margin,
        cuts=_cuts(nodes, n_features=n_features),
    )


def _add_tree(tree: Mapping[str, Any], *, tree_id: int, n_features: int, nodes: _Nodes) -> None:
    """Append one tree's nodes, refusing anything xgboost would evaluate differently."""
    left = tree["left_children"]
    right = tree["right_children"]
    split_index = tree["split_indices"]
    split_condition = tree["split_conditions"]
    default_left = tree["default_left"]
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        raise UnsupportedModel("categorical splits are not supported (features must be numeric)")
    leaf_vector = int(tree.get("tree_param", {}).get("size_leaf_vector", "1"))
    if leaf_vector > 1:
        raise UnsupportedModel("vector-leaf (multi-target) trees are not supported")
    n = len(left)
    if not n or not len(right) == len(split_index) == len(split_condition) == n:
        raise UnsupportedModel(f"tree {tree_id} has inconsistent node arrays")
    for node in range(n):
        nodes.tree_ids.append(tree_id)
        nodes.node_ids.append(node)
        if left[node] == -1:
            nodes.features.append(0)
            nodes.thresholds.append(0.0)
            nodes.modes.append("LEAF")
            nodes.true_ids.append(0)
            nodes.false_ids.append(0)
            nodes.missing_goes_true.append(0)
            nodes.leaf_tree_ids.append(tree_id)
            nodes.leaf_node_ids.append(node)
            nodes.leaf_values.append(float(split_condition[node]))
            continue
        feature = int(split_index[node])
        if not 0 <= feature < n_features:
            raise UnsupportedModel(f"split on feature {feature} outside 0..{n_features - 1}")
        lo, hi = int(left[node]), int(right[node])
        if not (node < lo < n and node < hi < n):
            raise UnsupportedModel(f"tree {tree_id} node {node} has children outside the tree")
        nodes.features.append(feature)
        # xgboost stores thresholds as float32: compare against exactly that value.
        nodes.thresholds.append(float(np.float32(split_condition[node])))
        nodes.modes.append("BRANCH_LT")
        nodes.true_ids.append(lo)
        nodes.false_ids.append(hi)
        nodes.missing_goes_true.append(1 if int(default_left[node]) else 0)


def _onnx_model(nodes: _Nodes, *, n_features: int, base_margin: float) -> bytes:
    """One TreeEnsembleRegressor: double input, SUM of leaf values plus the base margin."""
    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        [INPUT],
        [OUTPUT],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[base_margin],
        nodes_treeids=nodes.tree_ids,
        nodes_nodeids=nodes.node_ids,
        nodes_featureids=nodes.features,
        nodes_values_as_tensor=numpy_helper.from_array(
            np.asarray(nodes.thresholds, dtype=np.float64)
        ),
        nodes_modes=nodes.modes,
        nodes_truenodeids=nodes.true_ids,
        nodes_falsenodeids=nodes.false_ids,
        nodes_missing_value_tracks_true=nodes.missing_goes_true,
        target_treeids=nodes.leaf_tree_ids,
        target_nodeids=nodes.leaf_node_ids,
        target_ids=[0] * len(nodes.leaf_node_ids),
        target_weights_as_tensor=numpy_helper.from_array(
            np.asarray(nodes.leaf_values, dtype=np.float64)
        ),
    )
    graph = helper.make_graph(
        [ensemble],
        "leadops-trees",
        # One lead per call when answering, a batch of records for the shadow scores.
        [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, ["leads", n_features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["leads", 1])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", 17),
            helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET),
        ],
        producer_name="leadops",
    )
    # The IR version this onnxruntime reads, whatever the onnx package would default to.
    model.ir_version = 9
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise UnsupportedModel(f"the compiled ONNX graph is invalid: {exc}") from None
    serialized: bytes = model.SerializeToString()
    return serialized


def _session(model: bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # One lead per call: a thread pool would only add hand-offs on a busy 2-core box.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; a refused model is reported by us
    try:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types
        raise UnsupportedModel(f"ONNX Runtime refused the compiled trees: {exc}") from None


def _cuts(nodes: _Nodes, *, n_features: int) -> tuple[F32, ...]:
    per_feature: list[list[float]] = [[] for _ in range(n_features)]
    for feature, threshold, mode in zip(nodes.features, nodes.thresholds, nodes.modes, strict=True):
        if mode != "LEAF":
            per_feature[feature].append(threshold)
    return tuple(np.asarray(sorted(set(c)), dtype=np.float32) for c in per_feature)


def probe_matrix(ensemble: TreeEnsemble, *, rows: int, seed: int = 0) -> F32:
    """Inputs that hit every kind of branch: split thresholds exactly, just off them, and NaN."""
    rng = np.random.default_rng(seed)
    n = ensemble.n_features
    cuts: Sequence[F32] = [c if c.size else np.zeros(1, dtype=np.float32) for c in ensemble.cuts]
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
