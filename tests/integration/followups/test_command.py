"""`leadops followups`: bad input is exit 2 with one line; `dlq` lists dead letters as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from leadops.followups import keys
from tests.fixtures.followups import TENANT, config_data, tenant_spec
from tests.fixtures.provider_twins import Twin


def _leadops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leadops.cli", "followups", *args],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["tenants"][TENANT]["rules"][0].update(template="nope"), "not in templates"),
        (lambda d: d["tenants"][TENANT]["templates"]["hot"].update(body="{{ nope }}"),
         "template 'hot': undefined"),
        (lambda d: d["tenants"][TENANT]["vault"].update(current="k9"), "not in the keyring"),
        (lambda d: d.update(maxAttempts=0), "maxAttempts"),
    ],
)  # fmt: skip
def test_invalid_config_is_one_line_exit_2(
    tmp_path: Path, provider_twin: Twin, mutate: object, message: str
) -> None:
    data = config_data({TENANT: tenant_spec(tmp_path, provider_twin)})
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    result = _leadops("run", "--config", str(path), "--redis-url", "redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_missing_redis_url_is_exit_2(tmp_path: Path) -> None:
    result = _leadops("dlq", "--redis-url", "")
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)


@pytest.mark.redis
def test_dlq_lists_dead_letters_newest_first(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for reason in ("template_error", "in_doubt"):
        client.xadd(keys.DEAD_LETTER, {"tenant": TENANT, "reason": reason, "channel": "sms"})
    result = _leadops("dlq", "--redis-url", redis_url)
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["reason"] for r in rows] == ["in_doubt", "template_error"]


@pytest.mark.redis
def test_webhooks_command_serves_and_counts_refusals(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    import httpx  # noqa: PLC0415

    from tests.fixtures.ports import free_port, wait_for_port  # noqa: PLC0415
    from tests.fixtures.processes import terminate  # noqa: PLC0415

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_data({TENANT: tenant_spec(tmp_path, provider_twin)})))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "leadops.cli", "followups", "webhooks",
                               "--config", str(path), "--redis-url", redis_url,
                               "--port", str(port)])  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        refused = httpx.post(f"{base}/v1/webhooks/twilio/{TENANT}", data={"Body": "STOP"})
        assert refused.status_code == 403
        metrics = httpx.get(f"{base}/metrics").text
        assert 'leadops_followups_webhooks_total{provider="twilio",verdict="forbidden"} 1.0' in (
            metrics
        )
    finally:
        terminate(server, timeout=10)


def _leadops_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_REDIS_URL")}
    return subprocess.run([sys.executable, "-m", "leadops.cli", "followups", *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=clean | env)  # fmt: skip


@pytest.mark.redis
def test_redis_url_from_a_mounted_secret_file(redis_url: str, tmp_path: Path) -> None:
    """How the operator's Deployment passes it: LEADOPS_REDIS_URL_FILE, never an env value."""
    redis.Redis.from_url(redis_url).xadd(keys.DEAD_LETTER, {"tenant": TENANT, "reason": "x"})
    url_file = tmp_path / "url"
    url_file.write_text(redis_url + "\n")
    result = _leadops_env({"LEADOPS_REDIS_URL_FILE": str(url_file)}, "dlq")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reason"] == "x"


def test_unreadable_redis_url_file_is_exit_2(tmp_path: Path) -> None:
    result = _leadops_env({"LEADOPS_REDIS_URL_FILE": str(tmp_path / "missing")}, "dlq")
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
    assert "LEADOPS_REDIS_URL_FILE" in result.stderr
