"""`leadops pii-backfill`: scrub PII from chat memory and lead records already in Redis.

Always dry-run first: `--dry-run` writes nothing and reports exactly what a real
run would change. The JSON summary goes to stdout (and, with --report, to a
file); a progress line goes to stderr when it is a terminal.

Exit codes: 0 done; 2 bad arguments or Redis unreachable at the start (one line
on stderr); 1 partial failure (Redis lost mid-run or some keys failed) with the
summary printed, `"complete": false` when the run stopped early. A rerun is
always safe: values already clean are never written again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, TextIO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from leadops import cliutil, pii
from leadops.jobs.pii_scrub import Pacer, Scrubber, Stats

logger = logging.getLogger(__name__)

URL_ENVS = ("REDIS_URL", "LEADOPS_REDIS_URL")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops pii-backfill",
        description="Redact PII in Redis lists and hashes in place (dry-run first!).",
    )
    parser.add_argument("--dry-run", action="store_true", help="write nothing; report changes")
    parser.add_argument("--pattern", default="mem:*", help="SCAN MATCH pattern (default mem:*)")
    parser.add_argument(
        "--batch",
        type=_positive_int,
        default=500,
        help="keys per SCAN, elements per LRANGE/HSCAN (default 500)",
    )
    parser.add_argument(
        "--max-ops-per-sec",
        type=_positive_float,
        default=None,
        help="cap on Redis commands per second (default: no cap)",
    )
    parser.add_argument("--report", type=Path, help="also write the JSON summary to this file")
    parser.add_argument(
        "--redis-url", help="Redis URL (default: $REDIS_URL, then $LEADOPS_REDIS_URL)"
    )
    parser.add_argument(
        "--region",
        help=f"phone region for numbers without a country code (default: ${pii.REGION_ENV} or US)",
    )
    return parser


def _redis_url(explicit: str | None) -> str:
    url = explicit or next((os.environ[name] for name in URL_ENVS if os.environ.get(name)), None)
    if not url:
        raise cliutil.UsageError("no Redis URL: set REDIS_URL or pass --redis-url")
    if urllib.parse.urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise cliutil.UsageError("--redis-url must be a redis://, rediss:// or unix:// URL")
    return url


def _where(url: str) -> str:
    """host:port of a Redis URL, never its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class Progress:
    """One self-rewriting status line on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO, *, total_keys: int | None) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.total = total_keys
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, stats: Stats, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.2):
            return
        self.last = now
        of = f"/~{self.total}" if self.total else ""
        self.stream.write(
            f"\rpii-backfill: {stats.scanned_keys}{of} keys, {stats.scanned_items} items, "
            f"{stats.redacted_items} redacted, {stats.conflicts} conflicts, "
            f"{now - self.started:.0f}s "
        )
        self.stream.flush()

    def close(self, stats: Stats) -> None:
        if self.enabled:
            self.update(stats, force=True)
            self.stream.write("\n")
            self.stream.flush()


def _write_report(path: Path, summary: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    url = _redis_url(args.redis_url)
    if args.report is not None and not args.report.parent.is_dir():
        raise cliutil.UsageError(f"--report: directory {args.report.parent} does not exist")
    try:
        detector = pii.Detector(region=args.region) if args.region else pii.default_detector()
    except ValueError as exc:
        raise cliutil.UsageError(str(exc)) from None

    # No silent reconnects: a Redis that goes away mid-run ends the run (exit 1), and the
    # rerun (or the Job's retry) picks up the rest safely.
    client = redis.Redis.from_url(
        url, retry=Retry(NoBackoff(), 0), socket_timeout=30, socket_connect_timeout=5
    )
    try:
        client.ping()
        total_keys = int(client.dbsize())
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return cliutil.fail(f"pii-backfill: cannot connect to Redis at {_where(url)}: {exc}")
    except redis.ResponseError as exc:
        return cliutil.fail(f"pii-backfill: Redis at {_where(url)} refused us: {exc}")

    progress = Progress(sys.stderr, total_keys=total_keys)
    scrubber = Scrubber(
        client,
        detector=detector,
        pattern=args.pattern,
        batch=args.batch,
        dry_run=args.dry_run,
        pacer=Pacer(args.max_ops_per_sec),
        on_progress=progress.update,
    )
    started = time.monotonic()
    failure: str | None = None
    try:
        scrubber.run()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        failure = f"lost the connection to Redis at {_where(url)}: {exc}"
    progress.close(scrubber.stats)

    summary = {
        **scrubber.stats.to_dict(),
        "seconds": round(time.monotonic() - started, 3),
        "dry_run": args.dry_run,
        "complete": failure is None,
    }
    if failure is not None:
        print(f"leadops: error: pii-backfill: {failure}; rerun to finish", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    if args.report is not None:
        _write_report(args.report, summary)
    partial = failure is not None or scrubber.stats.errors > 0
    return cliutil.EXIT_PARTIAL if partial else cliutil.EXIT_OK
