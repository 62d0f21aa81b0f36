"""`leadops status | rollback | allow | backfill | train NAME`: LeadModels from the command line.

Each talks to the cluster in the current kubeconfig context (or in-cluster). Bad input is
exit 2 and one line on stderr, like every `leadops` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from leadops import cliutil
from leadops.operator import builders, kube, registry, rollbacks, settings
from leadops.operator.conditions import rfc3339

# READY is status/reason; PINNED and AWAITING are `kubectl get lm -o wide`'s Pinned and Awaiting.
COLUMNS = (
    "NAMESPACE", "NAME", "SERVING", "AUC", "HEALTH", "DRIFT", "READY", "PINNED", "AWAITING",
    "LAST ROLLOUT",
)  # fmt: skip


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
                str((item.get("spec") or {}).get("modelVersion") or "-"),
                str(status.get("awaitingPromotion") or "-"),
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
    parser = _parser(
        "status",
        "Show LeadModels: serving version, AUC, health, Ready and its reason, the pinned "
        "version, a candidate awaiting Manual promotion, last rollout.",
    )
    parser.add_argument("name", nargs="?", help="one LeadModel (default: all in the namespace)")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="LeadModels of every namespace"
    )
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


def _registry(client: kube.Kube, namespace: str, name: str) -> list[registry.Entry]:
    try:
        found = client.list("ConfigMap", namespace, selector=registry.selector(name))
    except kube.KubeError as exc:
        raise cliutil.UsageError(str(exc)) from exc
    return sorted((registry.entry_of(cm) for cm in found), key=lambda e: e.version)


def _patch(client: kube.Kube, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
    try:
        client.patch(kind, namespace, name, body)
    except kube.KubeError as exc:  # e.g. Forbidden: one line, not a traceback
        raise cliutil.UsageError(str(exc)) from exc


def _version(text: str, flag: str) -> int:
    if not text.isdigit():
        raise cliutil.UsageError(f"{flag} {text!r} is not a model version (unix seconds)")
    return int(text)


def _who(client: kube.Kube) -> str:
    """The Kubernetes user this CLI acts as (a SelfSubjectReview), for the history."""
    try:
        review = client.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(review["status"]["userInfo"]["username"])
    except (kube.KubeError, KeyError, TypeError):
        return "unknown user"


def main_rollback(argv: list[str]) -> int:
    parser = _parser(
        "rollback",
        "Roll a LeadModel back: pin spec.modelVersion to an older version and mark the serving "
        "version rolled back, so it is not served again (not even after an unpin) until "
        "`leadops allow NAME VERSION`. Never rolls back to a version that was rolled back.",
    )
    parser.add_argument("name", help="LeadModel name")
    parser.add_argument(
        "--to",
        default="",
        help="version to serve (default: status.previousVersion unless it was rolled back, "
        "else the newest older version that was not)",
    )
    parser.add_argument(
        "--reason",
        default="",
        help=f"why, in words, for status.history (default: {rollbacks.NO_REASON!r})",
    )
    args = parser.parse_args(argv)
    wanted = _version(args.to, "--to") if args.to else None
    client = _client(args)
    lm = _leadmodel(client, args.namespace, args.name)
    status = lm.get("status") or {}
    serving = int(status["servingVersion"]) if status.get("servingVersion") else None
    previous = int(status["previousVersion"]) if status.get("previousVersion") else None
    entries = _registry(client, args.namespace, args.name)
    try:
        target = rollbacks.target(
            entries, leadmodel=args.name, serving=serving, previous=previous, wanted=wanted
        )
    except rollbacks.Refused as exc:
        raise cliutil.UsageError(f"LeadModel {args.name!r}: {exc}") from exc
    before = (lm.get("spec") or {}).get("modelVersion") or "(newest passing)"
    # Pin first: the operator then rolls straight to the target, never to another version.
    _patch(client, "LeadModel", args.namespace, args.name, {"spec": {"modelVersion": str(target)}})
    print(f"leadmodel/{args.name}: spec.modelVersion set to {target} (was {before})")
    left = next((e for e in entries if e.version == serving), None)
    if left is not None and not left.rolled_back:
        who = _who(client)
        mark = rollbacks.mark(who=who, why=args.reason, now=rfc3339(datetime.now(UTC)))
        _patch(client, "ConfigMap", args.namespace, left.name, {"metadata": {"annotations": mark}})
        print(
            f"version {serving} marked rolled back by {who}: it is not served again until "
            f"`leadops allow {args.name} {serving}`"
        )
    return 0


def main_allow(argv: list[str]) -> int:
    parser = _parser(
        "allow",
        "Allow a rolled-back version again: remove its rolled-back mark, so it may be the "
        "newest passing version (or be pinned) again.",
    )
    parser.add_argument("name", help="LeadModel name")
    parser.add_argument("version", help="the registry version to allow again")
    args = parser.parse_args(argv)
    version = _version(args.version, "VERSION")
    client = _client(args)
    lm = _leadmodel(client, args.namespace, args.name)
    entry = next(
        (e for e in _registry(client, args.namespace, args.name) if e.version == version), None
    )
    if entry is None:
        raise cliutil.UsageError(f"version {version} is not in LeadModel {args.name!r}'s registry")
    if not entry.rolled_back:
        print(f"version {version} is not marked rolled back; nothing to do")
        return 0
    unmark: dict[str, Any] = {"metadata": {"annotations": rollbacks.unmark()}}
    _patch(client, "ConfigMap", args.namespace, entry.name, unmark)
    print(
        f"version {version} allowed again (was {entry.rollback_reason} by {entry.rolled_back_by})"
    )
    pin = (lm.get("spec") or {}).get("modelVersion") or ""
    if pin and pin != str(version):
        print(f"spec.modelVersion still pins {pin}: unpin it for the newest passing version")
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
