"""`leadops experiment evaluate`: one look of an A/B experiment, printed as one JSON object.

Exit codes: 0 evaluated (whatever the verdict); 2 bad input (one line on stderr).
The evaluation Job runs the same command, then `leadops experiment publish` stores the JSON
as a ConfigMap; the operator acts on it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from leadops import cliutil
from leadops.jobs.experiment import guardrails, records
from leadops.jobs.training import outcomes_csv
from leadops.secret_env import secret_from_env
from leadops.stats import maturity, paired_auc, psi, verdict
from leadops.stats.maturity import LeadOutcome

DEFAULT_WINDOW_DAYS = 14.0
DAY_SECONDS = 86_400


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops experiment evaluate",
        description="Evaluate one look of an A/B experiment from its leads (CSV or scorer URL).",
    )
    parser.add_argument("--input", required=True, help="CSV path or http(s)://.../experiment.csv")
    parser.add_argument(
        "--metric",
        choices=("conversion", "reply"),
        default="conversion",
        help="what counts as a success: a conversion (outcome_at, converted) or the lead's "
        "first reply to a follow-up (replied_at), within --window-days",
    )
    parser.add_argument(
        "--alpha", type=float, default=verdict.DEFAULT_ALPHA, help="overall false-positive rate"
    )
    parser.add_argument("--look", type=int, help="this look's number K (1-based)")
    parser.add_argument(
        "--started-at",
        help="the experiment's start (ISO-8601 or unix seconds): the look is the number of "
        "whole days since, at most --of (instead of --look)",
    )
    parser.add_argument(
        "--max-score-psi",
        type=float,
        help="guardrail: abort when a variant's served scores differ from the control's by a "
        "larger PSI",
    )
    parser.add_argument(
        "--guardrails",
        help="the scorer's per-variant counts (file or http(s)://.../ops/experiment/guardrails) "
        "for --max-error-rate and --max-p99-latency-ratio",
    )
    parser.add_argument(
        "--max-error-rate",
        type=float,
        help="guardrail: abort when a variant's share of failed leads is larger",
    )
    parser.add_argument(
        "--max-p99-latency-ratio",
        type=float,
        help="guardrail: abort when a variant's p99 answer time is more than this many times "
        "the control's",
    )
    parser.add_argument(
        "--min-guardrail-leads",
        type=int,
        default=guardrails.DEFAULT_MIN_ANSWERS,
        help="leads a variant needs before the error-rate and latency guardrails judge it",
    )
    parser.add_argument("--output", help="also write the JSON object to this file")
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
        help="refuse a larger input (MiB)",
    )
    return parser


def _check_numbers(args: argparse.Namespace) -> str | None:
    if args.started_at is not None:
        if args.look is not None or args.looks is None:
            return "--started-at needs --of and replaces --look"
    elif (args.look is None) != (args.looks is None):
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
        (
            args.max_score_psi is None or args.max_score_psi > 0,
            "--max-score-psi must be above 0",
        ),
        (
            args.max_error_rate is None or 0 <= args.max_error_rate <= 1,
            "--max-error-rate must be between 0 and 1",
        ),
        (
            args.max_p99_latency_ratio is None or args.max_p99_latency_ratio > 0,
            "--max-p99-latency-ratio must be above 0",
        ),
        (args.min_guardrail_leads >= 1, "--min-guardrail-leads must be at least 1"),
        (
            args.guardrails is not None
            or (args.max_error_rate is None and args.max_p99_latency_ratio is None),
            "--max-error-rate and --max-p99-latency-ratio need --guardrails",
        ),
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


def _score_psi(rows: records.Records, design: verdict.Design) -> dict[str, float]:
    """Each variant's served scores (its own model's, on its own leads) against the control's."""
    served: dict[str, list[float]] = {name: [] for name in design.weights}
    for i, lead in enumerate(rows.leads):
        own = rows.shadow.get(lead.variant)
        score = own[i] if own is not None else None
        if score is not None and lead.variant in served:
            served[lead.variant].append(score)
    out: dict[str, float] = {}
    for name, scores in served.items():
        if name != design.control:
            value = psi.score_psi(served[design.control], scores)
            if value is not None:
                out[name] = value
    return out


