"""Too-good columns: the trainer warns before a model that leans on a leak can serve.

A column known only after the outcome (a call's duration, a sales note such as "closed won")
makes a model look excellent on the hold-out and useless on new leads. Two signs, per input
column, measured on the hold-out so a column cannot flag itself by memorising the training part:

- it alone separates the classes almost perfectly: the AUC of a score made from that column
  only (its values as they are for a numeric column; each value's conversion rate on the
  training part for categories and text) is at least SEPARATES_AUC;
- it carries most of the model's gain: at least MOST_GAIN of the total.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from leadops.contract import quality
from leadops.contract.card import LeakageSuspect
from leadops.contract.features import FeatureSpec, NumericColumn

SEPARATES_AUC: Final = 0.95
MOST_GAIN: Final = 0.5
_BLOCK: Final = 1 << 16


def _rank_auc(labels: npt.NDArray[np.int64], values: npt.NDArray[np.float32]) -> float:
    """Direction-free AUC of one numeric column; missing values rank below every number."""
    filled = np.where(
        np.isnan(values), np.nanmin(values) - 1 if np.isfinite(values).any() else 0, values
    )
    auc = quality.auc(labels, filled.astype(np.float64))
    return max(auc, 1.0 - auc)


def _rate_auc(
    block_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    block_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[np.int64],
) -> float:
    """AUC on the hold-out of each value's conversion rate learnt on the training part."""
    both = np.nan_to_num(np.vstack([block_train, block_test]), nan=-1.0)
    keys = _row_keys(both)
    train_keys, test_keys = keys[: len(block_train)], keys[len(block_train) :]
    counts = np.bincount(train_keys, minlength=keys.max() + 1)
    hits = np.bincount(train_keys, weights=y_train, minlength=keys.max() + 1)
    prior = float(y_train.mean())
    rates = np.where(counts > 0, hits / np.maximum(counts, 1), prior)
    return quality.auc(y_test, rates[test_keys])


def _row_keys(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """One key per distinct row (equal rows, equal keys), as np.unique(axis=0) gives.

    Hashes each row to 64 bits and sorts those (np.unique(axis=0) sorts whole rows: 3 s per
    text column at 100,000 rows), then checks every row equals its group's first row; on a
    hash collision it falls back to the exact row sort.
    """
    canonical = np.ascontiguousarray(rows + np.float32(0.0))  # -0.0 -> 0.0, as == sees them
    weights = np.random.default_rng(0).integers(1, 2**63, size=rows.shape[1], dtype=np.uint64)
    weights |= np.uint64(1)
    hashed = np.empty(len(rows), dtype=np.uint64)
    for first_row in range(0, len(rows), _BLOCK):  # row blocks: bounded temporaries
        bits = canonical[first_row : first_row + _BLOCK].view(np.uint32).astype(np.uint64)
        with np.errstate(over="ignore"):
            block = (bits * weights).sum(axis=1, dtype=np.uint64)
            hashed[first_row : first_row + len(block)] = block ^ (block >> np.uint64(29))
    _, first, keys = np.unique(hashed, return_index=True, return_inverse=True)
    keys = keys.reshape(-1)
    same = all(
        np.array_equal(canonical[i : i + _BLOCK], canonical[first[keys[i : i + _BLOCK]]])
        for i in range(0, len(rows), _BLOCK)
    )
    if not same:
        _, keys = np.unique(rows, axis=0, return_inverse=True)
        keys = keys.reshape(-1)
    out: npt.NDArray[np.int64] = keys.astype(np.int64)
    return out


def suspects(
    spec: FeatureSpec,
    importance: list[float],
    *,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[np.int64],
) -> list[LeakageSuspect]:
    """Columns that alone separate the classes or carry most of the gain, worst first."""
    if len(set(y_test.tolist())) < 2:
        return []
    found: list[LeakageSuspect] = []
    for column, start, width in spec.layout:
        stop = start + width
        if isinstance(column, NumericColumn) and width == 1:
            alone = _rank_auc(y_test, x_test[:, start])
        else:
            alone = _rate_auc(x_train[:, start:stop], y_train, x_test[:, start:stop], y_test)
        gain = float(sum(importance[start:stop]))
        reasons = []
        if alone >= SEPARATES_AUC:
            reasons.append(f"alone it separates the classes (hold-out AUC {alone:.3f})")
        if gain >= MOST_GAIN:
            reasons.append(f"it carries {gain:.0%} of the model's gain")
        if reasons:
            found.append(
                LeakageSuspect(
                    column=column.column,
                    auc_alone=round(alone, 4),
                    gain_share=round(gain, 4),
                    why="; ".join(reasons),
                )
            )
    return sorted(found, key=lambda s: (-s.auc_alone, -s.gain_share))
