"""Per-tenant rate limits under a burst from 5 tenants, measured where it matters: at the
provider twin, in every 1-second window (sliding, not aligned to whole seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from leadops.followups.schedule import schedule_follow_up
from leadops.followups.vault import Contact
from tests.fixtures.followups import Stack, config_data, load_config, tenant_spec
from tests.fixtures.provider_twins import Twin

pytestmark = [pytest.mark.redis, pytest.mark.slow]
LIMITS = {"t0": 2, "t1": 3, "t2": 4, "t3": 5, "t4": 6}
PER_TENANT = 12


def test_no_tenant_exceeds_its_limit_in_any_window(
    redis_url: str, tmp_path: Path, provider_twin: Twin
) -> None:
    tenants = {name: tenant_spec(tmp_path, provider_twin, name=name, rate_limit=limit)
               for name, limit in LIMITS.items()}  # fmt: skip
    stack = Stack(redis.Redis.from_url(redis_url),
                  load_config(config_data(tenants), tmp_path / "config.json"))  # fmt: skip
    for i in range(PER_TENANT):  # interleaved, as a burst of real traffic would be
        for t, name in enumerate(LIMITS):
            schedule_follow_up(
                tenant=name, spec=stack.config.tenants[name], keys_=stack.keys,
                vault=stack.vault, queue=stack.queue, lead_id=f"lead-{i}", score=0.9,
                contact=Contact(phone=f"+1415{t}00{i:04d}", name="N"), now=stack.now,
            )  # fmt: skip
    total = PER_TENANT * len(LIMITS)
    stack.drain(until=lambda: len(provider_twin.accepted) >= total, seconds=30, threads=16)
    assert len(provider_twin.accepted) == total
    for t, (name, limit) in enumerate(LIMITS.items()):
        times = sorted(m.at for m in provider_twin.accepted if m.to.startswith(f"+1415{t}"))
        assert len(times) == PER_TENANT
        # Any window [s, s+1) holds at most `limit` sends <=> sends i and i+limit are >= 1 s apart.
        tightest = min(times[i + limit] - times[i] for i in range(len(times) - limit))
        assert tightest >= 1.0, f"{name}: {limit + 1} sends within {tightest:.3f}s"
        # ...and the limiter is not needlessly slow: the burst goes at about the limit.
        assert times[-1] - times[0] < (PER_TENANT / limit) + 1.5, name
