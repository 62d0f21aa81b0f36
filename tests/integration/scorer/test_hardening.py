"""Issue #13's defects, each tried as an attacker would against a real scorer (uvicorn subprocess,
real redis-server where a store matters): every one must now be refused cleanly."""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from leadops.jobs.training import outcomes_csv
from leadops.scorer import store
from tests.fixtures.artifacts import Built, build_artifact
from tests.fixtures.metrics import metric_value
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import API_KEY, StartScorer

JSON = {"content-type": "application/json"}
# The first goes to the ASGI fast path, the second (a charset) to the full FastAPI app.
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8"]
EMAIL = "zebulon.quimby@example.com"
CARD = "4111 1111 1111 1111"


def _serving_copy(source: Path, tmp_path: Path) -> Path:
    serving = tmp_path / "serving.json"
    shutil.copy(source, serving)
    return serving


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_lone_surrogate_is_a_422_naming_the_field_and_no_value_reaches_the_log(
    start_scorer: StartScorer, good_model: Built, content_type: str
) -> None:
    server = start_scorer(model=good_model.path, log_level="debug")
    body = b'{"details": "mail %s card %s \\ud800", "source": "web"}' % (
        EMAIL.encode(),
        CARD.encode(),
    )
    with server.client() as http:
        refused = http.post("/v1/lead", content=body, headers={"content-type": content_type})
        late = http.post(
            "/v1/lead",
            json={"details": f"mail {EMAIL}", "received_at": "0001-01-01T00:00:00+14:00"},
        )
        after = http.post("/v1/lead", json={"details": "still scoring"})
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["body", "details"]
    assert "input" not in error
    assert EMAIL not in refused.text
    assert late.status_code == 422, late.text
    assert late.json()["detail"][0]["loc"] == ["body", "received_at"]
    assert after.status_code == 200
    log = server.log()
    assert "DEBUG" in log, "the scorer logged at DEBUG"
    for planted in (EMAIL, "zebulon", CARD, "4111", "\\ud800", "0001-01-01"):
        assert planted not in log
    assert "Traceback" not in log


def test_a_422_never_echoes_a_submitted_key(start_scorer: StartScorer, good_model: Built) -> None:
    server = start_scorer(model=good_model.path, ingest_keys="acme=acme-ingest-key-0001")
    long_key = "k3y-" + "s" * 600
    with server.client(api_key=None) as http:
        answers = [
            http.post("/v1/lead", json={"details": "hi"}, headers={"x-api-key": long_key}),
            http.post(
                "/v1/outcome",
                json={"lead_id": "0" * 32, "converted": True},
                headers={"x-api-key": long_key},
            ),
            http.get("/ops/model-status", params={"api_key": long_key}),
            http.get("/ops/model-status", headers={"x-api-key": long_key}),
        ]
    for answer in answers:
        assert answer.status_code in (401, 422), answer.text
        assert "k3y-" not in answer.text
        assert "sss" not in answer.text
    assert "k3y-" not in server.log()


