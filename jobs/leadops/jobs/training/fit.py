"""Training core: table in, unsealed artifact out. No argv, no files: `command.py` does those.

Steps: label parsed (yes/no, true/false, 1/0) -> data-quality gate (the seed's checklist) ->
hold-out (time-aware when a timestamp column exists, else stratified) -> feature spec fitted on
the training part only -> xgboost (hist, early stopping on a 15 % slice of the training part,
then, up to REFIT_MAX_ROWS, refit on the whole training part for the best number of rounds)
-> hold-out metrics with a bootstrap interval, feature stats, card.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

# libgomp busy-waits by default; on a shared 2-core box two spinning threads run 10x slower
# than one. Must be set before xgboost loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from leadops.cliutil import UsageError
from leadops.contract import quality
from leadops.contract.artifact import Artifact, Calibration, Metrics, TrainingInfo
from leadops.contract.card import MIN_SEGMENT_ROWS, build_card, segment_table
from leadops.contract.drift import compute_feature_stats
from leadops.contract.encoded import EncodedColumn
from leadops.contract.features import (
    ExcludedColumn,
    FeatureSpec,
    fit_feature_spec,
    infer_timestamp_column,
    normalize,
    parse_timestamp,
)
from leadops.contract.featurize import matrix_from_columns
from leadops.jobs.training import dask_fit, leakage
from leadops.jobs.training.outcomes_csv import Table
from leadops.stats import cbpe, paired_auc

logger = logging.getLogger(__name__)

POSITIVE: Final = frozenset({"1", "1.0", "yes", "y", "true", "t"})
NEGATIVE: Final = frozenset({"0", "0.0", "no", "n", "false", "f"})
MAX_CLASS_SHARE: Final = 0.90  # the seed: "class imbalance >90%"
# Refitting on the validation slice too helps small data; past this many rows the extra 15 %
# barely moves AUC and the second fit would double training time.
REFIT_MAX_ROWS: Final = 50_000
# Hold-outs above this many rows get DeLong's AUC interval instead of a bootstrap (_auc_ci95).
DELONG_ABOVE: Final = 50_000
Floats = npt.NDArray[np.float64]


class DataQualityError(UsageError):
    """The data fails the gate: exit 2, one line, no artifact."""


@dataclass(frozen=True)
class TrainOptions:
    label: str | None = None  # None: the last column, as the seed's awk '{print $NF}'
    segment: str | None = None
    exclude: Collection[str] = ()
    min_samples: int = 100
    test_size: float = 0.25
    seed: int = 0
    trees: int = 300
    depth: int = 5
    learning_rate: float = 0.05
    threads: int = 2
    device: Literal["cpu", "cuda"] = "cpu"  # resolved by leadops.jobs.training.device
    dask_scheduler: str | None = None  # fit on this Dask cluster (leadops.jobs.training.dask_fit)
    early_stopping: int = 30
    bootstrap: int = 1000


@dataclass
class TrainResult:
    artifact: Artifact
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def parse_labels(cells: Sequence[str], *, column: str, defaulted: bool) -> list[int | None]:
    """1/0 per row, None where the outcome is missing; a non-binary column is a UsageError."""
    codes = label_codes(cells, column=column, defaulted=defaulted)
    return [None if code < 0 else code for code in codes.tolist()]


def label_codes(cells: Sequence[str], *, column: str, defaulted: bool) -> npt.NDArray[np.int8]:
    """`parse_labels` as an array, worked per distinct cell: 1, 0, or -1 for missing."""
    encoded = EncodedColumn.of(cells)
    odd: dict[str, None] = {}
    per_value: list[int] = []
    for cell in encoded.values:
        value = normalize(cell)
        folded = None if value is None else value.casefold()
        if value is None:
            per_value.append(-1)
        elif folded in POSITIVE:
            per_value.append(1)
        elif folded in NEGATIVE:
            per_value.append(0)
        else:
            per_value.append(-1)
            odd.setdefault(value[:30], None)
    if odd:
        examples = ", ".join(repr(v) for v in list(odd)[:3])
        hint = (
            " (it is the last column; name the label column with --label COL)" if defaulted else ""
        )
        raise DataQualityError(
            f"unusable label: column {column!r} is not binary, it has values like {examples}; "
            f"expected yes/no, true/false or 1/0{hint}"
        )
    return np.array(per_value, dtype=np.int8)[encoded.codes]


def quality_gate(labels: Sequence[int], *, min_samples: int) -> None:
    """The seed's checklist before a retrain: enough rows, both classes, no class over 90 %."""
    n = len(labels)
    if n < min_samples:
        raise DataQualityError(
            f"too few samples: {n} labelled rows, need at least {min_samples} (--min-samples)"
        )
    positives = sum(labels)
    if positives in (0, n):
        only = "converted" if positives else "not converted"
        raise DataQualityError(f"unusable label: only one class, all {n} rows are {only}")
    share = max(positives, n - positives) / n
    if share > MAX_CLASS_SHARE:
        which = "converted" if positives > n - positives else "not converted"
        raise DataQualityError(
            f"class imbalance: {share:.1%} of rows are {which} (at most {MAX_CLASS_SHARE:.0%})"
        )


