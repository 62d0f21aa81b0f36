"""`leadops followups run|webhooks|dlq`: the delivery worker, the provider webhooks app and a
look at the dead letters."""

from __future__ import annotations

import argparse
import contextlib
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


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(prog="leadops followups", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run the delivery worker")
    run.add_argument("--config", type=Path, required=True, help="follow-ups config (JSON)")
    run.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, ""))
    run.add_argument("--threads", type=int, default=16)
    run.add_argument("--claim-idle-ms", type=int, default=60_000)
    run.add_argument("--metrics-port", type=int, default=0, help="0: no /metrics server")
    run.add_argument("--max-seconds", type=float, default=None)
    hooks = sub.add_parser("webhooks", help="serve the provider webhooks app")
    hooks.add_argument("--config", type=Path, required=True, help="follow-ups config (JSON)")
    hooks.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, ""))
    hooks.add_argument("--host", default="127.0.0.1")
    hooks.add_argument("--port", type=int, default=8090)
    dlq = sub.add_parser("dlq", help="list dead-lettered follow-ups (newest first, JSON lines)")
    dlq.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, ""))
    dlq.add_argument("--count", type=int, default=100)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not args.redis_url:
        raise cliutil.UsageError(f"--redis-url or {REDIS_URL_ENV} is required")
    client = redis.Redis.from_url(args.redis_url)
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
            client, Keys(salt), build.keyrings(config), ttl_s=config.horizon_hours * 3600
        )
        providers = build.providers(config)
    except (config_mod.ConfigError, VaultKeyError, KeySaltError) as exc:
        raise cliutil.UsageError(str(exc)) from None
    if args.metrics_port:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(args.metrics_port, addr="127.0.0.1")
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
