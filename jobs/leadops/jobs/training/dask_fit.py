"""Boosting on a Dask cluster (`leadops train --dask-scheduler ADDRESS`): xgboost's own Dask
integration (`xgboost.dask`), one partition per worker, the trees built with allreduce across
the workers. The job still reads and featurizes here; the cluster holds and fits the matrix.

Needs the `dask` extra (`pip install leadops[train,dask]`); without it, or when the scheduler
does not answer, the training is refused in one line (exit 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from leadops.cliutil import UsageError

CONNECT_TIMEOUT_S = 10


def _client(address: str) -> Any:
    try:
        from distributed import Client  # noqa: PLC0415 -- optional extra
    except ImportError as exc:
        raise UsageError(
            "--dask-scheduler needs dask and distributed: pip install 'leadops[train,dask]'"
        ) from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--dask-scheduler {address}: no scheduler answers ({exc})") from exc


def train(
    address: str,
    params: dict[str, Any],
    parts: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    *,
    rounds: int,
    early_stopping: int | None,
) -> xgb.Booster:
    """Fit on the cluster: parts[0] trains, parts[1] (if any) is the early-stopping set."""
    import xgboost.dask as dxgb  # noqa: PLC0415 -- optional extra

    client = _client(address)
    # xgboost.dask looks up the current client in places even when given one.
    with client, client.as_current():
        workers = max(1, len(client.scheduler_info().get("workers", {})))

        def matrix(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> Any:
            rows = max(1, -(-len(x) // workers))  # one block per worker
            return dxgb.DaskDMatrix(
                client, _on_workers(client, x, rows), _on_workers(client, y, rows)
            )

        train_set = matrix(*parts[0])
        evals = [(matrix(*parts[1]), "validation")] if len(parts) > 1 else None
        distributed_params = {k: v for k, v in params.items() if k != "nthread"}
        result = dxgb.train(
            client,
            distributed_params,
            train_set,
            num_boost_round=rounds,
            evals=evals,
            early_stopping_rounds=early_stopping if evals else None,
            verbose_eval=False,
        )
    booster: xgb.Booster = result["booster"]
    booster.set_param({"nthread": params["nthread"]})  # predicting happens here
    return booster


def _on_workers(client: Any, array: npt.NDArray[Any], rows: int) -> Any:
    """`array` as a dask array of blocks of `rows` rows, each sent straight to a worker
    (scatter, round robin), not inside the task graph: a graph that carries the matrix goes
    through the scheduler and is held there (dask warns from a few MiB; 15 MiB at 70k leads)."""
    import dask.array as da  # noqa: PLC0415 -- optional extra

    starts = range(0, len(array), rows)
    # hash=False: no key from hashing gigabytes of rows; each block is sent once anyway.
    parts = client.scatter([array[at : at + rows] for at in starts], hash=False)
    blocks = [
        da.from_delayed(  # type: ignore[no-untyped-call]
            part, shape=(min(rows, len(array) - at), *array.shape[1:]), dtype=array.dtype
        )
        for part, at in zip(parts, starts, strict=True)
    ]
    return da.concatenate(blocks)  # type: ignore[no-untyped-call]
