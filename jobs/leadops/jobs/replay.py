"""`leadops replay --candidate A --baseline B --input CSV|URL`: a candidate model against the
serving one on stored leads with known outcomes, as a JSON verdict (Pass, Fail, Inconclusive).

Both artifacts score every lead of the outcomes CSV (the scorer's export, or `leadops synth`'s
shape: label last); rows without an outcome are left out, and with `--days N` rows received
more than N days before `--now`. The decision is `leadops.stats.replay.decide` (paired DeLong
AUC difference, score PSI, minimum leads). `--termination-log PATH` also writes the verdict
there as one JSON line: in the operator's replay Job that is the Pod's termination message,
which the operator reads (the Job holds no API rights).
Exit codes: 0 a verdict was printed (whichever); 2 bad input (one line on stderr).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost

from leadops import cliutil
from leadops.contract.artifact import Artifact, ArtifactError, load_artifact
from leadops.contract.featurize import matrix_from_columns
from leadops.jobs.training import outcomes_csv
from leadops.jobs.training.fit import label_codes
from leadops.secret_env import secret_from_env
from leadops.stats import replay

logger = logging.getLogger(__name__)

DEFAULTS = replay.Design()
# The column `--days` reads: when the scorer received the lead (RFC 3339, UTC).
RECEIVED_AT: Final = "received_at"


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops replay",
        description="Replay stored leads with known outcomes through a candidate model and the "
        "serving (baseline) one; print the verdict as JSON. A verdict exits 0 whatever it is; "
        "bad input exits 2. A URL input gets the API key from "
        f"${outcomes_csv.API_KEY_ENV}.",
    )
    parser.add_argument("--candidate", required=True, help="the new model's artifact (model.json)")
    parser.add_argument("--baseline", required=True, help="the serving model's artifact")
    parser.add_argument(
        "--input", required=True, help="outcomes CSV path or http(s)://.../outcomes.csv"
    )
    parser.add_argument("--label", help="label column (default: the last column)")
    parser.add_argument(
        "--max-drop",
        type=float,
        default=DEFAULTS.max_drop,
        help="AUC the candidate may lose and still pass",
    )
    parser.add_argument(
        "--alpha", type=float, default=DEFAULTS.alpha, help="1 - the interval's confidence level"
    )
    parser.add_argument(
        "--min-leads",
        type=int,
        default=DEFAULTS.min_leads,
        help="leads with known outcomes needed for a verdict (fewer: Inconclusive)",
    )
    parser.add_argument(
        "--min-conversions",
        type=int,
        default=DEFAULTS.min_conversions,
        help="converted and not-converted leads needed, each (fewer: Inconclusive)",
    )
    parser.add_argument(
        "--max-psi",
        type=float,
        help="fail a candidate whose scores differ from the baseline's on the same leads by a "
        "larger PSI (unset: the PSI is reported, not judged)",
    )
    parser.add_argument(
        "--days",
        type=int,
        help=f"replay only leads received in the N days before --now ({RECEIVED_AT}); "
        "unset: every lead of the input",
    )
    parser.add_argument(
        "--now",
        help="the moment --days counts back from (RFC 3339; default: now)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        help="also write the verdict here as one JSON line (a Pod's /dev/termination-log)",
    )
    parser.add_argument(
        "--max-input-mb",
        type=int,
        default=outcomes_csv.DEFAULT_MAX_BYTES >> 20,
        help="refuse a larger input (MiB)",
    )
    return parser


def _design(args: Any) -> replay.Design:
    checks = [
        (0 <= args.max_drop < 1, "--max-drop must be in [0, 1)"),
        (0 < args.alpha < 1, "--alpha must be in (0, 1)"),
        (args.min_leads >= 2, "--min-leads must be at least 2"),
        (args.min_conversions >= 1, "--min-conversions must be at least 1"),
        (args.max_psi is None or args.max_psi > 0, "--max-psi must be above 0"),
        (args.max_input_mb >= 1, "--max-input-mb must be at least 1"),
        (args.days is None or args.days >= 1, "--days must be at least 1"),
    ]
    problem = next((message for ok, message in checks if not ok), None)
    if problem is not None:
        raise cliutil.UsageError(problem)
    return replay.Design(
        max_drop=args.max_drop,
        alpha=args.alpha,
        min_leads=args.min_leads,
        min_conversions=args.min_conversions,
        max_psi=args.max_psi,
    )


def _artifact(path: str, which: str) -> Artifact:
    try:
        return load_artifact(path)
    except ArtifactError as exc:
        raise cliutil.UsageError(f"{which} {path}: {exc}") from None


def _scores(art: Artifact, table: outcomes_csv.Table) -> npt.NDArray[np.float64]:
    """The artifact's conversion probability for every row of the table."""
    matrix = matrix_from_columns(art.features, table.columns, n_rows=table.n_rows)
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(art.model).encode()))
    booster.set_param({"nthread": 1})
    return np.asarray(booster.inplace_predict(matrix), dtype=np.float64)


