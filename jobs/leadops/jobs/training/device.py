"""`leadops train --device auto|cpu|cuda`: where xgboost fits, decided before any data is read.

xgboost quietly falls back to the CPU when asked for a GPU it cannot see (a warning, then CPU
trees). So the device is probed once with a one-round fit on two rows: the booster's own config
says which device it used. `cuda` without a visible GPU is a usage error (exit 2), not a silent
slow run; `auto` takes the GPU when there is one.
"""

from __future__ import annotations

import json
import warnings
from typing import Final, Literal

import numpy as np
import xgboost as xgb

from leadops.cliutil import UsageError

CHOICES: Final = ("auto", "cpu", "cuda")
Device = Literal["cpu", "cuda"]


def gpu_visible() -> bool:
    """True when this xgboost build has CUDA and trains on a GPU it can see."""
    if not xgb.build_info().get("USE_CUDA"):
        return False
    probe = xgb.DMatrix(np.zeros((2, 1), dtype=np.float32), label=[0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No visible GPU is found": the answer, not a problem
        try:
            booster = xgb.train({"device": "cuda", "tree_method": "hist"}, probe, 1)
        except xgb.core.XGBoostError:
            return False
    used = json.loads(booster.save_config())["learner"]["generic_param"]["device"]
    return str(used).startswith("cuda")


def resolve(requested: str) -> Device:
    """The device to train on for `--device requested`."""
    if requested == "cpu":
        return "cpu"
    if gpu_visible():
        return "cuda"
    if requested == "cuda":
        raise UsageError(
            "--device cuda: xgboost sees no GPU (needs a CUDA build of xgboost and a visible "
            "device); use --device auto or cpu"
        )
    return "cpu"
