"""`DELETE /v1/lead/{id}` and `GET /ops/followups` over real HTTP, with a real redis-server,
the real worker and the provider twins: erasure takes the record, chat memory, contact and
scheduled follow-ups of the caller's tenant only, twice is harmless, and the audit names no
lead; the ops view counts what the worker and the webhooks recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from leadops.followups import keys
from leadops.followups.keys import Keys
from leadops.followups.queue import Job
from leadops.followups.schedule import schedule_follow_up
from leadops.followups.vault import Contact
from tests.fixtures.artifacts import Built
from tests.fixtures.followups import TENANT, Stack, config_data, load_config, tenant_spec
from tests.fixtures.provider_twins import Twin
from tests.fixtures.scorer import API_KEY, KEY_SALT, StartScorer, chat_key

pytestmark = pytest.mark.redis

ACME_KEY = "acme-ingest-key-0123456789"
GLOBEX_KEY = "globex-ingest-key-9876543210"
PHONE = "+14155550123"


def _stack(redis_url: str, tmp_path: Path, twin: Twin) -> Stack:
    data = config_data({TENANT: tenant_spec(tmp_path, twin)})
    config = load_config(data, tmp_path / "config.json")
    # The scorer's key salt: both name a lead by the same keyed hash.
    return Stack(redis.Redis.from_url(redis_url), config, keys=Keys(KEY_SALT))


def _schedule(stack: Stack, lead_id: str, *, later: bool) -> Job:
    job = schedule_follow_up(
        tenant=TENANT, spec=stack.config.tenants[TENANT], keys_=stack.keys, vault=stack.vault,
        queue=stack.queue, lead_id=lead_id, score=0.9, contact=Contact(phone=PHONE, name="Ada"),
        now=stack.now, delay_override_minutes=60 if later else 0,
    )  # fmt: skip
    assert job is not None
    return job


def _as(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def test_erasure_is_tenant_scoped_complete_idempotent_and_audited_without_the_lead(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        ingest_keys=f"acme={ACME_KEY}\nglobex={GLOBEX_KEY}",
    )
    db = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = _stack(redis_url, tmp_path, provider_twin)
    with server.client(api_key=None) as http:
        scored = [
            http.post("/v1/lead", json={"details": "hi", "chat_id": f"c{i}"}, headers=_as(ACME_KEY))
            for i in range(2)
        ]
        assert [r.status_code for r in scored] == [200, 200]
        lead_id, other_id = (r.json()["lead_id"] for r in scored)
        added = http.post(
            f"/v1/lead/{lead_id}/messages", json={"text": "call me"}, headers=_as(ACME_KEY)
        )
        assert added.status_code == 200
        memory = chat_key(TENANT, "c0")
        assert db.llen(memory) >= 1
        job = _schedule(stack, lead_id, later=True)
        _schedule(stack, other_id, later=True)
        contact = Keys.contact(TENANT, job.lead)
        assert db.exists(contact)
        assert db.zcard(keys.SCHEDULED) == 2

        # Another tenant cannot erase (nor learn about) acme's lead.
        crossed = http.delete(f"/v1/lead/{lead_id}", headers=_as(GLOBEX_KEY))
        assert crossed.status_code == 200, crossed.text
        assert crossed.json()["erased"] == {
            "record": False, "chat_memory": False, "contact": False, "follow_ups": 0,
        }  # fmt: skip
        assert db.exists(f"lead:{lead_id}")

        erased = http.delete(f"/v1/lead/{lead_id}", headers=_as(ACME_KEY))
        assert erased.status_code == 200, erased.text
        assert erased.json() == {
            "ok": True,
            "lead_id": lead_id,
            "erased": {"record": True, "chat_memory": True, "contact": True, "follow_ups": 1},
        }
        assert not db.exists(f"lead:{lead_id}", memory, contact)
        assert db.zscore("leadops:outcomes", lead_id) is None
        (left,) = db.zrange(keys.SCHEDULED, 0, -1)
        assert Job.decode(str(left)).lead == stack.keys.lead_ref(TENANT, other_id)
        assert db.exists(f"lead:{other_id}")  # only that lead

        again = http.delete(f"/v1/lead/{lead_id}", headers=_as(ACME_KEY))
        assert again.status_code == 200
        assert again.json()["erased"] == {
            "record": False, "chat_memory": False, "contact": False, "follow_ups": 0,
        }  # fmt: skip

        # Bad input: 422 for a malformed id, 401 without an ingest key.
        assert http.delete("/v1/lead/not-an-id", headers=_as(ACME_KEY)).status_code == 422
        assert http.delete(f"/v1/lead/{other_id}").status_code == 401

        # The outcome of an erased lead is unknown now.
        gone = http.post(
            "/v1/outcome", json={"lead_id": lead_id, "converted": True}, headers=_as(ACME_KEY)
        )
        assert gone.status_code == 404

    audit: list[tuple[str, dict[str, str]]] = db.xrange("leadops:audit")  # type: ignore[assignment]
    assert [e["record"] for _, e in audit] == ["0", "1", "0"]
    assert all(e["lead"] == job.lead for _, e in audit[1:])
    dumped = repr(audit) + server.log()
    assert lead_id not in dumped
    assert PHONE not in dumped


def test_ops_followups_counts_what_the_worker_and_webhooks_recorded(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    stack = _stack(redis_url, tmp_path, provider_twin)
    with server.client() as http:
        empty = http.get("/ops/followups")
        assert empty.status_code == 200, empty.text
        assert empty.json() == {
            "queue": {"scheduled": 0, "due": 0, "in_flight": 0, "dead_lettered": 0},
            "tenants": {},
        }
        for i in range(3):
            _schedule(stack, f"lead-{i}", later=False)
        _schedule(stack, "later", later=True)
        # One with a contact that cannot be opened: dead-lettered.
        doomed = _schedule(stack, "doomed", later=False)
        stack.client.set(Keys.contact(TENANT, doomed.lead), b"garbage")
        stack.drain(until=lambda: len(provider_twin.accepted) >= 3, seconds=10)
        stack.drain(seconds=0.5)
        assert len(provider_twin.accepted) == 3

        body = http.get("/ops/followups").json()
        assert body["queue"] == {"scheduled": 1, "due": 0, "in_flight": 0, "dead_lettered": 1}
        sms = body["tenants"][TENANT]["sms"]
        assert sms["counts"]["sent"] == 3
        assert sms["counts"]["dead_lettered"] == 1
        assert sms["rates"]["delivery_rate"] == 0.0
        assert sms["rates"]["reply_rate"] == 0.0
        assert http.get("/ops/followups", headers={"x-api-key": "wrong"}).status_code == 401


def test_ops_followups_without_redis_says_so(start_scorer: StartScorer, good_model: Built) -> None:
    server = start_scorer(model=good_model.path)
    with server.client() as http:
        answer = http.get("/ops/followups")
    assert answer.status_code == 503
    assert "Redis" in answer.json()["detail"]


def test_a_follow_up_already_due_when_its_lead_is_erased_is_never_sent(
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
    start_scorer: StartScorer,
    good_model: Built,
) -> None:
    server = start_scorer(
        model=good_model.path, redis_url=redis_url, ingest_keys=f"acme={ACME_KEY}"
    )
    stack = _stack(redis_url, tmp_path, provider_twin)
    with server.client(api_key=None) as http:
        lead_id = http.post("/v1/lead", json={"details": "hi"}, headers=_as(ACME_KEY)).json()[
            "lead_id"
        ]
        _schedule(stack, lead_id, later=False)  # on the stream already, not in the schedule
        erased = http.delete(f"/v1/lead/{lead_id}", headers=_as(ACME_KEY)).json()["erased"]
        assert (erased["contact"], erased["follow_ups"]) == (True, 0)
        stack.drain(seconds=1.0)
        assert provider_twin.accepted == []
        counts = http.get("/ops/followups", headers=_as(API_KEY)).json()["tenants"][TENANT]
        assert counts["sms"]["counts"] == {"expired": 1}
