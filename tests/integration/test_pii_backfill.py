"""`leadops pii-backfill` against a real redis-server: scrubs, loses nothing, survives restarts."""

from __future__ import annotations

import json
import multiprocessing
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from leadops.jobs.pii_backfill import cas_scripts, scrubber
from leadops.jobs.pii_backfill import command as pii_backfill
from leadops.pii import Detector, Finding
from tests.fixtures.redis_server import RedisServer

pytestmark = pytest.mark.redis

LEADOPS = [sys.executable, "-m", "leadops.cli", "pii-backfill"]

# (template, PII): the message is template.format(pii); scrubbed, template.format("[REDACTED]").
PII_MESSAGES = [
    ("my email is {}", "jane.doe@example.com"),
    ("call me on {} tomorrow", "(415) 555-2671"),
    ("card {} exp 12/27", "4111 1111 1111 1111"),
    ("SSN {} for the form", "078-05-1120"),
    ("IBAN {} please", "DE89 3704 0044 0532 0130 00"),
    ("logged in from {}", "203.0.113.195"),
]
CLEAN_MESSAGES = [
    "Hi, I'm interested in the MBA programme",
    "order #2125550134 shipped on 2024-01-15",
    "it costs $1,299.99, version 2.3.1",
    "[REDACTED] stays as it is",
]


