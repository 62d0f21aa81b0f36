"""`leadops followups run|webhooks|dlq`: the delivery worker, the provider webhooks app and a
look at the dead letters."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import redis

from leadops import cliutil
from leadops.followups import build
from leadops.followups import config as config_mod
from leadops.followups.keys import Keys
from leadops.followups.queue import FollowUpQueue
from leadops.followups.vault import ContactVault, VaultKeyError
from leadops.followups.worker import Worker, WorkerOptions
from leadops.pii.chat_keys import KeySaltError, salt_from_env

REDIS_URL_ENV = "LEADOPS_REDIS_URL"
# A mounted Secret file holding the URL (how the operator's Deployment passes it).
REDIS_URL_FILE_ENV = "LEADOPS_REDIS_URL_FILE"


def _redis_url(given: str) -> str:
    """--redis-url, else LEADOPS_REDIS_URL, else the file LEADOPS_REDIS_URL_FILE names."""
    if given:
        return given
    path = os.environ.get(REDIS_URL_FILE_ENV, "").strip()
    if not path:
        raise cliutil.UsageError(
            f"--redis-url, {REDIS_URL_ENV} or {REDIS_URL_FILE_ENV} is required"
        )
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise cliutil.UsageError(f"{REDIS_URL_FILE_ENV} {path}: {exc.strerror or exc}") from None


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(prog="leadops followups", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run the delivery worker")
    run.add_argument("--config", type=Path, required=True, help="follow-ups config (JSON)")
    run.add_argument(
        "--redis-url",
        default=os.environ.get(REDIS_URL_ENV, ""),
        help=f"Redis URL (default: ${REDIS_URL_ENV}; never shown)",
    )
    run.add_argument("--threads", type=int, default=16, help="delivery threads")
    run.add_argument(
        "--claim-idle-ms",
        type=int,
        default=60_000,
        help="take over a follow-up another worker left pending this long",
    )
    run.add_argument("--metrics-port", type=int, default=0, help="0: no /metrics server")
    run.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address /metrics listens on (default: %(default)s)",
    )
    run.add_argument(
        "--max-seconds", type=float, default=None, help="stop after this long (default: never)"
    )
    run.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move start-up objects out of the garbage collector's reach (default; "
        "--no-gc-freeze only to measure what it saves)",
    )
    hooks = sub.add_parser("webhooks", help="serve the provider webhooks app")
    hooks.add_argument("--config", type=Path, required=True, help="follow-ups config (JSON)")
    hooks.add_argument(
        "--redis-url",
        default=os.environ.get(REDIS_URL_ENV, ""),
        help=f"Redis URL (default: ${REDIS_URL_ENV}; never shown)",
    )
    hooks.add_argument("--host", default="127.0.0.1", help="address to listen on")
    hooks.add_argument("--port", type=int, default=8090, help="port to listen on")
    dlq = sub.add_parser("dlq", help="list dead-lettered follow-ups (newest first, JSON lines)")
    dlq.add_argument(
        "--redis-url",
        default=os.environ.get(REDIS_URL_ENV, ""),
        help=f"Redis URL (default: ${REDIS_URL_ENV}; never shown)",
    )
    dlq.add_argument("--count", type=int, default=100, help="most entries to list")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    client = redis.Redis.from_url(_redis_url(args.redis_url))
    if args.action == "dlq":
        for entry in FollowUpQueue(client).dead_letters(count=args.count):
            sys.stdout.write(json.dumps(entry, sort_keys=True) + "\n")
        return cliutil.EXIT_OK
    if args.action == "webhooks":
        return _serve_webhooks(args, client)
    try:
        config = config_mod.load(args.config)
        salt = salt_from_env()
        vault = ContactVault(
            client, Keys(salt), config_mod.keyrings(config), ttl_s=config.horizon_hours * 3600
        )
        providers = build.providers(config)
    except (config_mod.ConfigError, VaultKeyError, KeySaltError) as exc:
        raise cliutil.UsageError(str(exc)) from None
    if args.metrics_port:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(args.metrics_port, addr=args.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = Worker(
        client,
        config,
        keys_=Keys(salt),
        vault=vault,
        providers=providers,
        options=WorkerOptions(
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            threads=args.threads,
            claim_idle_ms=args.claim_idle_ms,
        ),
    )
    if args.gc_freeze:
        # A full collection walks every object of the SDKs, Jinja2 and prometheus_client
        # (~70k, 90-130 ms on a busy 2-core machine) while holding the GIL: every send in
        # flight stalls. Frozen once after start-up, collections only walk new objects.
        gc.collect()
        gc.freeze()
    with contextlib.suppress(KeyboardInterrupt):
        worker.run(stop, max_seconds=args.max_seconds)
    return cliutil.EXIT_OK


def _serve_webhooks(args: argparse.Namespace, client: redis.Redis) -> int:
    import uvicorn  # noqa: PLC0415

    from leadops.followups.webhooks import create_app  # noqa: PLC0415

    try:
        config = config_mod.load(args.config)
        app = create_app(config, client, Keys(salt_from_env()))
    except (config_mod.ConfigError, KeySaltError, ValueError) as exc:
        raise cliutil.UsageError(str(exc)) from None
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return cliutil.EXIT_OK
