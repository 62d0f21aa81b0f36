"""`leadops pii-backfill`: scrub PII from chat memory and lead records already in Redis.

Always dry-run first: `--dry-run` writes nothing and reports exactly what a real
run would change. The JSON summary goes to stdout (and, with --report, to a
file); when stderr is a terminal, a progress bar goes there (keys done of the keys
counted by a first SCAN pass, rate, ETA).

Exit codes: 0 done; 2 bad arguments or Redis unreachable at the start (one line
on stderr); 1 partial failure (Redis lost mid-run or some keys failed) with the
summary printed, `"complete": false` when the run stopped early. A rerun is
always safe: values already clean are never written again.

In a Pod the summary's counts, `complete` and `finished_at` also go to the
container's termination message (`--termination-log`, the kubelet's
/dev/termination-log): the operator reads the result from the Pod's status, so the
Job needs no API rights to report it.
"""

from __future__ import annotations

import concurrent.futures.process
import json
import logging
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from leadops import cliutil, redis_mode
from leadops.jobs.pii_backfill.cpu_quota import default_workers
from leadops.jobs.pii_backfill.pacer import Pacer
from leadops.jobs.pii_backfill.progress_bar import ProgressBar
from leadops.jobs.pii_backfill.scrubber import Scrubber
from leadops.jobs.pii_backfill.stats import Stats
from leadops.jobs.region_option import add_region_option, detector_for
from leadops.pii import chat_keys
from leadops.secret_env import secret_from_env

logger = logging.getLogger(__name__)

URL_ENVS = ("REDIS_URL", "LEADOPS_REDIS_URL")
# Tries of a command through a cluster failover (cluster-node-timeout plus an election).
CLUSTER_RETRIES = 6
# Where the kubelet reads a container's termination message (it creates the file in a Pod).
TERMINATION_LOG = Path("/dev/termination-log")
# The summary fields the termination message keeps: the kubelet keeps 4096 bytes at most, so
# no per-pattern or per-type maps (their size grows with the data).
TERMINATION_FIELDS = (
    "complete",
    "dry_run",
    "scanned_keys",
    "scanned_items",
    "redacted_items",
    "skipped",
    "conflicts",
    "errors",
    "seconds",
    "finished_at",
)


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


def _redis_mode(text: str) -> redis_mode.RedisMode:
    return redis_mode.parse_mode(text)


_redis_mode.__name__ = "Redis mode (standalone or cluster)"
_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops pii-backfill",
        description="Redact PII in Redis lists and hashes in place (dry-run first!).",
    )
    parser.add_argument("--dry-run", action="store_true", help="write nothing; report changes")
    parser.add_argument(
        "--pattern",
        action="append",
        help="SCAN MATCH pattern; repeat for several, e.g. 'mem:*' and 'lead:*' (default mem:*)",
    )
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
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="processes running the detector (default: one per CPU; 1: none, all in this one)",
    )
    parser.add_argument("--report", type=Path, help="also write the JSON summary to this file")
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=None,
        help=f"write the summary's counts, complete and finished_at here as one JSON line "
        f"(default: {TERMINATION_LOG} when it exists, as the kubelet makes it in a Pod)",
    )
    parser.add_argument(
        "--key-salt-file",
        type=Path,
        help="the scorer's key salt: chat keys named by their chat_id move to hashed names "
        f"(default: ${chat_keys.SALT_FILE_ENV}; without one they are only counted)",
    )
    parser.add_argument(
        "--redis-url",
        help="Redis URL (default: $REDIS_URL, then $LEADOPS_REDIS_URL; or the file a *_FILE "
        "variable names)",
    )
    parser.add_argument(
        "--redis-mode",
        type=_redis_mode,
        default=None,
        help=f"standalone or cluster (Redis Cluster: the URL names any node; default: "
        f"${redis_mode.MODE_ENV}, else standalone)",
    )
    add_region_option(parser)
    return parser


def _redis_url(explicit: str | None) -> str:
    # Each name, then its _FILE twin (the operator's Jobs mount the Secret as a file).
    url = explicit or next(filter(None, (secret_from_env(name) for name in URL_ENVS)), None)
    if not url:
        raise cliutil.UsageError(
            "no Redis URL: set REDIS_URL (or LEADOPS_REDIS_URL_FILE) or pass --redis-url"
        )
    if urllib.parse.urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise cliutil.UsageError("--redis-url must be a redis://, rediss:// or unix:// URL")
    return url