def _stratified(
    labels: npt.NDArray[np.int64], share: float, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    chosen = np.zeros(len(labels), dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        chosen[idx[: round(len(idx) * share)]] = True
    return chosen


def _by_time(times: Floats, share: float) -> npt.NDArray[np.bool_]:
    order = np.argsort(np.asarray(times), kind="stable")
    chosen = np.zeros(len(times), dtype=bool)
    chosen[order[len(times) - round(len(times) * share) :]] = True
    return chosen


def _take(
    columns: Mapping[str, Sequence[str]], rows: npt.NDArray[np.int64]
) -> dict[str, EncodedColumn]:
    return {name: EncodedColumn.of(cells).take(rows) for name, cells in columns.items()}


def _epoch(cell: str) -> float:
    value = normalize(cell)
    stamp = parse_timestamp(value) if value else None
    if stamp is None:
        return float("-inf")  # undated rows count as oldest: they never land in the hold-out
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


# Whole-second UTC stamps (what exports write): Arrow parses these for the whole column; any
# other spelling (offsets, fractions, dates only, Feb 30) goes through _epoch, value by value.
_PLAIN_UTC = r"^[1-9]\d{3}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$"


def _epochs(cells: EncodedColumn) -> Floats:
    """`_epoch` of every row's cell, computed per distinct value."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    values = pa.array(cells.values, type=pa.string())
    stamps = pc.strptime(values, format="%Y-%m-%dT%H:%M:%SZ", unit="s", error_is_null=True)
    # Arrow rolls Feb 30 over to March; the round trip keeps only real calendar dates.
    again = pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")
    plain = pc.and_(pc.match_substring_regex(values, _PLAIN_UTC), pc.equal(again, values))
    plain = pc.fill_null(plain, False)
    fast = plain.to_numpy(zero_copy_only=False)
    seconds = pc.fill_null(stamps.cast(pa.int64()), 0).to_numpy().astype(np.float64)
    for i in np.flatnonzero(~fast).tolist():
        seconds[i] = _epoch(cells.values[i])
    out: Floats = seconds[cells.codes]
    return out


def _importance(booster: xgb.Booster, n_features: int) -> list[float]:
    gains = booster.get_score(importance_type="total_gain")
    values = [gains.get(f"f{j}", 0.0) for j in range(n_features)]
    raw = [float(v) if isinstance(v, int | float) else 0.0 for v in values]
    total = sum(raw)
    return [g / total for g in raw] if total > 0 else [1.0 / n_features] * n_features


def _segment_aucs(
    values: Sequence[str], labels: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    array = np.asarray(values)
    for value in sorted(set(values)):
        mask = array == value
        ys = labels[mask]
        enough = mask.sum() >= MIN_SEGMENT_ROWS and 0 < ys.sum() < len(ys)
        out[value] = round(quality.auc(ys, scores[mask]), 6) if enough else None
    return out


def _check_columns(table: Table, options: TrainOptions) -> str:
    label = options.label if options.label is not None else table.header[-1]
    if label not in table.columns:
        raise DataQualityError(
            f"unusable label: no column {label!r}; the columns are "
            + ", ".join(repr(c) for c in table.header[:12])
            + (", ..." if len(table.header) > 12 else "")
        )
    if options.segment is not None and options.segment not in table.columns:
        raise UsageError(f"--segment: no column {options.segment!r} in the input")
    missing_exclude = sorted(set(options.exclude) - set(table.columns))
    if missing_exclude:
        raise UsageError(f"--exclude: no column {missing_exclude[0]!r} in the input")
    return label


@dataclass(frozen=True)
class Split:
    """Which labelled rows train and which test, and how that was decided."""

    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]
    holdout: Literal["time", "stratified"]
    timestamp: str | None
    times: Floats  # per labelled row; empty without a timestamp column


def _split(
    columns: Mapping[str, Sequence[str]],
    labels: npt.NDArray[np.int64],
    options: TrainOptions,
    rng: np.random.Generator,
    warnings: list[str],
) -> Split:
    # The newest rows when time is known: that is what production will see next.
    timestamp = infer_timestamp_column(columns)
    times: Floats = (
        _epochs(EncodedColumn.of(columns[timestamp]))
        if timestamp
        else np.zeros(0, dtype=np.float64)
    )
    holdout: Literal["time", "stratified"] = "stratified"
    is_test = None
    if timestamp:
        is_test, holdout = _by_time(times, options.test_size), "time"
        if len(set(labels[is_test].tolist())) < 2 or len(set(labels[~is_test].tolist())) < 2:
            warnings.append("the newest rows hold one class only; used a stratified hold-out")
            is_test, holdout = None, "stratified"
    if is_test is None:
        is_test = _stratified(labels, options.test_size, rng)
    return Split(
        train=np.flatnonzero(~is_test),
        test=np.flatnonzero(is_test),
        holdout=holdout,
        timestamp=timestamp,
        times=times,
    )


def _fit_spec(
    train_cols: Mapping[str, Sequence[str]], label: str, options: TrainOptions, warnings: list[str]
) -> FeatureSpec:
    spec = fit_feature_spec(train_cols, exclude=options.exclude)
    note = ExcludedColumn(column=label, reason="label", detail="the label")
    spec = spec.model_copy(update={"excluded": [note, *spec.excluded]})
    if not spec.columns:
        reasons = ", ".join(f"{e.column!r} ({e.reason})" for e in spec.excluded[:6])
        raise DataQualityError(f"no usable feature columns: all were excluded: {reasons}")
    for col in spec.columns:
        junk = getattr(col, "non_numeric", 0)
        if junk:
            warnings.append(f"column {col.column!r}: {junk} non-numeric cells treated as missing")
    return spec


def train(table: Table, options: TrainOptions, *, now: float | None = None) -> TrainResult:
    """Fit a model on `table` and describe it as an (unsealed) artifact."""
    clock = time.perf_counter()
    warnings: list[str] = []
    label = _check_columns(table, options)
    codes = label_codes(table.columns[label], column=label, defaulted=options.label is None)
    keep = np.flatnonzero(codes >= 0)
    labels = codes[keep].astype(np.int64)
    quality_gate(labels.tolist(), min_samples=options.min_samples)
    if len(keep) < table.n_rows:
        warnings.append(f"{table.n_rows - len(keep)} rows without an outcome were left out")
    columns = _take({k: v for k, v in table.columns.items() if k != label}, keep)
    rng = np.random.default_rng(options.seed)
    split = _split(columns, labels, options, rng, warnings)
    y_train, y_test = labels[split.train], labels[split.test]
    train_cols, test_cols = _take(columns, split.train), _take(columns, split.test)
    spec = _fit_spec(train_cols, label, options, warnings)
    x_train = matrix_from_columns(spec, train_cols, n_rows=len(split.train))
    x_test = matrix_from_columns(spec, test_cols, n_rows=len(split.test))
    seconds = {"featurize": time.perf_counter() - clock}

    val_times = split.times[split.train] if len(split.times) else split.times
    booster, params = _fit(x_train, y_train, val_times=val_times, options=options, rng=rng)
    seconds["fit"] = time.perf_counter() - clock - seconds["featurize"]

    scores = booster.predict(xgb.DMatrix(x_test, nthread=options.threads)).astype(np.float64)
    low, high = _auc_ci95(y_test, scores, options)
    importance = _importance(booster, len(spec.feature_names))
    suspects = leakage.suspects(
        spec, importance, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    warnings += [
        f"possible leak: column {s.column!r}: {s.why}; is it known before the outcome?"
        for s in suspects
    ]
    segments = []
    if options.segment is not None:
        seg_cells = [normalize(c) or "(missing)" for c in table.columns[options.segment]]
        seg_values = [seg_cells[keep[i]] for i in split.test]
        aucs = _segment_aucs(seg_values, y_test, scores)
        segments = segment_table(seg_values, y_test.tolist(), aucs)
    knot_scores, knot_probabilities = cbpe.fit_isotonic(scores, y_test)
    window = split.times[split.times != float("-inf")]
    start = datetime.fromtimestamp(float(window.min()), UTC) if len(window) else None
    end = datetime.fromtimestamp(float(window.max()), UTC) if len(window) else None
    created = int(time.time() if now is None else now)
    positive_rate = float(y_train.mean())
    artifact = Artifact(
        version=created,
        created_at=datetime.fromtimestamp(created, UTC),
        model=json.loads(bytes(booster.save_raw("json"))),
        features=spec,
        metrics=Metrics(
            auc=round(quality.auc(y_test, scores), 6),
            auc_ci95=(round(low, 6), round(high, 6)),
            logloss=round(quality.logloss(y_test, scores), 6),
            n_train=len(split.train),
            n_test=len(split.test),
            positive_rate=round(positive_rate, 6),
        ),
        training=TrainingInfo(
            window_start=start,
            window_end=end,
            data_digest=table.digest,
            source=table.source,
            label=label,
            holdout=split.holdout,
            timestamp_column=split.timestamp,
            rows_read=table.n_rows,
            rows_without_label=table.n_rows - len(keep),
            params=params,
            best_iteration=int(params["num_boost_round"]),
        ),
        feature_stats=compute_feature_stats(x_train, spec.feature_names, importance=importance),
        card=build_card(
            spec,
            importance=importance,
            window_start=start,
            window_end=end,
            n_train=len(split.train),
            positive_rate=positive_rate,
            segment_column=options.segment,
            segments=segments,
            leakage=suspects,
        ),
        calibration=Calibration(scores=knot_scores, probabilities=knot_probabilities),
    )
    seconds["total"] = time.perf_counter() - clock
    return TrainResult(artifact=artifact, warnings=warnings, seconds=seconds)


def _auc_ci95(
    y: npt.NDArray[np.int64], scores: Floats, options: TrainOptions
) -> tuple[float, float]:
    """The hold-out AUC's 95 % interval: a percentile bootstrap up to DELONG_ABOVE rows, DeLong's
    above, where the bootstrap's rows x resamples cost seconds (3 s of a 1M-row job) and the
    two agree to the third decimal (tests/unit/stats/test_paired_auc.py)."""
    if len(y) > DELONG_ABOVE:
        return paired_auc.auc_interval(y, scores)
    # The bootstrap's cost grows with rows x resamples; large hold-outs have tight intervals
    # whose 2.5/97.5 % points 200 resamples already place well.
    resamples = max(200, min(options.bootstrap, options.bootstrap * 5_000 // len(y)))
    return quality.auc_bootstrap_ci(y, scores, resamples=resamples, seed=options.seed)


def _fit(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    *,
    val_times: Floats,
    options: TrainOptions,
    rng: np.random.Generator,
) -> tuple[xgb.Booster, dict[str, Any]]:
    """Early-stop on a slice of the training part, then refit on all of it for that many trees."""
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": options.depth,
        "eta": options.learning_rate,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "nthread": options.threads,
        "seed": options.seed,
        "device": options.device,
    }
    is_val = _by_time(val_times, 0.15) if len(val_times) else _stratified(y, 0.15, rng)
    if len(set(y[is_val].tolist())) < 2 or len(set(y[~is_val].tolist())) < 2:
        is_val = _stratified(y, 0.15, rng)
    if options.dask_scheduler:
        probe = dask_fit.train(
            options.dask_scheduler,
            params,
            [(x[~is_val], y[~is_val]), (x[is_val], y[is_val])],
            rounds=options.trees,
            early_stopping=options.early_stopping,
        )
    else:
        fit = xgb.DMatrix(x[~is_val], label=y[~is_val], nthread=options.threads)
        val = xgb.DMatrix(x[is_val], label=y[is_val], nthread=options.threads)
        probe = xgb.train(
            params,
            fit,
            num_boost_round=options.trees,
            evals=[(val, "validation")],
            early_stopping_rounds=options.early_stopping,
            verbose_eval=False,
        )
    rounds = int(probe.best_iteration) + 1
    refit = len(y) <= REFIT_MAX_ROWS
    if refit and options.dask_scheduler:
        booster = dask_fit.train(
            options.dask_scheduler, params, [(x, y)], rounds=rounds, early_stopping=None
        )
    elif refit:
        booster = xgb.train(
            params, xgb.DMatrix(x, label=y, nthread=options.threads), num_boost_round=rounds
        )
    else:
        booster = probe[:rounds]  # the trees up to the best validation round
    info = {"num_boost_round": rounds, "max_rounds": options.trees, "refit_on_all": refit}
    return booster, {**params, **info}


def spec_summary(spec: FeatureSpec) -> dict[str, Any]:
    """What the JSON summary says about the columns: roles and exclusions."""
    return {
        "features": len(spec.feature_names),
        "columns": {c.column: c.kind for c in spec.columns},
        "excluded": {e.column: f"{e.reason}: {e.detail}" for e in spec.excluded},
    }
