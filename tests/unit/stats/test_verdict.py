"""The decision at one look, as a table, plus small simulations that can each fail."""

from __future__ import annotations

import numpy as np
import pytest

from leadops.stats import maturity
from leadops.stats.maturity import DAY, LeadOutcome, VariantTally
from leadops.stats.verdict import Design, Reason, Verdict, evaluate

TWO = Design(control="control", weights={"control": 50, "b": 50}, looks=4)


def _tallies(control: tuple[int, int], b: tuple[int, int]) -> list[VariantTally]:
    return [VariantTally("control", control[0], *control), VariantTally("b", b[0], *b)]


@pytest.mark.parametrize(
    ("look", "control", "b", "expected"),
    [
        (2, (2000, 600), (2000, 760), (Verdict.PROMOTE, Reason.SIGNIFICANTLY_BETTER, "b")),
        (2, (2000, 760), (2000, 600), (Verdict.ABORT, Reason.SIGNIFICANTLY_WORSE, None)),
        # z = 1.98: significant on a fixed-horizon test, not at look 2 of 4 (boundary 2.96).
        (2, (2000, 600), (2000, 660), (Verdict.CONTINUE, Reason.NOT_YET_SIGNIFICANT, None)),
        (4, (2000, 600), (2000, 610), (Verdict.INCONCLUSIVE, Reason.OUT_OF_LOOKS, None)),
        # A big effect on a broken split is not evidence.
        (2, (2000, 600), (2300, 900), (Verdict.INVALID, Reason.SAMPLE_RATIO_MISMATCH, None)),
    ],
)
def test_verdicts(
    look: int,
    control: tuple[int, int],
    b: tuple[int, int],
    expected: tuple[Verdict, Reason, str | None],
) -> None:
    result = evaluate(TWO, _tallies(control, b), look=look)
    assert (result.verdict, result.reason, result.variant) == expected


def test_too_few_outcomes_waits_then_gives_up_at_the_last_look() -> None:
    design = Design(
        control="control", weights={"control": 50, "b": 50}, looks=3, min_conversions_per_variant=50
    )
    thin = _tallies((400, 40), (400, 120))  # a huge effect, but control has 40 < 50 conversions
    assert evaluate(design, thin, look=1).verdict == Verdict.CONTINUE
    last = evaluate(design, thin, look=3)
    assert (last.verdict, last.reason) == (Verdict.INCONCLUSIVE, Reason.TOO_FEW_OUTCOMES)


def test_several_variants_split_alpha_and_promote_the_best_significant_one() -> None:
    three = Design(control="control", weights={"control": 34, "b": 33, "c": 33}, looks=4)
    assert three.boundary(4) > TWO.boundary(4)  # alpha/2 per comparison: a higher bar
    assert three.alpha_spent(4) == pytest.approx(0.05)
    tallies = [
        VariantTally("control", 3000, 3000, 900),
        VariantTally("b", 3000, 3000, 1100),
        VariantTally("c", 3000, 3000, 1180),
    ]
    result = evaluate(three, tallies, look=3)
    assert (result.verdict, result.variant) == (Verdict.PROMOTE, "c")


def test_alpha_spent_grows_to_alpha_at_the_last_look() -> None:
    spent = [TWO.alpha_spent(k) for k in range(1, 5)]
    assert spent == sorted(spent)
    assert spent[-1] == pytest.approx(0.05)
    assert spent[0] < 0.001  # O'Brien-Fleming: almost nothing spent early


def test_design_refuses_a_control_that_is_not_a_variant() -> None:
    with pytest.raises(ValueError, match="control"):
        Design(control="x", weights={"a": 50, "b": 50}, looks=2)


def _aa_tallies(rng: np.random.Generator, looks: int, per_look: int) -> list[list[VariantTally]]:
    """Cumulative tallies of an A/A experiment at each look (both arms convert at 30 %)."""
    n = rng.binomial(per_look * 2, 0.5, size=looks).cumsum()
    conv_c = rng.binomial(n, 0.3)  # approximately cumulative: fine for the error rate
    conv_b = rng.binomial(2 * per_look * np.arange(1, looks + 1) - n, 0.3)
    out = []
    for k in range(looks):
        nb = int(2 * per_look * (k + 1) - n[k])
        out.append(
            [
                VariantTally("control", int(n[k]), int(n[k]), int(conv_c[k])),
                VariantTally("b", nb, nb, int(conv_b[k])),
            ]
        )
    return out


def test_aa_experiments_rarely_promote() -> None:
    """A small A/A run (the full 2,000-experiment one is bench/experiments.py)."""
    rng = np.random.default_rng(11)
    experiments, promoted = 300, 0
    for _ in range(experiments):
        for look, tallies in enumerate(_aa_tallies(rng, 4, 250), start=1):
            verdict = evaluate(TWO, tallies, look=look).verdict
            if verdict != Verdict.CONTINUE:
                promoted += verdict == Verdict.PROMOTE
                break
    # One side of a two-sided 0.05 test: 0.025 expected; alpha + 3 Monte-Carlo SE allowed.
    assert promoted / experiments <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / experiments)


def test_delayed_outcomes_give_the_verdict_of_outcomes_known_at_once() -> None:
    rng = np.random.default_rng(5)
    window, days, per_day = 7.0, 28, 120
    leads, oracle = [], []
    for day in range(days):
        for _ in range(per_day):
            variant = "b" if rng.random() < 0.5 else "control"
            scored = day * DAY + rng.random() * DAY
            converts = rng.random() < (0.40 if variant == "b" else 0.30)
            lag = rng.random() * window * DAY  # recorded at some time within the window
            leads.append(LeadOutcome(variant, scored, scored + lag if converts else None))
            oracle.append(LeadOutcome(variant, scored, scored if converts else None))
    design = Design(control="control", weights={"control": 50, "b": 50}, looks=4)
    names = ["control", "b"]
    verdicts = []
    for look in range(1, 5):
        now = (look * days / 4 + window) * DAY  # each look once its batch has matured
        delayed = maturity.tally(leads, names, now=now, window_days=window)
        known = maturity.tally(oracle, names, now=now, window_days=window)
        assert delayed == known
        verdicts.append(evaluate(design, delayed, look=look).verdict)
    assert Verdict.PROMOTE in verdicts  # the 30 -> 40 % effect is found, through delays
