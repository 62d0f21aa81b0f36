"""`leadops experiment SUBCOMMAND`: evaluate (numpy, scipy: the jobs image) or the cluster
subcommands publish, status, promote and abort (the operator image has no numpy)."""

from __future__ import annotations

import importlib

from leadops import cliutil

CLUSTER_SUBCOMMANDS = frozenset({"publish", "status", "promote", "abort"})
USAGE = """usage: leadops experiment evaluate --input CSV|URL [--alpha A] [--look K --of N]
       leadops experiment publish --input JSON --experiment NAME --leadmodel LM --namespace NS
       leadops experiment status|promote|abort LEADMODEL [-n NAMESPACE]"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)  # here, so help needs no numpy either
        return cliutil.EXIT_OK
    name = (
        "leadops.operator.experiment_cli"
        if argv[0] in CLUSTER_SUBCOMMANDS
        else "leadops.jobs.experiment.command"
    )
    result: int = importlib.import_module(name).main(argv)
    return result