def _where(url: str) -> str:
    """host:port of a Redis URL, never its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class _FirstConnectOnly:
    """Refuses to reconnect a connection that was lost: the pool would otherwise reopen it
    silently after a Redis restart, and the run would go on as if nothing happened."""

    def __init__(self) -> None:
        self.connected: set[int] = set()

    def __call__(self, connection: Any) -> None:
        if id(connection) in self.connected:
            raise redis.ConnectionError("the connection was closed (Redis restarted?)")
        self.connected.add(id(connection))
        connection.on_connect()


class Progress:
    """The progress bar on a terminal (keys done of keys counted); silent otherwise."""

    def __init__(self, scrubber: Scrubber, stream: Any) -> None:
        self.stream = stream
        self.bar: ProgressBar | None = None
        if stream.isatty():
            counting = "pii-backfill: counting keys..."
            stream.write(counting)
            stream.flush()
            total = scrubber.count_keys()
            self.bar = ProgressBar(stream, label="pii-backfill", total=total, unit="keys")
            self.bar.width = len(counting)  # the bar's first draw blanks this line

    def update(self, stats: Stats) -> None:
        if self.bar is not None:
            self.bar.update(stats.scanned_keys, extra=self._extra(stats))

    def close(self, stats: Stats, *, complete: bool) -> None:
        if self.bar is not None:
            self.bar.close(stats.scanned_keys, extra=self._extra(stats), complete=complete)

    @staticmethod
    def _extra(stats: Stats) -> str:
        return f"{stats.scanned_items:,} items, {stats.redacted_items:,} redacted"


def _write_report(path: Path, summary: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def _termination_log(explicit: Path | None) -> Path | None:
    """The explicit path, else the kubelet's file when this runs in a Pod, else none."""
    if explicit is not None:
        return explicit
    return TERMINATION_LOG if TERMINATION_LOG.is_file() else None


def _write_termination_log(path: Path, summary: dict[str, Any]) -> None:
    brief = {field: summary[field] for field in TERMINATION_FIELDS if field in summary}
    try:
        path.write_text(json.dumps(brief, separators=(",", ":")) + "\n", encoding="utf-8")
    except OSError as exc:  # the summary is on stdout anyway; the exit code still says it all
        logger.warning("cannot write the termination log %s: %s", path, exc)


def _client(url: str, mode: redis_mode.RedisMode | None) -> redis.Redis | RedisCluster:
    """The client for `url` in `mode` (None: $LEADOPS_REDIS_MODE, else standalone)."""
    try:
        mode = mode or redis_mode.mode_from_env()
    except ValueError as exc:
        raise cliutil.UsageError(f"{redis_mode.MODE_ENV}: {exc}") from None
    if mode is redis_mode.RedisMode.CLUSTER:
        # A cluster fails a master over to its replica: redis-py refreshes the slot map and
        # retries there (a few tries, with backoff), so the run goes on if the cluster does;
        # if it cannot, the run ends (exit 1) and a rerun picks up the rest.
        try:
            return RedisCluster.from_url(
                url,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), CLUSTER_RETRIES),
                socket_timeout=30,
                socket_connect_timeout=5,
            )
        except (redis.ConnectionError, redis.TimeoutError, RedisClusterException) as exc:
            raise cliutil.UsageError(
                f"pii-backfill: cannot connect to the Redis Cluster at {_where(url)}: {exc}"
            ) from None
    # No silent reconnects: a Redis that goes away mid-run ends the run (exit 1), and the
    # rerun (or the Job's retry) picks up the rest safely.
    return redis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=30,
        socket_connect_timeout=5,
        redis_connect_func=_FirstConnectOnly(),
    )


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    url = _redis_url(args.redis_url)
    if args.report is not None and not args.report.parent.is_dir():
        raise cliutil.UsageError(f"--report: directory {args.report.parent} does not exist")
    detector = detector_for(args.regions)
    try:
        key_salt = (
            chat_keys.load_salt(args.key_salt_file)
            if args.key_salt_file is not None
            else chat_keys.salt_from_env()
        )
    except chat_keys.KeySaltError as exc:
        raise cliutil.UsageError(str(exc)) from None

    client = _client(url, args.redis_mode)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return cliutil.fail(f"pii-backfill: cannot connect to Redis at {_where(url)}: {exc}")
    except redis.ResponseError as exc:
        return cliutil.fail(f"pii-backfill: Redis at {_where(url)} refused us: {exc}")

    scrubber = Scrubber(
        client,
        detector=detector,
        patterns=args.pattern or ["mem:*"],
        batch=args.batch,
        dry_run=args.dry_run,
        pacer=Pacer(args.max_ops_per_sec),
        workers=args.workers or default_workers(),
        key_salt=key_salt,
    )
    started = time.monotonic()
    failure: str | None = None
    progress: Progress | None = None
    try:
        progress = Progress(scrubber, sys.stderr)
        scrubber.on_progress = progress.update
        scrubber.run()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        failure = f"lost the connection to Redis at {_where(url)}: {exc}"
    except redis.RedisError as exc:  # e.g. an ACL that forbids SCAN: stop, report what was done
        failure = f"Redis at {_where(url)} refused a command: {exc}"
    except concurrent.futures.process.BrokenProcessPool as exc:  # e.g. a worker was OOM-killed
        failure = f"a detection worker process died: {exc}"
    if progress is not None:
        progress.close(scrubber.stats, complete=failure is None)
    elif sys.stderr.isatty():
        sys.stderr.write("\n")  # end the "counting keys..." line before the error

    summary = {
        **scrubber.stats.to_dict(),
        "seconds": round(time.monotonic() - started, 3),
        "dry_run": args.dry_run,
        "complete": failure is None,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if failure is not None:
        print(f"leadops: error: pii-backfill: {failure}; rerun to finish", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    if args.report is not None:
        _write_report(args.report, summary)
    termination_log = _termination_log(args.termination_log)
    if termination_log is not None:
        _write_termination_log(termination_log, summary)
    partial = failure is not None or scrubber.stats.errors > 0
    return cliutil.EXIT_PARTIAL if partial else cliutil.EXIT_OK
