"""Where a two-variant experiment's extra CPU per POST /v1/lead goes, in process (issue #18).

    .venv/bin/python -m bench.experiment_cost [--requests 2000] [--rounds 7]

The scorer app called through its whole ASGI stack (bench.scorer_profile's loop, memory store,
no sockets), in interleaved rounds, medians:
1. the scorer with the benchmark's 300-tree model;
2. the same with bench.scorer_experiment's experiment (a second 300-tree model, 50/50 by lead,
   both models scoring every lead);
3. as 2, but the challenger's shadow score skipped on the control arm's leads (a diagnostic,
   not a mode the scorer has: what the experiment would cost if that score were free);
4. an experiment of flags only (both variants served by the serving model): bucketing, per-arm
   metrics and the larger record, no second model at all.
Then, for contrast, the same model steps timed hot (bench.scorer.model_time: the model alone
in the cache).
(3) against (2), doubled because it covers half the leads, is what one shadow evaluation costs
inside a request; against the hot figures it shows how much of it is cache misses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections.abc import Iterator
from contextlib import contextmanager

from bench.scorer import LEAD, model_time
from bench.scorer_experiment import experiment_spec, two_models
from bench.scorer_profile import per_request_us
from leadops.scorer import scoring
from leadops.scorer.app import create_app
from leadops.scorer.experiment import Experiment
from leadops.scorer.model import ServingModel
from leadops.scorer.settings import Settings, VariantModelFile


@contextmanager
def shadow_skipped() -> Iterator[None]:
    """Shadow scores answer None (the variant is left without one) while inside."""
    real = scoring._shadow_score

    def none(model: ServingModel, row: dict[str, str]) -> float | None:
        return None

    scoring._shadow_score = none
    try:
        yield
    finally:
        scoring._shadow_score = real


async def measure(n: int, rounds: int) -> dict[str, float]:
    control, challenger = two_models()
    experiment = Experiment.model_validate(experiment_spec(modelVersion=str(challenger.version)))
    flags_only = Experiment.model_validate(experiment_spec(flags={"followup": "fast"}))
    plain = create_app(Settings(model_path=control.path, redis_url=None))
    with_flags = create_app(
        Settings(model_path=control.path, redis_url=None, experiment=flags_only)
    )
    with_experiment = create_app(
        Settings(
            model_path=control.path,
            redis_url=None,
            experiment=experiment,
            variant_models={str(challenger.version): VariantModelFile(path=challenger.path)},
        )
    )
    body = json.dumps(LEAD).encode()
    figures: dict[str, list[float]] = {
        "scorer": [],
        "experiment": [],
        "shadow_skipped": [],
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
            with shadow_skipped():
                figures["shadow_skipped"].append(await per_request_us(with_experiment, body, n))
            figures["flags_only"].append(await per_request_us(with_flags, body, n))
    out = {name: statistics.median(values) for name, values in figures.items()}
    hot = model_time(challenger.path)
    out["hot_featurize"], out["hot_trees"] = hot["featurize"], hot["compiled"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiment_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per target and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    got = asyncio.run(measure(args.requests, args.rounds))
    shadow_in_request = 2 * (got["experiment"] - got["shadow_skipped"])
    hot = got["hot_featurize"] + got["hot_trees"]
    print(f"CPU per request, in process (median of {args.rounds} interleaved rounds):")
    print(f"  scorer                               {got['scorer']:6.1f} us")
    print(
        f"  scorer + experiment                  {got['experiment']:6.1f} us "
        f"({got['scorer'] / got['experiment']:.0%} of the scorer's throughput by CPU)"
    )
    print(
        f"  control arm's shadow skipped        {got['shadow_skipped']:6.1f} us "
        f"({got['scorer'] / got['shadow_skipped']:.0%})"
    )
    print(
        f"  flags-only experiment (no 2nd model) {got['flags_only']:6.1f} us "
        f"({got['scorer'] / got['flags_only']:.0%})"
    )
    print(
        f"one shadow evaluation inside a request: ~{shadow_in_request:.0f} us; the same steps "
        f"hot: featurize {got['hot_featurize']:.1f} + trees {got['hot_trees']:.1f} = {hot:.1f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
