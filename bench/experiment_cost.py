"""Where a two-variant experiment's extra CPU per POST /v1/lead goes, in process (issue #18).

    .venv/bin/python -m bench.experiment_cost [--requests 2000] [--rounds 7]

The scorer app called through its whole ASGI stack (bench.scorer_profile's loop, memory store,
durability bestEffort as in bench.scorer_experiment, no sockets), in interleaved rounds, medians:
1. the scorer with the benchmark's 300-tree model;
2. the same with bench.scorer_experiment's experiment (a second 300-tree model, 50/50 by lead,
   each lead answered by its variant's model and shadow-scored by the other with its record's
   batch);
3. an experiment of flags only (both variants served by the serving model): bucketing, per-arm
   metrics and the larger record, no second model at all.
Then, for contrast, the same model steps timed hot (bench.scorer.model_time: the model alone
in the cache), and the record writer's shadow steps per lead over a batch of 32 synthetic
leads, hot: featurizing each lead again for the challenger's spec, from its row and from the
cells the control's featurizer already read (featurize.RowCells, what the scorer keeps), and
the challenger's trees over the batch in one call. (2) against (3) is what the second model
costs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import timeit

from tests.fixtures.artifacts import synthetic_lead

from bench.scorer import LEAD, model_time
from bench.scorer_experiment import experiment_spec, two_models
from bench.scorer_profile import per_request_us
from leadops.contract import featurize
from leadops.contract.rows import lead_to_row
from leadops.scorer.app import create_app
from leadops.scorer.experiment import Experiment
from leadops.scorer.model import load_serving_model
from leadops.scorer.settings import Durability, Settings, VariantModelFile

# The mode: answered at once, records written behind in batches.
BEST_EFFORT = Durability.BEST_EFFORT


async def measure(n: int, rounds: int) -> dict[str, float]:
    control, challenger = two_models()
    experiment = Experiment.model_validate(experiment_spec(modelVersion=str(challenger.version)))
    flags_only = Experiment.model_validate(experiment_spec(flags={"followup": "fast"}))
    plain = create_app(Settings(model_path=control.path, redis_url=None, durability=BEST_EFFORT))
    with_flags = create_app(
        Settings(
            model_path=control.path, redis_url=None, durability=BEST_EFFORT, experiment=flags_only
        )
    )
    with_experiment = create_app(
        Settings(
            model_path=control.path,
            redis_url=None,
            durability=BEST_EFFORT,
            experiment=experiment,
            variant_models={str(challenger.version): VariantModelFile(path=challenger.path)},
        )
    )
    body = json.dumps(LEAD).encode()
    figures: dict[str, list[float]] = {
        "scorer": [],
        "experiment": [],
        "flags_only": [],
    }
    async with (
        plain.router.lifespan_context(plain),
        with_experiment.router.lifespan_context(with_experiment),
        with_flags.router.lifespan_context(with_flags),
    ):
        for _ in range(rounds):
            figures["scorer"].append(await per_request_us(plain, body, n))
            figures["experiment"].append(await per_request_us(with_experiment, body, n))
            figures["flags_only"].append(await per_request_us(with_flags, body, n))
    out = {name: statistics.median(values) for name, values in figures.items()}
    hot = model_time(challenger.path)
    out["hot_featurize"], out["hot_trees"] = hot["featurize"], hot["compiled"]
    return out | shadow_steps()


def shadow_steps(batch: int = 32) -> dict[str, float]:
    """Microseconds per lead of the writer's shadow steps over one batch, hot (best of 7)."""
    control, challenger = (load_serving_model(built.path) for built in two_models())
    assert control.spec != challenger.spec  # else the served vector is reused, nothing redone
    rng = random.Random(7)
    rows = [lead_to_row(synthetic_lead(rng)[0], redact=lambda text: text) for _ in range(batch)]
    cells = [featurize.RowCells(row) for row in rows]
    for row, read in zip(rows, cells, strict=True):
        control.featurizer.vector(row, read)  # what the request did
    again = challenger.featurizer.vector
    matrix = featurize.matrix(challenger.spec, rows)

    def best(fn: object) -> float:
        seconds = min(timeit.repeat(fn, number=200, repeat=7))  # type: ignore[arg-type]
        return seconds / 200 / batch * 1e6

    return {
        "again_from_row": best(lambda: [again(row) for row in rows]),
        "again_from_cells": best(
            lambda: [again(row, read) for row, read in zip(rows, cells, strict=True)]
        ),
        "batch_trees": best(lambda: challenger.score_vectors(matrix)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiment_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per target and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    got = asyncio.run(measure(args.requests, args.rounds))
    second_model = got["experiment"] - got["flags_only"]
    hot = got["hot_featurize"] + got["hot_trees"]
    print(f"CPU per request, in process (median of {args.rounds} interleaved rounds):")
    print(f"  scorer                               {got['scorer']:6.1f} us")
    print(
        f"  scorer + experiment                  {got['experiment']:6.1f} us "
        f"({got['scorer'] / got['experiment']:.0%} of the scorer's throughput by CPU)"
    )
    print(
        f"  flags-only experiment (no 2nd model) {got['flags_only']:6.1f} us "
        f"({got['scorer'] / got['flags_only']:.0%})"
    )
    print(
        f"the second model: ~{second_model:.0f} us per request; one model's steps timed hot: "
        f"featurize {got['hot_featurize']:.1f} + trees {got['hot_trees']:.1f} = {hot:.1f} us"
    )
    print(
        "the writer's shadow steps per lead, batches of 32, hot: featurize again "
        f"{got['again_from_row']:.1f} us from the row, {got['again_from_cells']:.1f} us from "
        f"the shared cells; trees {got['batch_trees']:.1f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
