"""`leadops operator`: run the LeadModel controller (kopf) with /metrics and health probes."""

from __future__ import annotations

import logging

from leadops import cliutil, logsafety

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", default=[], help="watch only these")
    scope.add_argument("--all-namespaces", action="store_true", help="watch the whole cluster")
    parser.add_argument("--metrics-port", type=int, default=8080, help="0 disables /metrics")
    parser.add_argument(
        "--health-address",
        default="http://0.0.0.0:8081/healthz",
        help="liveness/readiness endpoint",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.namespace and not args.all_namespaces:
        parser.error("give --namespace NS (repeatable) or --all-namespaces")
    from leadops.operator import settings  # noqa: PLC0415 (no kopf: checked before it loads)

    try:
        settings.load()  # every LEADOPS_* value, so a typo stops here and not mid-reconcile
    except settings.SettingsError as exc:
        parser.error(str(exc))

    # Imported here so `leadops operator --help` and bad flags answer without loading kopf.
    import asyncio  # noqa: PLC0415

    import kopf  # noqa: PLC0415
    from prometheus_client import start_http_server  # noqa: PLC0415

    from leadops.operator import handlers  # noqa: PLC0415

    del handlers  # imported for its kopf registrations
    logsafety.install()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.metrics_port:
        start_http_server(args.metrics_port)
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=args.namespace,
            liveness_endpoint=args.health_address or None,
        )
    )
    return 0