def _look(args: argparse.Namespace, now: float) -> int:
    if args.started_at is None:
        return int(args.look or 1)
    started = records.parse_time(args.started_at, what="--started-at")
    days = math.floor((now - started) / DAY_SECONDS)
    return min(int(args.looks), max(1, days))


def _round(value: float) -> float:
    return round(value, 6)


def report(
    result: verdict.Evaluation,
    design: verdict.Design,
    *,
    now: float,
    window_days: float,
    score_psi: dict[str, float] | None = None,
    message: str = "",
    operations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The evaluation as the JSON object the CLI prints and the operator reads. `message`: a
    breached guardrail in words; `operations`: per-variant error rate and p99 answer time."""
    psis = score_psi or {}
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
            "score_psi": _round(psis[c.variant]) if c.variant in psis else None,
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
        "message": message,
        "guardrails": operations or [],
    }


def evaluate(argv: list[str]) -> dict[str, Any]:
    return _evaluate(_parser().parse_args(argv))


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    problem = _check_numbers(args)
    if problem:
        raise cliutil.UsageError(problem)
    now = time.time() if args.now is None else records.parse_time(args.now, what="--now")
    table = outcomes_csv.read_table(
        args.input,
        max_bytes=args.max_input_mb << 20,
        api_key=secret_from_env(outcomes_csv.API_KEY_ENV),
    )
    rows = records.from_table(table, metric=args.metric)
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
    score_psi = _score_psi(rows, design)
    counts = (
        guardrails.read(args.guardrails, api_key=secret_from_env(outcomes_csv.API_KEY_ENV))
        if args.guardrails is not None
        else None
    )
    reason, message = _guardrail(args, design, counts, score_psi)
    result = verdict.evaluate(
        design, tallies, look=_look(args, now), quality=quality, guardrail=reason
    )
    return report(
        result,
        design,
        now=now,
        window_days=args.window_days,
        score_psi=score_psi,
        message=message if result.reason is reason else "",
        operations=guardrails.summary(counts, list(weights)) if counts is not None else None,
    )


def _guardrail(
    args: argparse.Namespace,
    design: verdict.Design,
    counts: guardrails.Counts | None,
    score_psi: dict[str, float],
) -> tuple[verdict.Reason | None, str]:
    """The first breached guardrail (errors, latency, then score PSI) and what it says."""
    if counts is not None:
        breach = guardrails.check(
            counts,
            control=design.control,
            variants=list(design.weights),
            max_error_rate=args.max_error_rate,
            max_p99_latency_ratio=args.max_p99_latency_ratio,
            min_answers=args.min_guardrail_leads,
        )
        if breach is not None:
            reason = (
                verdict.Reason.ERROR_RATE_GUARDRAIL
                if breach.guardrail == guardrails.ERROR_RATE
                else verdict.Reason.P99_LATENCY_GUARDRAIL
            )
            return reason, breach.message
    if args.max_score_psi is not None:
        for name, value in score_psi.items():
            if value > args.max_score_psi:
                return (
                    verdict.Reason.SCORE_PSI_GUARDRAIL,
                    f"variant {name}: score PSI {value:.4f} against the control above "
                    f"maxScorePsi {args.max_score_psi:g}",
                )
    return None, ""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: leadops experiment evaluate --input CSV|URL [--alpha A] [--look K --of N]")
        print(
            "       leadops experiment publish --input JSON --experiment NAME --leadmodel LM -n NS"
        )
        print("       leadops experiment status|promote|abort LEADMODEL [-n NAMESPACE]")
        return cliutil.EXIT_OK
    if argv[0] != "evaluate":
        raise cliutil.UsageError(
            f"unknown subcommand {argv[0]!r}; use evaluate, publish, status, promote or abort"
        )
    try:
        args = _parser().parse_args(argv[1:])
        text = json.dumps(_evaluate(args))
        output: str | None = args.output
        if output is not None:
            try:
                Path(output).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                raise cliutil.UsageError(
                    f"--output {output}: {exc.strerror or type(exc).__name__}"
                ) from None
        print(text)
    except cliutil.UsageError as exc:
        return cliutil.fail(f"experiment evaluate: {exc}")
    return cliutil.EXIT_OK
