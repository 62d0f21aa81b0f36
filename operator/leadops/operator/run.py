"""`leadops operator`: run the LeadModel controller (kopf) with /metrics and health probes."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from leadops import cliutil, logsafety
from leadops.operator import kube, leader

logger = logging.getLogger(__name__)

DEFAULT_HEALTH = "http://0.0.0.0:8081/healthz"
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_URL = re.compile(r"^http://(?P<hostport>[^/]+)(?P<path>/[^\s]*)?$")


def health_url(value: str) -> str | None:
    """kopf's liveness URL from `--health-address`: HOST:PORT, :PORT or http://HOST:PORT/PATH
    (path /healthz when none); "" turns it off. Raises UsageError, said in one line."""
    if value == "":
        return None
    url = _URL.match(value)
    hostport, path = (url["hostport"], url["path"] or "/healthz") if url else (value, "/healthz")
    found = _HOST_PORT.match(hostport)
    if found is None or not 0 < int(found["port"]) < 65536:
        raise cliutil.UsageError(
            f"--health-address {value!r} is not HOST:PORT, :PORT or http://HOST:PORT/PATH "
            "(port 1-65535)"
        )
    return f"http://{found['host'] or '0.0.0.0'}:{found['port']}{path}"  # noqa: S104


def _add_election(parser: cliutil.ArgumentParser) -> None:
    """Two or more replicas: only the holder of a coordination.k8s.io Lease acts (leader.py)."""
    election = parser.add_argument_group("leader election (run two or more replicas)")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="act only while holding a coordination.k8s.io Lease (default: off)",
    )
    election.add_argument(
        "--leader-elect-lease",
        default=f"{os.environ.get('POD_NAMESPACE') or 'default'}/leadops-operator",
        help="NAMESPACE/NAME of the Lease (default: $POD_NAMESPACE/leadops-operator)",
    )
    election.add_argument(
        "--lease-duration", type=float, default=15.0, help="seconds (default: 15)"
    )
    election.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds (default: 10)"
    )
    election.add_argument("--retry-period", type=float, default=2.0, help="seconds (default: 2)")


def _logging(*, verbose: bool) -> None:
    logsafety.install()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # kopf says "Handler ... succeeded." at INFO for every watch event a handler takes (each
        # Deployment and ReplicaSet status change); its failures stay (ERROR), and our own lines
        # say what each pass did.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", action="append", default=[], help="watch only this one (repeatable)"
    )
    scope.add_argument("--all-namespaces", action="store_true", help="watch the whole cluster")
    parser.add_argument(
        "--selector",
        default=None,
        help="act only on LeadModels with these labels: k=v, k!=v, k, !k, comma-separated "
        "(default: $LEADOPS_SELECTOR, else all); several operators split a fleet this way",
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="0 disables /metrics")
    parser.add_argument(
        "--health-address",
        default=DEFAULT_HEALTH,
        help="liveness endpoint: HOST:PORT, :PORT or http://HOST:PORT/PATH; '' turns it off",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG)")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    _add_election(parser)
    args = parser.parse_args(argv)
    if not args.namespace and not args.all_namespaces:
        parser.error("give --namespace NS (repeatable) or --all-namespaces")
    lease_namespace, _, lease_name = args.leader_elect_lease.partition("/")
    if not lease_namespace or not lease_name or "/" in lease_name:
        parser.error(f"--leader-elect-lease {args.leader_elect_lease!r}: expected NAMESPACE/NAME")
    try:
        timing = leader.Timing(args.lease_duration, args.renew_deadline, args.retry_period)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.metrics_port < 65536:
        parser.error(f"--metrics-port {args.metrics_port} is not a port (0-65535)")
    try:
        liveness = health_url(args.health_address)
    except cliutil.UsageError as exc:
        parser.error(str(exc))
    if args.kubeconfig is not None:
        if not os.path.isfile(args.kubeconfig):
            parser.error(f"--kubeconfig {args.kubeconfig}: no such file")
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf reads it from there
    from leadops.operator import settings  # noqa: PLC0415 (no kopf: checked before it loads)

    if args.selector is not None:
        os.environ["LEADOPS_SELECTOR"] = args.selector  # handlers read it from settings

    try:
        settings.load()  # every LEADOPS_* value, so a typo stops here and not mid-reconcile
    except settings.SettingsError as exc:
        parser.error(str(exc))

    # Imported here so `leadops operator --help` and bad flags answer without loading kopf.
    import kopf  # noqa: PLC0415
    from prometheus_client import start_http_server  # noqa: PLC0415

    from leadops.operator import handlers  # noqa: PLC0415

    del handlers  # imported for its kopf registrations
    _logging(verbose=args.verbose)
    if args.metrics_port:
        start_http_server(args.metrics_port)

    async def operate() -> None:
        await kopf.operator(
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=args.namespace,
            liveness_endpoint=liveness,
        )

    if not args.leader_elect:
        asyncio.run(operate())
        return 0
    elector = leader.Elector(
        kube.Kube(kube.load_api_client(), timeout=kube.OPERATOR_TIMEOUT_SECONDS),
        namespace=lease_namespace,
        name=lease_name,
        identity=f"{socket.gethostname()}_{secrets.token_hex(4)}",
        timing=timing,
    )
    return asyncio.run(_lead(elector, operate, health=liveness))


async def _lead(
    elector: leader.Elector,
    operate: Callable[[], Coroutine[Any, Any, None]],
    *,
    health: str | None,
) -> int:
    """Act while leading. Lost leadership stops at once, exit 1: the restarted Pod is a standby
    (client-go's controllers do the same); a clean stop releases the Lease for the successor."""
    probes = await leader.standby_health(health)
    try:
        await leader.acquire(elector)
    finally:
        if probes is not None:  # kopf serves the probes from here on
            probes.close()
            await probes.wait_closed()
    acting = asyncio.create_task(operate())
    renewing = asyncio.create_task(leader.keep(elector))
    await asyncio.wait({acting, renewing}, return_when=asyncio.FIRST_COMPLETED)
    if renewing.done():
        acting.cancel()
        await asyncio.gather(acting, return_exceptions=True)
        return 1
    renewing.cancel()
    await asyncio.to_thread(elector.release)
    acting.result()  # an operator crash surfaces as it would without election
    return 0
