"""Tenancy over real HTTP with a real redis-server: the tenant comes from the ingest key.

Two tenants with their own keys: every cross-tenant write and read is refused (403 for a body
naming the other tenant, 404 for the other tenant's lead, as if it did not exist), ingest and
/ops keys do not stand in for each other, and the open mode serves only `default`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import API_KEY, StartScorer

pytestmark = pytest.mark.redis

ACME_KEY = "acme-ingest-key-0123456789"
GLOBEX_KEY = "globex-ingest-key-9876543210"
INGEST_KEYS = f"acme={ACME_KEY}"


def _as(key: str | None) -> dict[str, str]:
    return {"x-api-key": key} if key is not None else {}


def test_two_tenants_cannot_read_or_write_each_others_leads(
    start_scorer: StartScorer, good_model: Built, redis_url: str, tmp_path: Path
) -> None:
    keys_file = tmp_path / "ingest-keys"
    keys_file.write_text(f"globex={GLOBEX_KEY}\n")
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        ingest_keys=INGEST_KEYS,
        ingest_keys_file=str(keys_file),
    )
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    with server.client(api_key=None) as http:

        def lead(key: str | None, **body: object) -> httpx.Response:
            return http.post("/v1/lead", json={"details": "hi"} | body, headers=_as(key))

        acme = lead(ACME_KEY, chat_id="c1")
        globex = lead(GLOBEX_KEY, tenant="globex", chat_id="c1")
        assert acme.status_code == globex.status_code == 200
        acme_id, globex_id = acme.json()["lead_id"], globex.json()["lead_id"]

        # Writes: a body naming the other tenant is refused whatever path answers it.
        for content_type in ("application/json", "application/json; charset=utf-8"):
            crossed = http.post(
                "/v1/lead",
                content=b'{"tenant": "globex", "details": "x"}',
                headers={"content-type": content_type} | _as(ACME_KEY),
            )
            assert crossed.status_code == 403, crossed.text
            assert ACME_KEY not in crossed.text
        # No key, a wrong key, an /ops key: not an ingest key.
        for key in (None, "acme-ingest-key-012345678X", API_KEY):
            assert lead(key).status_code == 401
        # Outcomes and messages for the other tenant's lead: as if it did not exist.
        for key, foreign in ((ACME_KEY, globex_id), (GLOBEX_KEY, acme_id)):
            outcome = http.post(
                "/v1/outcome", json={"lead_id": foreign, "converted": True}, headers=_as(key)
            )
            assert outcome.status_code == 404
            assert outcome.json() == {"detail": "unknown lead_id"}
            message = http.post(
                f"/v1/lead/{foreign}/messages", json={"text": "hello"}, headers=_as(key)
            )
            assert message.status_code == 404
            assert message.json() == {"detail": "unknown lead_id"}
        for path, body in (
            ("/v1/outcome", {"lead_id": acme_id, "converted": True}),
            (f"/v1/lead/{acme_id}/messages", {"text": "hello"}),
        ):
            assert http.post(path, json=body).status_code == 401
            assert http.post(path, json=body, headers=_as(API_KEY)).status_code == 401
        # An ingest key does not open /ops.
        assert http.get("/ops/model-status", headers=_as(ACME_KEY)).status_code == 401
        assert http.get("/ops/export/outcomes.csv", headers=_as(GLOBEX_KEY)).status_code == 401

        # Each tenant's own lead: accepted.
        for key, own in ((ACME_KEY, acme_id), (GLOBEX_KEY, globex_id)):
            outcome = http.post(
                "/v1/outcome", json={"lead_id": own, "converted": True}, headers=_as(key)
            )
            assert outcome.status_code == 200
            message = http.post(f"/v1/lead/{own}/messages", json={"text": "ok"}, headers=_as(key))
            assert message.status_code == 200

        # A key rotated in the file: the old one is refused, the new one names the same tenant.
        keys_file.write_text("globex=globex-rotated-key-5555\n")
        assert lead(GLOBEX_KEY).status_code == 401
        assert lead("globex-rotated-key-5555", tenant="globex").status_code == 200

    assert store.hget(f"lead:{acme_id}", "tenant") == "acme"
    assert store.hget(f"lead:{globex_id}", "tenant") == "globex"
    # The refused cross-tenant writes changed nothing: no label, one message each.
    assert store.hget(f"lead:{acme_id}", "converted") == "1"
    assert store.hget(f"lead:{globex_id}", "converted") == "1"
    # Chats: each tenant's first message plus its own second one; the rotated key's lead.
    chats = sorted((k.split(":")[1], store.llen(k)) for k in store.scan_iter("mem:*"))
    assert chats == [("acme", 2), ("globex", 1), ("globex", 2)]
    log = server.log()
    for key in (ACME_KEY, GLOBEX_KEY, "globex-rotated-key"):
        assert key not in log
    assert "Loaded 1 ingest key(s) for 1 tenant(s)" in log


def test_open_mode_serves_only_the_default_tenant(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    with server.client(api_key=None) as http:
        # The guide's smoke test: no key, no tenant.
        smoke = http.post("/v1/lead", json={"name": "Test", "phone": "555", "details": "test"})
        assert smoke.status_code == 200
        assert http.post("/v1/lead", json={"tenant": "default"}).status_code == 200
        other = http.post("/v1/lead", json={"tenant": "acme", "details": "x"})
        assert other.status_code == 403
        assert "only tenant 'default'" in other.json()["detail"]
        lead_id = smoke.json()["lead_id"]
        done = http.post("/v1/outcome", json={"lead_id": lead_id, "converted": False})
        assert done.status_code == 200
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    tenants = {store.hget(key, "tenant") for key in store.scan_iter("lead:*")}
    assert tenants == {"default"}
    assert "serves tenant 'default' only" in server.log()


def test_a_malformed_ingest_keys_setting_stops_the_scorer_with_one_line(
    start_scorer: StartScorer, good_model: Built
) -> None:
    with pytest.raises(RuntimeError, match="exited with 2") as failed:
        start_scorer(model=good_model.path, ingest_keys="acme=ok-key-1,no-equals-secret-key")
    message = str(failed.value)
    assert "LEADOPS_INGEST_KEYS: entry 2 is not TENANT=KEY" in message
    assert "no-equals-secret-key" not in message
