"""`leadops status | rollback | backfill | train NAME`: LeadModels from the command line.

Each talks to the cluster in the current kubeconfig context (or in-cluster). Bad input is
exit 2 and one line on stderr, like every `leadops` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from leadops import cliutil
from leadops.operator import builders, kube, registry, settings

COLUMNS = ("NAMESPACE", "NAME", "SERVING", "AUC", "HEALTH", "DRIFT", "READY", "LAST ROLLOUT")


def _parser(prog: str, doc: str) -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(prog=f"leadops {prog}", description=doc)
    parser.add_argument(
        "-n",
        "--namespace",
        default=settings.cli_namespace(),
        help="namespace of the LeadModel (default: $LEADOPS_NAMESPACE or 'default')",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG)")
    return parser


def _client(args: argparse.Namespace) -> kube.Kube:
    try:
        return kube.Kube(kube.load_api_client(kubeconfig=args.kubeconfig))
    except kube.ConfigError as exc:
        raise cliutil.UsageError(f"no cluster to talk to: {exc}") from exc


def _leadmodel(client: kube.Kube, namespace: str, name: str) -> dict[str, Any]:
    try:
        found = client.get("LeadModel", namespace, name)
    except kube.KubeError as exc:
        raise cliutil.UsageError(str(exc)) from exc
    if found is None:
        raise cliutil.UsageError(f"LeadModel {name!r} not found in namespace {namespace!r}")
    return found


def status_rows(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in items:
        meta, status = item.get("metadata") or {}, item.get("status") or {}
        ready: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        ready_text = f"{ready.get('status', '-')}/{ready.get('reason', '-')}" if ready else "-"
        rows.append(
            (
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                str(status.get("servingVersion") or "-"),
                str(status.get("auc") or "-"),
                str(status.get("health") or "-"),
                str(status.get("driftScore") or "-"),
                ready_text,
                str(status.get("lastRollout") or "-"),
            )
        )
    return rows


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def main_status(argv: list[str]) -> int:
    parser = _parser("status", "Show LeadModels: serving version, AUC, health, last rollout.")
    parser.add_argument("name", nargs="?", help="one LeadModel (default: all in the namespace)")
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    args = parser.parse_args(argv)
    client = _client(args)
    if args.name:
        items = [_leadmodel(client, args.namespace, args.name)]
    elif args.all_namespaces:
        items = list(client.request("GET", "/apis/leadops.io/v1alpha1/leadmodels")["items"])
    else:
        items = client.list("LeadModel", args.namespace)
    if not items:
        print(f"No LeadModels in namespace {args.namespace}.", file=sys.stderr)
        return 0
    print(render_table(status_rows(items)))
    return 0


def main_rollback(argv: list[str]) -> int:
    parser = _parser("rollback", "Roll a LeadModel back by setting spec.modelVersion.")
    parser.add_argument("name", help="LeadModel name")
    parser.add_argument(
        "--to", default="", help="version to serve (default: status.previousVersion)"
    )
    args = parser.parse_args(argv)
    client = _client(args)
    lm = _leadmodel(client, args.namespace, args.name)
    target = args.to or (lm.get("status") or {}).get("previousVersion") or ""
    if not target:
        raise cliutil.UsageError(f"LeadModel {args.name!r} has no previous version; use --to")
    if not target.isdigit():
        raise cliutil.UsageError(f"--to {target!r} is not a model version (unix seconds)")
    versions = sorted(
        (e.version for e in map(registry.entry_of, client.list(
            "ConfigMap", args.namespace, selector=registry.selector(args.name)
        ))),
        reverse=True,
    )  # fmt: skip
    if int(target) not in versions:
        have = ", ".join(str(v) for v in versions[:5]) or "none"
        raise cliutil.UsageError(f"version {target} is not in the registry (newest: {have})")
    before = (lm.get("spec") or {}).get("modelVersion") or "(newest passing)"
    client.patch("LeadModel", args.namespace, args.name, {"spec": {"modelVersion": target}})
    print(f"leadmodel/{args.name}: spec.modelVersion set to {target} (was {before})")
    return 0


def _job_from(argv: list[str], *, prog: str, child: str, doc: str, dry_run_flag: bool) -> int:
    parser = _parser(prog, doc)
    parser.add_argument("name", help="LeadModel name")
    if dry_run_flag:
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args(argv)
    client = _client(args)
    _leadmodel(client, args.namespace, args.name)
    cron_name = builders.names(args.name)[child]
    cronjob = client.get("CronJob", args.namespace, cron_name)
    if cronjob is None:
        raise cliutil.UsageError(f"CronJob {cron_name!r} does not exist yet (is the operator up?)")
    job = builders.job_from_cronjob(cronjob, dry_run=bool(getattr(args, "dry_run", False)))
    created = client.create(job)
    print(f"job.batch/{created['metadata']['name']} created")
    return 0


def main_backfill(argv: list[str]) -> int:
    return _job_from(
        argv,
        prog="backfill",
        child="backfill",
        doc="Start a PII-backfill Job now from the LeadModel's CronJob (dry-run first!).",
        dry_run_flag=True,
    )


def main_train(argv: list[str]) -> int:
    return _job_from(
        argv,
        prog="train",
        child="train",
        doc="Start a training Job now from the LeadModel's CronJob.",
        dry_run_flag=False,
    )


def main(argv: list[str]) -> int:
    return main_status(argv)