def _run(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEADOPS, "--redis-url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def _seed(client: redis.Redis, *, chats: int = 5) -> dict[str, list[str]]:
    """Chat lists mixing PII and clean messages; returns each list's expected scrubbed content."""
    expected: dict[str, list[str]] = {}
    for chat in range(chats):
        key = f"mem:tenant{chat % 2}:chat{chat}"
        original: list[str] = []
        scrubbed: list[str] = []
        for i, (template, value) in enumerate(PII_MESSAGES):
            clean = CLEAN_MESSAGES[(i + chat) % len(CLEAN_MESSAGES)]
            original += [template.format(value), clean]
            scrubbed += [template.format("[REDACTED]"), clean]
        client.rpush(key, *original)
        expected[key] = scrubbed
    return expected


def _lead(client: redis.Redis, lead_id: str) -> dict[str, str]:
    record: dict[str, str] = {
        "details": "please call (415) 555-2671 or mail jane@example.com",
        "source": "web",
        "has_email": "1",
        "score": "0.7342",
        "model_version": "1730483820",
        "received_at": "2026-11-26T11:01:26+00:00",
    }
    for field, value in record.items():
        client.hset(f"lead:{lead_id}", field, value)
    return {**record, "details": "please call [REDACTED] or mail [REDACTED]"}


def _dump(client: redis.Redis) -> dict[bytes | str, bytes | None]:
    return {key: client.dump(key) for key in client.keys("*")}


def test_scrubs_lists_and_lead_hashes_and_nothing_else(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    expected = _seed(client)
    lead = _lead(client, "42")
    client.set("mem:tenant0:note", "jane.doe@example.com")  # a string: skipped, untouched
    client.sadd("mem:tenant0:tags", "jane.doe@example.com")  # a set: skipped, untouched
    client.rpush("other:list", "mail jane.doe@example.com")  # outside the pattern

    result = _run(redis_url)
    assert result.returncode == 0, result.stderr
    summary = _summary(result)
    assert summary["scanned_keys"] == len(expected) + 2
    assert summary["scanned_items"] == sum(len(v) for v in expected.values())
    assert summary["redacted_items"] == len(expected) * len(PII_MESSAGES)
    assert summary["skipped"] == 2
    assert summary["conflicts"] == 0
    assert summary["complete"] is True
    for key, messages in expected.items():
        assert client.lrange(key, 0, -1) == messages
    assert client.get("mem:tenant0:note") == "jane.doe@example.com"
    assert client.smembers("mem:tenant0:tags") == {"jane.doe@example.com"}
    assert client.lrange("other:list", 0, -1) == ["mail jane.doe@example.com"]

    result = _run(redis_url, "--pattern", "lead:*", "--pattern", "mem:*")
    summary = _summary(result)
    assert summary["redacted_items"] == 1
    assert summary["by_pattern"]["lead:*"] == {
        "keys": 1,
        "items": 6,
        "redacted_items": 1,
        "conflicts": 0,
    }
    assert client.hgetall("lead:42") == lead


def test_max_ops_per_sec_paces_the_run(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for chat in range(30):
        client.rpush(f"mem:t:chat{chat}", "hello", "mail jane@example.com")
    # Each list costs at least TYPE, LLEN, LRANGE and one compare-and-set: >= 120 commands.
    paced = _summary(_run(redis_url, "--max-ops-per-sec", "60", "--batch", "10"))
    assert paced["redacted_items"] == 30
    assert paced["seconds"] >= 120 / 60 * 0.9
    client.flushall()
    for chat in range(30):
        client.rpush(f"mem:t:chat{chat}", "hello", "mail jane@example.com")
    unpaced = _summary(_run(redis_url, "--batch", "10"))
    assert unpaced["seconds"] < paced["seconds"] / 4


def test_second_run_redacts_nothing(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    _seed(client)
    assert _summary(_run(redis_url))["redacted_items"] == len(PII_MESSAGES) * 5
    before = _dump(client)
    again = _summary(_run(redis_url))
    assert again["redacted_items"] == 0
    assert again["scanned_items"] == 5 * 2 * len(PII_MESSAGES)
    assert _dump(client) == before


def test_dry_run_writes_nothing_and_predicts_the_real_run(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    _seed(client, chats=12)
    for lead_id in range(3):
        _lead(client, str(lead_id))
    client.rpush("mem:t:long", *[f"msg {i} to user{i}@example.com" for i in range(1200)])
    before = _dump(client)

    report = tmp_path / "dry.json"
    dry = _run(redis_url, "--dry-run", "--pattern", "*", "--batch", "100", "--report", str(report))
    assert dry.returncode == 0, dry.stderr
    assert _dump(client) == before
    predicted = _summary(dry)
    assert json.loads(report.read_text()) == predicted
    assert predicted["dry_run"] is True

    real = _summary(_run(redis_url, "--pattern", "*", "--batch", "100"))
    timing = {"seconds", "finished_at", "dry_run"}
    assert {k: v for k, v in predicted.items() if k not in timing} == {
        k: v for k, v in real.items() if k not in timing
    }
    assert real["redacted_items"] == 12 * len(PII_MESSAGES) + 3 + 1200
    assert real["by_type"]["EMAIL"] == 12 + 3 + 1200
    assert set(real["by_pattern"]) == {"mem:*:*", "lead:*"}
    # The report names key patterns and counts only: no key, no value.
    text = report.read_text()
    for forbidden in ("example.com", "tenant", "chat", "555", "lead:0"):
        assert forbidden not in text


def test_concurrent_pushes_are_never_lost(redis_url: str) -> None:
    concurrent_pushes_are_never_lost(redis_url, redis.Redis.from_url)


def concurrent_pushes_are_never_lost(
    redis_url: str, connect: Callable[..., Any], *options: str
) -> None:
    """A writer RPUSHes and LPUSHes onto the lists while a paced backfill scrubs them: every
    pushed message is there afterwards (as written or scrubbed), and no old one has PII."""
    client = connect(redis_url, decode_responses=True)
    keys = [f"mem:t:chat{i}" for i in range(40)]
    seeded: dict[str, list[str]] = {}
    for key in keys:
        seeded[key] = [f"{key} old {i} mail u{i}@example.com" for i in range(50)]
        client.rpush(key, *seeded[key])
    pushed: dict[str, list[str]] = {key: [] for key in keys}
    stop = threading.Event()

    def writer() -> None:
        writer_client = connect(redis_url, decode_responses=True)
        n = 0
        while not stop.is_set():
            key = keys[n % len(keys)]
            message = f"{key} new {n} call (415) 555-{n % 10000:04d}"
            if n % 2:
                writer_client.rpush(key, message)
            else:
                writer_client.lpush(key, message)
            pushed[key].append(message)
            n += 1
            time.sleep(0.001)  # a busy chat service, not a tight loop hogging the two cores

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # Paced so the run spans many of the writer's pushes.
        result = _run(redis_url, "--batch", "10", "--max-ops-per-sec", "400", *options)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert sum(len(v) for v in pushed.values()) > 200

    detector = Detector()
    for key in keys:
        now = client.lrange(key, 0, -1)
        assert len(now) == len(seeded[key]) + len(pushed[key])
        for message in pushed[key]:
            # Each pushed message is there, as written or scrubbed (never dropped).
            assert message in now or detector.redact(message) in now
        old = [m for m in now if " old " in m]
        assert len(old) == len(seeded[key])
        assert all("@example.com" not in m for m in old)


def test_a_list_longer_than_one_read_is_scrubbed_chunk_by_chunk(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    length = scrubber.WHOLE_LIST_MAX + 250  # read in chunks of --batch, not whole
    messages = [
        f"message {i} mail u{i}@example.com" if i % 7 == 0 else f"message {i} fine"
        for i in range(length)
    ]
    client.rpush("mem:t:long", *messages)

    summary = _summary(_run(redis_url, "--batch", "100"))

    assert summary["scanned_items"] == length
    assert summary["redacted_items"] == len([m for m in messages if "@" in m])
    assert client.lrange("mem:t:long", 0, -1) == [
        m.replace(m.split()[-1], "[REDACTED]") if "@" in m else m for m in messages
    ]


def _any_scrubbed(client: redis.Redis, keys: list[str]) -> bool:
    """Whether the run has written to any of the keys yet (SCAN order is not `keys`')."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.lindex(key, 0)
    return any("[REDACTED]" in first for first in pipe.execute())


def test_redis_restart_mid_run_fails_clearly_and_rerun_completes(
    redis_url: str, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    keys = [f"mem:t:chat{i}" for i in range(200)]
    for key in keys:
        client.rpush(key, *[f"msg {i} mail u{i}@example.com" for i in range(20)], "clean")

    # Paced to last several seconds: at 100 ops/s the run could end on a loaded machine
    # before the restart below (seen in CI).
    process = subprocess.Popen(
        [*LEADOPS, "--redis-url", redis_url, "--batch", "5", "--max-ops-per-sec", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _any_scrubbed(client, keys):
            assert process.poll() is None, "the run ended before the restart"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.save()  # keep what was written so far across the restart
        redis_server.restart()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert stderr.count("\n") == 1
    assert "lost the connection to Redis" in stderr
    assert "rerun" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["complete"] is False

    client = redis_server.client()
    for key in keys:  # every element is its original or its scrubbed form, none lost
        now = client.lrange(key, 0, -1)
        assert len(now) == 21
        for i, message in enumerate(now[:20]):
            assert message in {f"msg {i} mail u{i}@example.com", f"msg {i} mail [REDACTED]"}

    rerun = _run(redis_url)
    assert rerun.returncode == 0, rerun.stderr
    assert _summary(rerun)["complete"] is True
    for key in keys:
        assert client.lrange(key, 0, -1) == [f"msg {i} mail [REDACTED]" for i in range(20)] + [
            "clean"
        ]


def test_compare_and_set_leaves_changed_values_alone(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    cas_list = client.register_script(cas_scripts.CAS_LIST)
    cas_hash = client.register_script(cas_scripts.CAS_HASH)
    client.rpush("mem:a", "a@example.com", "b@example.com", "c@example.com")
    client.lpush("mem:a", "pushed meanwhile")  # shifts every index by one
    client.lset("mem:a", 2, "edited by the app")  # what we read as b@ at index 1 changed
    client.rpush("mem:b", "d@example.com")
    client.set("mem:now-a-string", "x")  # was a list when it was read
    result = cas_list(
        keys=["mem:a", "mem:now-a-string", "mem:b"],
        args=[
            *(b"1", b"0", b"a@example.com", b"A"),
            *(b"1", b"1", b"b@example.com", b"B"),
            *(b"2", b"0", b"e@example.com", b"E"),
            *(b"1", b"2", b"c@example.com", b"C"),
            *(b"3", b"0", b"d@example.com", b"D"),
        ],
    )
    assert result[:2] == [1, 0]
    assert b"WRONGTYPE" in result[2]  # that key's error, and the call goes on
    assert result[3:] == [1, 1]
    assert client.lrange("mem:a", 0, -1) == [b"pushed meanwhile", b"A", b"edited by the app", b"C"]
    assert client.lrange("mem:b", 0, -1) == [b"D"]

    client.hset("lead:1", mapping={"details": "x@example.com", "notes": "changed"})
    client.hset("lead:2", mapping={"details": "z@example.com"})
    result = cas_hash(
        keys=["lead:1", "lead:2"],
        args=[
            *(b"1", b"details", b"x@example.com", b"X"),
            *(b"1", b"notes", b"y@example.com", b"Y"),
            *(b"2", b"details", b"z@example.com", b"Z"),
        ],
    )
    assert result == [1, 0, 1]
    assert client.hgetall("lead:1") == {b"details": b"X", b"notes": b"changed"}
    assert client.hgetall("lead:2") == {b"details": b"Z"}


def _run_on_a_terminal(url: str, *args: str) -> tuple[int, str, str]:
    """Runs the CLI with stderr on a pseudo-terminal (as a person running it by hand has);
    returns the exit code, stdout and everything drawn on the terminal."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*LEADOPS, "--redis-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "TERM": "dumb", "COLUMNS": "160"},
    )
    os.close(terminal)
    drawn = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    process.stdout.close()
    return process.wait(timeout=60), stdout, drawn.decode()


def test_progress_bar_on_a_terminal_reaches_100_percent(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for chat in range(300):
        client.rpush(f"mem:t:chat{chat}", *[f"msg {i} call (415) 555-{i:04d}" for i in range(30)])
    client.set("mem:t:not-a-list", "x")
    code, stdout, drawn = _run_on_a_terminal(redis_url, "--batch", "20")
    assert code == 0, drawn
    assert json.loads(stdout.strip().splitlines()[-1])["redacted_items"] == 9000
    assert drawn.startswith("pii-backfill: counting keys...\r")
    frames = [frame.rstrip() for frame in drawn.replace("\r\n", "\n").split("\r") if frame]
    last = frames[-1].strip()
    # Bar, percentage, done/total, rate, time taken; and what the run did.
    assert re.fullmatch(
        r"pii-backfill \|#{10,30}\| 100% 301/301 keys [\d,]+ keys/s in \d+:\d\d "
        r"9,000 items, 9,000 redacted",
        last,
    ), last
    # Earlier frames show the bar filling up, each with a percentage, counts and an ETA.
    first = re.search(r"\| +(\d+)% ([\d,]+)/301 keys [\d,]+ keys/s ETA ", frames[1])
    assert first is not None, frames
    assert int(first[1]) < 100
    assert int(first[2]) < 301


def test_no_progress_bar_off_a_terminal(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    _seed(client)
    result = _run(redis_url, "--dry-run")
    assert result.returncode == 0
    assert result.stderr == ""  # not a terminal: no progress noise, only the JSON summary
    assert _summary(result)["scanned_keys"] == 5


def test_a_refused_command_mid_run_is_exit_1_with_the_summary(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    _seed(client)
    # A real ACL user that may connect and count keys but not SCAN.
    client.acl_setuser(
        "no-scan", enabled=True, passwords=["+s3cret-pw"], keys=["*"], commands=["+@all", "-scan"]
    )
    try:
        host_port = redis_url.split("//", 1)[1]
        result = _run(f"redis://no-scan:s3cret-pw@{host_port}")
    finally:
        client.acl_deluser("no-scan")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "refused a command" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    summary = _summary(result)
    assert summary["complete"] is False
    assert summary["redacted_items"] == 0


DEATH_MARK = "the worker dies on this one"


class _WorkerDiesOnMark(Detector):
    """The real detector, except that a detection worker process exits abruptly (as if
    OOM-killed) on a message holding DEATH_MARK; in the main process it behaves normally."""

    def find(self, text: str) -> list[Finding]:
        if DEATH_MARK in text and multiprocessing.parent_process() is not None:
            os._exit(137)
        return super().find(text)


def test_a_dead_detection_worker_is_exit_1_with_the_summary_and_rerun_completes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    expected = _seed(client)
    client.rpush("mem:tenant9:chat9", f"{DEATH_MARK}: jane.doe@example.com")
    monkeypatch.setattr(
        pii_backfill, "detector_for", lambda regions: _WorkerDiesOnMark(regions=regions or ["US"])
    )
    code = pii_backfill.main(["--redis-url", redis_url, "--workers", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1
    assert "a detection worker process died" in err
    assert "rerun to finish" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["complete"] is False
    assert summary["scanned_keys"] >= 1

    monkeypatch.undo()
    rerun = _run(redis_url)
    assert rerun.returncode == 0, rerun.stderr
    assert _summary(rerun)["complete"] is True
    for key, scrubbed in expected.items():
        assert client.lrange(key, 0, -1) == scrubbed
    assert client.lrange("mem:tenant9:chat9", 0, -1) == [f"{DEATH_MARK}: [REDACTED]"]


def test_the_termination_log_holds_the_result_in_a_few_bytes(
    redis_url: str, tmp_path: Path
) -> None:
    """What the operator reads from the Pod (pii_gate.run_of): the counts, complete and the
    finish time, small enough for the kubelet's 4096 bytes; a stopped run says complete=false."""
    client = redis.Redis.from_url(redis_url)
    _seed(client, chats=20)
    log = tmp_path / "termination-log"
    result = _run(redis_url, "--termination-log", str(log))
    assert result.returncode == 0, result.stderr
    said = json.loads(log.read_text(encoding="utf-8"))
    summary = _summary(result)
    assert set(said) == set(pii_backfill.TERMINATION_FIELDS)
    assert {k: summary[k] for k in said} == said
    assert said["complete"] is True
    assert said["redacted_items"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", said["finished_at"])
    assert len(log.read_bytes()) < 4096

    client.acl_setuser(
        "no-scan", enabled=True, passwords=["+s3cret-pw"], keys=["*"], commands=["+@all", "-scan"]
    )
    try:
        host_port = redis_url.split("//", 1)[1]
        refused = _run(f"redis://no-scan:s3cret-pw@{host_port}", "--termination-log", str(log))
    finally:
        client.acl_deluser("no-scan")
    assert refused.returncode == 1
    assert json.loads(log.read_text(encoding="utf-8"))["complete"] is False
