"""`leadops experiment publish | status | promote | abort`: the cluster side of experiments.

`publish` is run by the evaluation Job after `evaluate`: it stores the JSON verdict as a new
ConfigMap (the Job's ServiceAccount may only create ConfigMaps). `status` prints
status.experiment; `promote` and `abort` record a person's decision as an annotation on the
LeadModel (the spec is never written), which the operator acts on. Bad input is exit 2 and
one line on stderr. No numpy: this runs in the operator image too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadops import cliutil
from leadops.operator import cli, kube
from leadops.operator import experiment as experiments

logger = logging.getLogger(__name__)

MAX_VERDICT_FILE = experiments.MAX_VERDICT_BYTES


def main_publish(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(
        prog="leadops experiment publish", description="Store a verdict JSON as a ConfigMap."
    )
    parser.add_argument("--input", required=True, type=Path, help="the evaluate JSON")
    parser.add_argument("--experiment", required=True, help="spec.experiment.name")
    parser.add_argument("--leadmodel", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--owner-uid", default="")
    args = parser.parse_args(argv)
    try:
        text = args.input.read_text(encoding="utf-8")
    except OSError as exc:
        raise cliutil.UsageError(f"cannot read {args.input}: {exc.strerror}") from exc
    if len(text) > MAX_VERDICT_FILE:
        raise cliutil.UsageError(f"{args.input}: over {MAX_VERDICT_FILE} bytes")
    try:
        report = json.loads(text)
        cm = experiments.verdict_configmap(
            report,
            experiment=args.experiment,
            leadmodel=args.leadmodel,
            namespace=args.namespace,
            owner_uid=args.owner_uid,
        )
    except (ValueError, AttributeError) as exc:
        raise cliutil.UsageError(f"{args.input}: not a verdict ({exc})") from exc
    if experiments.parse_verdict(cm) is None:
        raise cliutil.UsageError(f"{args.input}: not a verdict (missing verdict or variants)")
    client = _in_cluster()
    name = cm["metadata"]["name"]
    try:
        client.create(cm)
    except kube.KubeError as exc:
        if exc.status != 409:
            raise cliutil.UsageError(f"cannot create configmap/{name}: {exc}") from exc
        print(f"already published: configmap/{name}")
        return cliutil.EXIT_OK
    print(f"published: configmap/{name} ({report.get('verdict')})")
    return cliutil.EXIT_OK


def _in_cluster() -> kube.Kube:
    try:
        return kube.Kube(kube.load_api_client())
    except kube.ConfigError as exc:
        raise cliutil.UsageError(f"no cluster to publish to: {exc}") from exc


def status_lines(item: Mapping[str, Any]) -> list[str]:
    """status.experiment of one LeadModel, as lines a person reads."""
    exp = (item.get("status") or {}).get("experiment")
    name = (item.get("metadata") or {}).get("name", "")
    if not exp:
        spec_exp = (item.get("spec") or {}).get("experiment")
        if spec_exp:
            return [f"leadmodel/{name}: experiment {spec_exp.get('name')} not reconciled yet"]
        return [f"leadmodel/{name}: no experiment"]
    lines = [
        f"experiment {exp.get('name')}: {exp.get('phase')} ({exp.get('reason', '')})",
        f"  {exp.get('message', '')}",
        f"  started {exp.get('startedAt', '-')}; look {exp.get('look', 0)} of "
        f"{exp.get('looks', 0)}; alpha spent {exp.get('alphaSpent') or '-'}; "
        f"last evaluated {exp.get('evaluatedAt') or '-'}",
    ]
    rows = [
        (
            str(v.get("name", "")),
            str(v.get("assigned", 0)),
            str(v.get("leads", 0)),
            str(v.get("conversions", 0)),
        )
        for v in exp.get("variants") or []
    ]
    if rows:
        table = cli.render_table(rows, header=("VARIANT", "ASSIGNED", "MATURED", "CONVERSIONS"))
        lines += ["  " + line for line in table.splitlines()]
    if exp.get("servedVariant"):
        flags = exp.get("servedFlags") or {}
        said = ", ".join(f"{k}={v}" for k, v in sorted(flags.items())) or "no flags"
        lines.append(f"  serving variant {exp['servedVariant']} to every lead: {said}")
    return lines


def main_status(argv: list[str]) -> int:
    parser = cli._parser("experiment status", "Show a LeadModel's experiment.")
    parser.add_argument("name", help="LeadModel name")
    args = parser.parse_args(argv)
    item = cli._leadmodel(cli._client(args), args.namespace, args.name)
    print("\n".join(status_lines(item)))
    return cliutil.EXIT_OK


def _decide(argv: list[str], action: str, doc: str) -> int:
    parser = cli._parser(f"experiment {action}", doc)
    parser.add_argument("name", help="LeadModel name")
    args = parser.parse_args(argv)
    client = cli._client(args)
    item = cli._leadmodel(client, args.namespace, args.name)
    exp = (item.get("spec") or {}).get("experiment")
    if not exp:
        raise cliutil.UsageError(f"LeadModel {args.name!r} has no spec.experiment")
    phase = ((item.get("status") or {}).get("experiment") or {}).get("phase", "")
    if action == experiments.ACTION_PROMOTE and phase != "AwaitingPromotion":
        raise cliutil.UsageError(
            f"experiment {exp['name']} is {phase or 'not evaluated yet'}: only a winner "
            "awaiting promotion can be promoted"
        )
    value = f"{action}:{exp['name']}"
    patch = {"metadata": {"annotations": {experiments.ANN_ACTION: value}}}
    client.patch("LeadModel", args.namespace, args.name, patch)
    print(f"leadmodel/{args.name}: {experiments.ANN_ACTION}={value}")
    return cliutil.EXIT_OK


def main_promote(argv: list[str]) -> int:
    return _decide(argv, experiments.ACTION_PROMOTE, "Promote the experiment's winner.")


def main_abort(argv: list[str]) -> int:
    return _decide(argv, experiments.ACTION_ABORT, "Stop the experiment; the control serves.")


SUBCOMMANDS = {
    "publish": main_publish,
    "status": main_status,
    "promote": main_promote,
    "abort": main_abort,
}


def main(argv: list[str]) -> int:
    try:
        return SUBCOMMANDS[argv[0]](argv[1:])
    except cliutil.UsageError as exc:
        return cliutil.fail(f"experiment {argv[0]}: {exc}")
