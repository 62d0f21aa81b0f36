"""Benchmark: what the estimated AUC (CBPE) costs the scorer.

Per lead, the scoring path adds one `ScoreWindow.add` (a score into a ring buffer); measured
against the drift window's `add` (the same kind of work, already on the path: the baseline) and
against the model time of the lead (featurize.vector + compiled trees), in the same run. Per
read (/ops/model-status?estimate=true, a metrics scrape after new leads), the estimate over a
full window of 5000 scores. And how far the estimate lands from the AUC measured on the same
leads' outcomes, by the size of the hold-out the calibration map was fitted on.

Writes its section of docs/benchmarks.md. Run: `.venv/bin/python -m bench.estimate`.
"""

from __future__ import annotations

import json
import random
import tempfile
import timeit
from pathlib import Path

import numpy as np
import xgboost
from tests.fixtures.artifacts import build_artifact, synthetic_lead

from bench.docsection import machine, write_section
from leadops.contract import artifact, featurize, quality
from leadops.contract.rows import lead_to_row
from leadops.scorer.model import load_serving_model
from leadops.stats import cbpe

WINDOW = 5000
REPEATS = 7
HOLD_OUTS = (400, 2000, 8000)


def accuracy(path: Path) -> list[tuple[int, float, float]]:
    """(hold-out rows, estimate, measured AUC) on WINDOW fresh leads, per hold-out size."""
    art = artifact.load_artifact(path)
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(art.model).encode()))

    def draw(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = random.Random(seed)
        leads = [synthetic_lead(rng) for _ in range(n)]
        x = featurize.matrix(art.features, [lead_to_row(lead, redact=str) for lead, _ in leads])
        return booster.inplace_predict(x).astype(np.float64), np.array([y for _, y in leads])

    live, outcomes = draw(7, WINDOW)
    measured = quality.auc(outcomes, live)
    out = []
    for n in HOLD_OUTS:
        scores, labels = draw(1_000 + n, n)
        estimate = cbpe.estimate(*cbpe.fit_isotonic(scores, labels), live)
        assert estimate is not None
        out.append((n, estimate, measured))
    return out


def best_us(stmt: object, number: int) -> float:
    """Best of REPEATS timeit runs, in microseconds per call."""
    return min(timeit.repeat(stmt, number=number, repeat=REPEATS)) / number * 1e6  # type: ignore[arg-type]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        built = build_artifact(Path(tmp) / "model.json", trees=300, depth=6, calibrated=True)
        model = load_serving_model(built.path, estimate_window=WINDOW, estimate_min_leads=100)
        fits = accuracy(built.path)
    rng = random.Random(3)
    rows = [lead_to_row(synthetic_lead(rng)[0], redact=lambda t: t) for _ in range(2000)]
    scored = [model.score_row(row) for row in rows]
    for i in range(WINDOW):
        model.estimate.add(scored[i % len(scored)][0])
    vector = scored[0][1]
    score = scored[0][0]
    row = rows[0]
    model_us = best_us(lambda: model.score_row(row), 2000)
    drift_us = best_us(lambda: model.drift.add(vector), 20000)
    add_us = best_us(lambda: model.estimate.add(score), 20000)

    def read() -> None:
        model.estimate.add(score)  # a new lead: the cached estimate is recomputed
        model.estimate.estimate()

    read_us = best_us(read, 50)
    found = model.estimate.estimate()
    assert found is not None
    body = (
        f"""## Estimated AUC: its cost in the scorer (`bench/estimate.py`)

- Run on {machine()}.
- Command: `.venv/bin/python -m bench.estimate`. Best of {REPEATS} `timeit` repeats each; the
  model is the scorer benchmark's (300 trees, depth 6, synthetic leads) with a calibration map.

| per | what | us |
|---|---|---:|
| lead | model time: featurize.vector + compiled trees (`ServingModel.score_row`) | {model_us:.2f} |
| lead | drift window `add` (already on the path: the baseline) | {drift_us:.3f} |
| lead | score window `add` (new) | {add_us:.3f} |
| read | the estimate over {found.leads} scores (calibration map + expected ROC) | {read_us:.0f} |

- Same-run ratios: the score window's `add` is {add_us / drift_us:.2f}x the drift window's and
  {100 * add_us / model_us:.1f} % of the model time per lead. A read recomputes only after new
  leads (else the cached value), on the event loop: {read_us / 1000:.2f} ms per scrape or status
  call.

How close the estimate comes, by the hold-out the calibration map was fitted on (`leadops train`
fits it on its test split, 25 % of the rows): the same model, {WINDOW} fresh synthetic leads,
their AUC measured from their outcomes.

| hold-out rows | estimated AUC | measured AUC | estimate - measured |
|---:|---:|---:|---:|
"""
        + "\n".join(f"| {n} | {est:.4f} | {auc:.4f} | {est - auc:+.4f} |" for n, est, auc in fits)
        + """

- Isotonic regression on a small hold-out fits noise into steps: its probabilities are more
  extreme than the truth, so the estimate is optimistic there and the warning comes late (it
  errs towards silence, never towards a false alarm from this cause).
"""
    )
    write_section("estimate", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