def _moment(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    found = _moment(text)
    if found is None:
        raise cliutil.UsageError(f"--now {text!r} is not an RFC 3339 time")
    return found


def recent(table: outcomes_csv.Table, *, days: int, now: datetime) -> npt.NDArray[np.bool_]:
    """Rows received at most `days` before `now` (a row without a readable time is left out)."""
    column = table.columns.get(RECEIVED_AT)
    if column is None:
        raise cliutil.UsageError(f"--days needs a {RECEIVED_AT} column in --input")
    cutoff = now - timedelta(days=days)
    kept: dict[str, bool] = {}
    out = np.zeros(table.n_rows, dtype=np.bool_)
    for i, text in enumerate(column):
        keep = kept.get(text)
        if keep is None:
            moment = _moment(text)
            keep = kept[text] = moment is not None and moment >= cutoff
        out[i] = keep
    return out


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def report(
    found: replay.Replay, candidate: Artifact, baseline: Artifact, design: replay.Design
) -> dict[str, Any]:
    """What `leadops replay` prints."""
    c = found.comparison
    return {
        "verdict": found.verdict.value,
        "reason": found.reason.value,
        "message": found.message,
        "leads": found.leads,
        "conversions": found.conversions,
        "candidate": {"version": candidate.version, "auc": _round(c.auc_b) if c else None},
        "baseline": {"version": baseline.version, "auc": _round(c.auc_a) if c else None},
        "difference": _round(c.difference) if c else None,
        "ci": [_round(c.ci_low), _round(c.ci_high)] if c else None,
        "confidence": 1 - design.alpha,
        "p_value": _round(c.p_value) if c else None,
        "score_psi": _round(found.score_psi),
        "design": {
            "max_drop": design.max_drop,
            "min_leads": design.min_leads,
            "min_conversions": design.min_conversions,
            "max_psi": design.max_psi,
        },
    }


def _write_termination_log(path: Path, said: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(said, separators=(",", ":")) + "\n", encoding="utf-8")
    except OSError as exc:  # the verdict is on stdout anyway
        logger.warning("cannot write the termination log %s: %s", path, exc)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        design = _design(args)
        now = _now(args.now)
        candidate = _artifact(args.candidate, "--candidate")
        baseline = _artifact(args.baseline, "--baseline")
        table = outcomes_csv.read_table(
            args.input,
            max_bytes=args.max_input_mb << 20,
            api_key=secret_from_env(outcomes_csv.API_KEY_ENV),
        )
        label = args.label or (table.header[-1] if table.header else "")
        if label not in table.columns:
            raise cliutil.UsageError(f"--input has no label column {label!r}")
        codes = label_codes(table.columns[label], column=label, defaulted=args.label is None)
        wanted = codes >= 0
        if args.days is not None:
            wanted &= recent(table, days=args.days, now=now)
    except cliutil.UsageError as exc:
        return cliutil.fail(f"replay: {exc}")
    known = np.flatnonzero(wanted)
    found = replay.decide(
        codes[known],
        _scores(candidate, table)[known],
        _scores(baseline, table)[known],
        design,
    )
    said = report(found, candidate, baseline, design)
    if args.days is not None:
        said["days"] = args.days
    print(json.dumps(said, indent=2))
    if args.termination_log is not None:
        _write_termination_log(args.termination_log, said)
    return cliutil.EXIT_OK
