"""`leadops experiment evaluate`: one look of an A/B experiment, printed as one JSON object.

Exit codes: 0 evaluated (whatever the verdict); 2 bad input (one line on stderr).
The evaluation Job runs the same command; the operator acts on its JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from leadops import cliutil
from leadops.jobs.experiment import records
from leadops.jobs.training import outcomes_csv
from leadops.stats import maturity, paired_auc, verdict
from leadops.stats.maturity import LeadOutcome

DEFAULT_WINDOW_DAYS = 14.0


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops experiment evaluate",
        description="Evaluate one look of an A/B experiment from its leads (CSV or scorer URL).",
    )
    parser.add_argument("--input", required=True, help="CSV path or http(s)://.../experiment.csv")
    parser.add_argument("--alpha", type=float, default=verdict.DEFAULT_ALPHA)
    parser.add_argument("--look", type=int, help="this look's number K (1-based)")
    parser.add_argument("--of", type=int, dest="looks", help="planned looks N (default 1)")
    parser.add_argument("--control", default="control", help="the control variant's name")
    parser.add_argument(
        "--weights", help="declared split, e.g. control=50,b=50 (default: equal shares)"
    )
    parser.add_argument(
        "--window-days",
        type=float,
        default=DEFAULT_WINDOW_DAYS,
        help="a lead counts once this old (spec.outcomes.windowDays)",
    )
    parser.add_argument("--now", help="evaluation time, ISO-8601 or unix seconds (default: now)")
    parser.add_argument("--min-leads", type=int, default=0, help="matured leads per variant")
    parser.add_argument("--min-conversions", type=int, default=0, help="conversions per variant")
    parser.add_argument(
        "--max-input-mb",
        type=int,
        default=outcomes_csv.DEFAULT_MAX_BYTES >> 20,
        help="refuse larger",
    )
    return parser


def _check_numbers(args: argparse.Namespace) -> str | None:
    if (args.look is None) != (args.looks is None):
        return "--look and --of go together"
    look, looks = args.look or 1, args.looks or 1
    checks = [
        (0 < args.alpha <= 0.5, "--alpha must be in (0, 0.5]"),
        (1 <= looks <= 1000, "--of must be between 1 and 1000"),
        (1 <= look <= looks, "--look must be between 1 and --of"),
        (0 <= args.window_days <= 3650, "--window-days must be between 0 and 3650"),
        (args.min_leads >= 0, "--min-leads must not be negative"),
        (args.min_conversions >= 0, "--min-conversions must not be negative"),
        (args.max_input_mb >= 1, "--max-input-mb must be at least 1"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _weights(text: str | None, seen: Sequence[str]) -> dict[str, float]:
    if text is None:
        return dict.fromkeys(seen, 100 / len(seen))
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise cliutil.UsageError(f"--weights: {part!r} is not NAME=PERCENT") from None
        if not name.strip() or not math.isfinite(weight) or weight <= 0:
            raise cliutil.UsageError(f"--weights: {part!r} is not NAME=PERCENT (> 0)")
        weights[name.strip()] = weight
    undeclared = [v for v in seen if v not in weights]
    if undeclared:
        raise cliutil.UsageError(f"--weights: the input has leads of undeclared {undeclared[0]!r}")
    return weights


def _quality(
    rows: records.Records, design: verdict.Design, *, now: float, window_days: float
) -> dict[str, paired_auc.PairedAuc]:
    """Each variant's model vs the control's, on the matured leads both scored."""
    matured = [maturity.is_matured(lead, now=now, window_days=window_days) for lead in rows.leads]
    labels = np.array([maturity.converted(lead, window_days=window_days) for lead in rows.leads])
    base = rows.shadow.get(design.control)
    out: dict[str, paired_auc.PairedAuc] = {}
    if base is None:
        return out
    for name in design.weights:
        scores = rows.shadow.get(name)
        if name == design.control or scores is None:
            continue
        keep = [
            i
            for i, ok in enumerate(matured)
            if ok and base[i] is not None and scores[i] is not None
        ]
        y = labels[keep]
        if len(keep) < 2 or y.all() or not y.any():
            continue  # no AUC without both converted and not-converted matured leads
        a = np.array([base[i] for i in keep], dtype=np.float64)
        b = np.array([scores[i] for i in keep], dtype=np.float64)
        out[name] = paired_auc.compare(y, a, b, level=1 - design.alpha)
    return out


def _round(value: float) -> float:
    return round(value, 6)


def report(
    result: verdict.Evaluation, design: verdict.Design, *, now: float, window_days: float
) -> dict[str, Any]:
    """The evaluation as the JSON object the CLI prints and the operator reads."""
    comparisons = []
    for c in result.comparisons:
        entry: dict[str, Any] = {
            "variant": c.variant,
            "z": _round(c.z),
            "p_value": _round(c.p_value),
            "boundary": _round(c.boundary),
            "lift": _round(c.rate - c.control_rate),
            "auc_difference": None,
            "auc_ci": None,
        }
        if c.quality is not None:
            q = c.quality
            entry |= {
                "auc_control": _round(q.auc_a),
                "auc": _round(q.auc_b),
                "auc_difference": _round(q.difference),
                "auc_ci": [_round(q.ci_low), _round(q.ci_high)],
                "auc_p_value": _round(q.p_value),
            }
        comparisons.append(entry)
    return {
        "verdict": str(result.verdict),
        "variant": result.variant,
        "reason": str(result.reason),
        "control": design.control,
        "look": result.look,
        "looks": result.looks,
        "alpha": result.alpha,
        "alpha_spent": _round(result.alpha_spent),
        "boundary": _round(result.boundary),
        "srm_p_value": _round(result.srm_p_value),
        "window_days": window_days,
        "evaluated_at": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "variants": [
            {
                "name": t.name,
                "weight": design.weights[t.name],
                "assigned": t.assigned,
                "leads": t.matured,
                "conversions": t.conversions,
                "rate": _round(t.conversions / t.matured) if t.matured else None,
            }
            for t in result.tallies
        ],
        "comparisons": comparisons,
    }


def evaluate(argv: list[str]) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    problem = _check_numbers(args)
    if problem:
        raise cliutil.UsageError(problem)
    now = time.time() if args.now is None else records.parse_time(args.now, what="--now")
    table = outcomes_csv.read_table(
        args.input,
        max_bytes=args.max_input_mb << 20,
        api_key=os.environ.get(outcomes_csv.API_KEY_ENV) or None,
    )
    rows = records.from_table(table)
    weights = _weights(args.weights, rows.variants)
    if args.control not in weights:
        raise cliutil.UsageError(
            f"no variant named {args.control!r}: name the control with --control"
        )
    try:
        design = verdict.Design(
            control=args.control,
            weights=weights,
            looks=args.looks or 1,
            alpha=args.alpha,
            min_leads_per_variant=args.min_leads,
            min_conversions_per_variant=args.min_conversions,
        )
    except ValueError as exc:
        raise cliutil.UsageError(f"{exc} (found {', '.join(weights)})") from None
    leads: list[LeadOutcome] = rows.leads
    tallies = maturity.tally(leads, list(weights), now=now, window_days=args.window_days)
    quality = _quality(rows, design, now=now, window_days=args.window_days)
    result = verdict.evaluate(design, tallies, look=args.look or 1, quality=quality)
    return report(result, design, now=now, window_days=args.window_days)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: leadops experiment evaluate --input CSV|URL [--alpha A] [--look K --of N]")
        return cliutil.EXIT_OK
    if argv[0] != "evaluate":
        raise cliutil.UsageError(
            f"unknown subcommand {argv[0]!r}; this build has `leadops experiment evaluate`"
        )
    try:
        print(json.dumps(evaluate(argv[1:])))
    except cliutil.UsageError as exc:
        return cliutil.fail(f"experiment evaluate: {exc}")
    return cliutil.EXIT_OK
