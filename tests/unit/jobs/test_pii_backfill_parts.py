"""`leadops pii-backfill` input checks (no Redis needed) and its pure helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadops.jobs.pii_backfill.cpu_quota import default_workers
from leadops.jobs.pii_backfill.pacer import Pacer
from leadops.jobs.pii_backfill.stats import key_pattern
from tests.fixtures.ports import free_port

LEADOPS = [sys.executable, "-m", "leadops.cli", "pii-backfill"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "LEADOPS_REDIS_URL"}}
    return subprocess.run(
        [*LEADOPS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--batch", "0"], {}, "--batch"),
        (["--max-ops-per-sec", "-5"], {}, "--max-ops-per-sec"),
        (["--workers", "0"], {}, "--workers"),
        (["--bogus"], {}, "--bogus"),
        ([], {}, "REDIS_URL"),
        (["--redis-url", "http://localhost:6379"], {}, "redis://"),
        (["--region", "XX"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "XX"),
        (["--report", "/nonexistent/dir/out.json"], {"REDIS_URL": "redis://x:1"}, "/nonexistent"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    result = _run(*args, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert needle in result.stderr
    assert result.stdout == ""


def test_unreachable_redis_is_exit_2_naming_it_without_the_password() -> None:
    port = free_port()
    result = _run(env={"LEADOPS_REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "hunter2" not in result.stderr


def test_key_pattern_names_no_key() -> None:
    assert key_pattern(b"mem:tenant1:chat1") == "mem:*:*"
    assert key_pattern(b"lead:0f3a") == "lead:*"
    assert key_pattern(b"jane@example.com") == "*"


def test_pacer_holds_the_average_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(100, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        pacer.take(50)
    assert now[0] == pytest.approx(5.0)  # 500 ops at 100/s
    unpaced = Pacer(None, clock=lambda: now[0], sleep=sleep)
    unpaced.take(10**6)
    assert now[0] == pytest.approx(5.0)


def test_default_workers_follow_the_cgroup_cpu_quota(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert default_workers(cpu_max=tmp_path / "absent") == cpus
    cpu_max.write_text("max 100000\n")
    assert default_workers(cpu_max=cpu_max) == cpus
    cpu_max.write_text("50000 100000\n")  # a 500m limit
    assert default_workers(cpu_max=cpu_max) == 1
    cpu_max.write_text(f"{150000 * cpus} 100000\n")  # more quota than CPUs
    assert default_workers(cpu_max=cpu_max) == cpus
