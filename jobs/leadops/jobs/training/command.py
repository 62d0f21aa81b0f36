"""`leadops train`: outcomes CSV (file or scorer URL) -> signed, digested `model.json`.

Exit codes: 0 trained and written; 2 bad input or data-quality gate (one line on stderr, no
artifact written); 1 the artifact could not be written (previous file untouched).
`leadops train NAME` (a LeadModel name, no --input) starts a training Job in the cluster;
that lives in the operator package.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from leadops import cliutil
from leadops.contract.artifact import ArtifactError, seal, signing_key_from_env, write_artifact
from leadops.jobs.training import device, fit, outcomes_csv
from leadops.secret_env import secret_from_env

logger = logging.getLogger(__name__)


USAGE = """leadops train --input CSV|URL --output model.json [options]
       leadops train NAME [-n NAMESPACE] [--kubeconfig FILE]"""
DESCRIPTION = f"""Two modes:

  here:        leadops train --input CSV|URL --output model.json
               trains a model artifact on this machine from an outcomes CSV (label last).
               With an http(s) URL (e.g. a scorer's /ops/export/outcomes.csv) the API key
               is read from ${outcomes_csv.API_KEY_ENV} and sent as x-api-key.
  in cluster:  leadops train NAME [-n NAMESPACE] [--kubeconfig FILE]
               starts a training Job now from the LeadModel NAME's training CronJob
               (`leadops train NAME --help` for its options).

The options below are those of training here."""


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(prog="leadops train", usage=USAGE, description=DESCRIPTION)
    parser.add_argument(
        "--input",
        required=True,
        help="CSV path or http(s)://.../outcomes.csv; a URL gets the API key from "
        f"${outcomes_csv.API_KEY_ENV}",
    )
    parser.add_argument("--output", required=True, help="artifact path (written atomically)")
    parser.add_argument("--label", help="label column (default: the last column)")
    parser.add_argument("--segment", help="column to report AUC per value of (fairness notes)")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="COL", help="never use COL as a feature"
    )
    parser.add_argument("--min-samples", type=int, default=100, help="gate: labelled rows")
    parser.add_argument("--test-size", type=float, default=0.25, help="hold-out share")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split and boosting)")
    parser.add_argument("--trees", type=int, default=300, help="most boosting rounds")
    parser.add_argument("--depth", type=int, default=5, help="most tree depth")
    parser.add_argument("--learning-rate", type=float, default=0.05, help="boosting step size")
    parser.add_argument("--threads", type=int, default=2, help="xgboost threads")
    parser.add_argument(
        "--device",
        choices=device.CHOICES,
        default="auto",
        help="where xgboost fits: auto (a visible GPU, else CPU), cpu, or cuda (fail without one)",
    )
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="fit on this Dask cluster (tcp://host:8786) with xgboost.dask; needs leadops[dask]",
    )
    parser.add_argument(
        "--max-input-mb",
        type=int,
        default=outcomes_csv.DEFAULT_MAX_BYTES >> 20,
        help="refuse a larger input (MiB)",
    )
    parser.add_argument(
        "--signing-key-file",
        help="ed25519 PEM or HMAC secret file (default: env LEADOPS_SIGNING_KEY[_FILE])",
    )
    return parser


def _cluster_train(argv: list[str]) -> int:
    """`leadops train NAME`: the operator's CLI starts a Job from the LeadModel's CronJob."""
    try:
        module = importlib.import_module("leadops.operator.cli")
    except ImportError:
        return cliutil.fail(
            "train NAME (in-cluster retrain) needs the operator part; "
            "to train locally use --input CSV --output model.json"
        )
    entry = getattr(module, "main_train", None)
    if entry is None:
        return cliutil.fail("train NAME: this build's operator CLI has no in-cluster retrain yet")
    result: int = entry(argv)
    return result


def _check_numbers(args: argparse.Namespace) -> str | None:
    """The first out-of-range numeric option, said in one line."""
    checks = [
        (0.05 <= args.test_size <= 0.5, "--test-size must be between 0.05 and 0.5"),
        (args.min_samples >= 10, "--min-samples must be at least 10"),
        (1 <= args.trees <= 5000, "--trees must be between 1 and 5000"),
        (1 <= args.depth <= 16, "--depth must be between 1 and 16"),
        (0 < args.learning_rate <= 1, "--learning-rate must be in (0, 1]"),
        (1 <= args.threads <= 64, "--threads must be between 1 and 64"),
        (args.max_input_mb >= 1, "--max-input-mb must be at least 1"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _cluster_mode(argv: list[str]) -> bool:
    """A LeadModel NAME and no --input/--output: start a Job in the cluster."""
    local = any(a.split("=")[0] in {"--input", "--output"} for a in argv)
    named = any(not a.startswith("-") for a in argv)
    return named and not local and argv[0] not in {"-h", "--help"}


def main(argv: list[str]) -> int:  # noqa: PLR0911 -- one exit per documented outcome
    if _cluster_mode(argv):
        return _cluster_train(argv)
    if not argv:
        return cliutil.fail(
            "train: give --input CSV|URL --output model.json to train here, "
            "or a LeadModel NAME to start a training Job in the cluster"
        )
    args = _parser().parse_args(argv)
    problem = _check_numbers(args)
    if problem:
        return cliutil.fail(f"train: {problem}")
    directory = Path(args.output).resolve().parent
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        return cliutil.fail(f"train: --output: {directory} is not a writable directory")
    try:
        if args.signing_key_file:
            key = signing_key_from_env({"LEADOPS_SIGNING_KEY_FILE": args.signing_key_file})
        else:
            key = signing_key_from_env()
        where = device.resolve(args.device)
        started = time.perf_counter()
        data = outcomes_csv.read_table(
            args.input,
            max_bytes=args.max_input_mb << 20,
            api_key=secret_from_env(outcomes_csv.API_KEY_ENV),
        )
        options = fit.TrainOptions(
            label=args.label,
            segment=args.segment,
            exclude=tuple(args.exclude),
            min_samples=args.min_samples,
            test_size=args.test_size,
            seed=args.seed,
            trees=args.trees,
            depth=args.depth,
            learning_rate=args.learning_rate,
            threads=args.threads,
            device=where,
            dask_scheduler=args.dask_scheduler,
        )
        read_seconds = time.perf_counter() - started
        result = fit.train(data, options)
        result.seconds = {"read": read_seconds, **result.seconds}
    except cliutil.UsageError as exc:
        return cliutil.fail(f"train: {exc}")
    except ArtifactError as exc:
        return cliutil.fail(f"train: {exc}")
    artifact = seal(result.artifact, key=key)
    try:
        write_artifact(artifact, args.output)
    except OSError as exc:
        print(f"leadops: error: train: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return cliutil.EXIT_PARTIAL
    for warning in result.warnings:
        logger.warning("%s", warning)
    summary: dict[str, Any] = {
        "ok": True,
        "output": args.output,
        "version": artifact.version,
        "auc": artifact.metrics.auc,
        "auc_ci95": list(artifact.metrics.auc_ci95),
        "logloss": artifact.metrics.logloss,
        "n_train": artifact.metrics.n_train,
        "n_test": artifact.metrics.n_test,
        "positive_rate": artifact.metrics.positive_rate,
        "holdout": artifact.training.holdout,
        "trees": artifact.training.best_iteration,
        "digest": artifact.digest,
        "signed": artifact.signature.algorithm if artifact.signature else None,
        "warnings": result.warnings,
        "leakage": [s.model_dump(mode="json") for s in artifact.card.leakage],
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        **fit.spec_summary(artifact.features),
    }
    print(json.dumps(summary))
    return cliutil.EXIT_OK