@pytest.mark.parametrize("which", ["api_keys_file", "ingest_keys_file"])
def test_a_keys_file_with_a_non_utf8_byte_is_503_with_one_log_line_naming_it(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path, which: str
) -> None:
    ops = which == "api_keys_file"
    entry = b"good-key-0001" if ops else b"acme=good-key-0001"
    keys_file = tmp_path / "keys"
    keys_file.write_bytes(entry.replace(b"-0001", b"-\xff-0001") + b"\n")
    server = start_scorer(
        model=good_model.path, api_keys=None if ops else API_KEY, **{which: str(keys_file)}
    )

    def call(http: httpx.Client) -> httpx.Response:
        if ops:
            return http.get("/ops/model-status")
        return http.post("/v1/lead", json={"details": "hi"})

    with server.client(api_key="good-key-0001") as http:
        answers = [call(http) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert "unreadable" in answers[0].json()["detail"]
    lines = [line for line in server.log().splitlines() if "not UTF-8" in line]
    assert len(lines) == 1, server.log()
    assert str(keys_file) in lines[0]
    assert "good-key" not in server.log()
    # Fixed in place (a Secret update): accepted again without a restart.
    keys_file.write_bytes(entry + b"\n")
    with server.client(api_key="good-key-0001") as http:
        assert call(http).status_code == 200


def test_no_redirect_is_built_from_the_host_header(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path)
    with server.client() as http:
        for path in ("/ops/model-status/", "/health/", "/v1/outcome/"):
            answer = http.request(
                "GET" if "outcome" not in path else "POST",
                path,
                headers={"host": "evil.example"},
                follow_redirects=False,
            )
            assert answer.status_code == 404, (path, answer.status_code)
            assert "location" not in answer.headers
            assert "evil.example" not in answer.text


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_metric_labels_take_only_known_methods_and_route_templates(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path)
    for i in range(20):
        # A made-up method is refused by httptools' parser (400) and reaches the app only on
        # h11; a real method we do not route (WebDAV's) reaches the app on either parser.
        made_up = f"X{i}{'M' * 2000}"
        _raw(server.port, f"{made_up} /ops/x{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        webdav = ("PROPFIND", "MKCOL", "LOCK", "UNLOCK")[i % 4]
        _raw(server.port, f"{webdav} /ops/x{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        _raw(server.port, f"GET /nowhere/{i}/{'p' * 2000} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    with server.client() as http:
        text = http.get("/metrics").text
    assert "MMMM" not in text
    assert "pppp" not in text
    assert "nowhere" not in text
    # Two counter series (sample and _created each) and one histogram (14 buckets, +Inf, count,
    # sum, _created) labelled `other`, whatever the 60 odd requests sent.
    assert sum('"other"' in line for line in text.splitlines()) == 2 * 2 + 18
    other_get = {"route": "other", "method": "GET", "status": "404"}
    assert metric_value(text, "leadops_http_requests_total", other_get) == 20.0
    odd_methods = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "leadops_http_requests_total" and sample.labels["method"] == "other"
    ]
    # uvicorn parses with httptools where it is installed (the scorer image), else with h11.
    reach_the_app = 20 if importlib.util.find_spec("httptools") else 40
    assert sum(sample.value for sample in odd_methods) == reach_the_app
    assert {sample.labels["route"] for sample in odd_methods} == {"other"}


def test_far_future_and_deeply_nested_artifacts_are_refused_and_nothing_500s(
    start_scorer: StartScorer, good_model: Built, model_dir: Path, tmp_path: Path
) -> None:
    serving = _serving_copy(good_model.path, tmp_path)
    server = start_scorer(model=serving)
    future = build_artifact(model_dir / "future.json", version=10**12)  # year 33658
    nested = tmp_path / "nested.json"
    nested.write_text('{"format": "leadops.model/v1", "model": ' + "[" * 100_000 + "]" * 100_000)
    with server.client() as http:
        ready_before = http.get("/ready").status_code
        for source, reason in ((future.path, "VersionInFuture"), (nested, "CorruptArtifact")):
            shutil.copy(source, serving)
            answer = http.post("/ops/reload-model")
            assert answer.status_code == 422, answer.text
            assert answer.json()["reason"] == reason
            assert http.get("/ops/model-status").status_code == 200
            assert http.get("/ops/model-card").status_code == 200
            assert http.get("/ops/model-status").json()["version"] == good_model.version
            assert http.get("/ready").status_code == ready_before == 200
        # A scorer started on the far-future file refuses it too: no model, no 500.
    started = start_scorer(model=future.path)
    with started.client() as http:
        assert http.get("/ops/model-status").json()["loaded"] is False
        assert http.get("/ops/model-card").status_code == 503


def test_a_reload_without_min_auc_still_refuses_a_model_below_the_critical_threshold(
    start_scorer: StartScorer, good_model: Built, model_dir: Path, tmp_path: Path
) -> None:
    serving = _serving_copy(good_model.path, tmp_path)
    server = start_scorer(model=serving)
    low = build_artifact(model_dir / "critical.json", auc=0.5, version=int(time.time()) - 60)
    shutil.copy(low.path, serving)
    with server.client() as http:
        for params in ({}, {"min_auc": "0.1"}):
            answer = http.post("/ops/reload-model", params=params)
            assert answer.status_code == 422, answer.text
            assert answer.json()["reason"] == "AucBelowThreshold"
            assert answer.json()["min_auc"] == 0.55
        assert http.get("/ready").status_code == 200
        assert http.get("/ops/model-status").json()["version"] == good_model.version


def _read_export(http: httpx.Client, received: list[int], *, on_first_chunk: Any) -> None:
    """Stream the export, recording its status then each chunk's size."""
    with http.stream("GET", "/ops/export/outcomes.csv") as export:
        received.append(export.status_code)
        for chunk in export.iter_bytes():
            if len(received) == 1:
                on_first_chunk()
            received.append(len(chunk))


@pytest.mark.redis
def test_an_export_interrupted_by_redis_is_an_incomplete_transfer(
    start_scorer: StartScorer, good_model: Built, redis_server: RedisServer, redis_url: str
) -> None:
    server = start_scorer(model=good_model.path, redis_url=redis_url, redis_timeout_seconds="0.3")
    # 10 KB a row, 12 MB in all: more than loopback's socket buffers, so the stream blocks.
    details = ("need a quote for the whole team " * 320)[:10_000]
    with server.client() as http:
        for _ in range(1200):
            lead_id = http.post("/v1/lead", json={"details": details}).json()["lead_id"]
            assert http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
        received: list[int] = []
        with pytest.raises(httpx.RemoteProtocolError):
            _read_export(http, received, on_first_chunk=redis_server.stop)
        redis_server.start()
    assert received[0] == 200
    assert 0 < sum(received[1:]) < 1200 * len(details)
    assert "Export interrupted after" in server.log()


@pytest.mark.redis
def test_dropped_record_and_outcome_counters_count_exactly(
    start_scorer: StartScorer, good_model: Built, redis_server: RedisServer, redis_url: str
) -> None:
    # bestEffort: leads are answered 200 while Redis is down, and counted dropped once Redis
    # is back and their records are confirmed missing (acknowledged would answer 503).
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        redis_timeout_seconds="0.3",
        durability="bestEffort",
    )
    with server.client() as http:
        stored = [http.post("/v1/lead", json={"details": "hi"}).json()["lead_id"] for _ in range(3)]
        # bestEffort answers before the write-behind flushes: Redis must hold these three before
        # it stops, or a loaded machine counts them dropped too (CI once saw 10, not 7).
        keys = [store.lead_key(lead_id) for lead_id in stored]
        with redis.Redis.from_url(redis_url) as r:
            deadline = time.monotonic() + 10
            while r.exists(*keys) < len(keys):
                assert time.monotonic() < deadline, "the first three leads were never stored"
                time.sleep(0.05)
        redis_server.stop()
        try:
            lost = [
                http.post("/v1/lead", json={"details": "x"}).json()["lead_id"] for _ in range(7)
            ]
            outcomes = [
                http.post("/v1/outcome", json={"lead_id": i, "converted": True}) for i in stored
            ]
            messages = [http.post(f"/v1/lead/{i}/messages", json={"text": "x"}) for i in lost[:4]]
        finally:
            redis_server.start()
        deadline = time.monotonic() + 20
        while True:
            text = http.get("/metrics").text
            dropped = {
                kind: metric_value(text, "leadops_records_dropped_total", {"kind": kind})
                for kind in ("lead", "outcome", "message")
            }
            if dropped["lead"] >= 7 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert [a.status_code for a in outcomes + messages] == [503] * 7
    assert dropped == {"lead": 7.0, "outcome": 3.0, "message": 4.0}


@pytest.mark.redis
def test_formula_led_cells_are_escaped_in_the_export_and_read_back_exactly_by_training(
    start_scorer: StartScorer, good_model: Built, redis_url: str
) -> None:
    attacks = [
        '=HYPERLINK("http://evil.example/","click")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "-2+3",
        "\tTAB-led",
        "'already quoted",
        "plain text",
    ]
    server = start_scorer(model=good_model.path, redis_url=redis_url)
    with server.client() as http:
        for i, text in enumerate(attacks):
            body = {"details": text, "source": text, "attributes": {"plan": text, "delta": -i}}
            lead_id = http.post("/v1/lead", json=body).json()["lead_id"]
            assert http.post("/v1/outcome", json={"lead_id": lead_id, "converted": True})
        export = http.get("/ops/export/outcomes.csv").text
    rows = list(csv.DictReader(io.StringIO(export)))
    for row in rows:
        for column in ("details", "source", "plan"):
            assert row[column][:1] not in set("=+-@\t\r"), row[column]
    assert sorted(int(row["delta"]) for row in rows) == [-i for i in range(len(attacks))][::-1]
    # The trainer's reader, over HTTP as `leadops train --input URL` reads it: lossless.
    table = outcomes_csv.read_table(f"{server.url}/ops/export/outcomes.csv", api_key=API_KEY)
    stored = {"details": attacks, "plan": attacks, "source": [a.strip() for a in attacks]}
    for column, values in stored.items():  # (a lead's source is stored stripped)
        assert sorted(table.columns[column]) == sorted(values)
