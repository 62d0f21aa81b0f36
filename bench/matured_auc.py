"""Simulation: how often the matured-AUC guard rolls back, with and without a real drop.

Each simulated run is one promotion: leads arrive over the guard's maxDays, each scored by the
serving model and its predecessor (binormal scores with correlated noise: the two models see
the same lead, so their errors are alike), a third converting, each conversion recorded some
days after the lead (some after the maturity window: those count as "not converted", as the
guard counts them). The guard is asked once a day, as the operator asks the scorer, and its
first final verdict is the run's (`leadops.stats.matured_auc.evaluate_arrays`, the scorer's code).

- equal models (true AUC 0.75 both): the share of runs rolled back must stay below alpha;
- a planted drop (serving 0.70, previous 0.75): the share rolled back is the guard's power.

Writes its section of docs/benchmarks.md. Run: `.venv/bin/python -m bench.matured_auc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from bench.docsection import machine, write_section
from leadops.stats import matured_auc
from leadops.stats.maturity import DAY

RUNS = 200
PREVIOUS_AUC = 0.75
DROP = 0.05
CONVERSION_RATE = 0.3
NOISE_CORRELATION = 0.6
WINDOW_DAYS = 14
MAX_DAYS = 30


@dataclass(frozen=True)
class Scenario:
    # spec.guards.maturedAuc's defaults
    min_leads: int = 2000
    min_conversions: int = 100
    max_drop: float = 0.02
    alpha: float = 0.05
    leads_per_day: int = 200


def _separation(auc: float) -> float:
    """The binormal mean shift whose AUC is `auc` (unit-variance scores): AUC = Phi(d / sqrt 2)."""
    return math.sqrt(2.0) * float(special.ndtri(auc))


def one_run(
    rng: np.random.Generator, scenario: Scenario, *, serving_auc: float
) -> matured_auc.Verdict:
    """One promotion's guard: its first final verdict, or the last Collecting one."""
    n = scenario.leads_per_day * MAX_DAYS
    scored_at = np.sort(rng.uniform(0.0, MAX_DAYS * DAY, n))
    converts = rng.random(n) < CONVERSION_RATE
    shared = rng.standard_normal(n)
    r = NOISE_CORRELATION
    noise_prev = math.sqrt(r) * shared + math.sqrt(1 - r) * rng.standard_normal(n)
    noise_serv = math.sqrt(r) * shared + math.sqrt(1 - r) * rng.standard_normal(n)
    previous = _separation(PREVIOUS_AUC) * converts + noise_prev
    serving = _separation(serving_auc) * converts + noise_serv
    # A conversion is recorded 0-20 days after its lead: within the 14-day window mostly.
    delay = rng.exponential(4.0 * DAY, n)
    converted_at = np.where(converts, scored_at + delay, np.nan)
    settings = matured_auc.Settings(
        min_leads=scenario.min_leads,
        min_conversions=scenario.min_conversions,
        max_drop=scenario.max_drop,
        alpha=scenario.alpha,
        window_seconds=WINDOW_DAYS * DAY,
    )
    verdict = matured_auc.Verdict(matured_auc.Outcome.COLLECTING, leads=0, conversions=0)
    # Days before min_leads leads can have matured are Collecting for sure: not asked.
    first = int((scored_at[min(scenario.min_leads, n) - 1] + WINDOW_DAYS * DAY) // DAY)
    for day in range(max(first, 1), MAX_DAYS + WINDOW_DAYS + 1):
        verdict = matured_auc.evaluate_arrays(
            scored_at, serving, previous, converted_at, settings, now=day * DAY
        )
        if verdict.final:
            return verdict
    return verdict


def rollback_rate(scenario: Scenario, *, serving_auc: float, runs: int, seed: int) -> float:
    """The share of `runs` simulated promotions the guard rolls back."""
    rng = np.random.default_rng(seed)
    drops = sum(
        one_run(rng, scenario, serving_auc=serving_auc).outcome is matured_auc.Outcome.DROP
        for _ in range(runs)
    )
    return drops / runs


def main() -> int:
    rows = []
    for scenario in (
        Scenario(min_leads=500, min_conversions=50),
        Scenario(min_leads=1000, min_conversions=50),
        Scenario(),
        Scenario(max_drop=0.0),
        Scenario(min_leads=4000, min_conversions=200),
    ):
        equal = rollback_rate(scenario, serving_auc=PREVIOUS_AUC, runs=RUNS, seed=1)
        power = rollback_rate(scenario, serving_auc=PREVIOUS_AUC - DROP, runs=RUNS, seed=2)
        rows.append((scenario, equal, power))
    table = "\n".join(
        f"| {s.min_leads} | {s.min_conversions} | {s.max_drop} | {s.alpha} | "
        f"{equal:.3f} | {power:.3f} |"
        for s, equal, power in rows
    )
    body = f"""## Matured-AUC guard: false rollbacks and power (`bench/matured_auc.py`)

- Run on {machine()}.
- Command: `.venv/bin/python -m bench.matured_auc`. {RUNS} simulated promotions per cell; leads
  arrive for {MAX_DAYS} days (200 a day), {int(CONVERSION_RATE * 100)} % convert, conversions are
  recorded an exponential 4 days (mean) after the lead, the window is {WINDOW_DAYS} days, the
  guard is asked daily and its first final verdict counts. Scores are binormal with noise
  correlation {NOISE_CORRELATION} between the two models (paired on the same leads).
- "equal": both models AUC {PREVIOUS_AUC}; "drop": serving {PREVIOUS_AUC - DROP:.2f}, previous
  {PREVIOUS_AUC} (a planted {DROP} drop).

| minLeads | minConversions | maxDrop | alpha | rolled back, equal | rolled back, drop (power) |
|---:|---:|---:|---:|---:|---:|
{table}

- One look on a fixed set of leads (the first matured ones reaching both minimums), so the
  false-rollback rate is that of one test: nominally alpha / 2 with maxDrop 0 (the upper bound
  of a two-sided interval; DeLong's normal approximation makes it a little more in practice, as
  the maxDrop 0 row shows, still below alpha), less with maxDrop above 0. Power grows with
  minLeads.
"""
    write_section("matured_auc", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
