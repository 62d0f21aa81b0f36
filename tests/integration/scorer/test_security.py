"""/ops keys, body limits and docs over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.artifacts import Built
from tests.fixtures.scorer import API_KEY, StartScorer

OPS_ROUTES = [
    ("GET", "/ops/model-status"),
    ("GET", "/ops/model-card"),
    ("GET", "/ops/export/outcomes.csv"),
    ("POST", "/ops/reload-model"),
]


@pytest.mark.parametrize(("method", "path"), OPS_ROUTES)
def test_every_ops_route_needs_a_valid_key(
    start_scorer: StartScorer, good_model: Built, method: str, path: str
) -> None:
    server = start_scorer(model=good_model.path)
    with server.client(api_key=None) as http:
        assert http.request(method, path).status_code == 401
        assert http.request(method, path, headers={"x-api-key": "wrong"}).status_code == 401
        assert http.request(method, path, headers={"x-api-key": API_KEY}).status_code == 200
        assert http.request(method, path, params={"api_key": API_KEY}).status_code == 200


def test_rotation_keys_from_env_and_file_and_never_logged(
    start_scorer: StartScorer, good_model: Built, tmp_path: Path
) -> None:
    keys_file = tmp_path / "api-keys"
    keys_file.write_text("file-key-aaaaaaaaaaaa\n")
    server = start_scorer(
        model=good_model.path,
        api_keys="env-old-key-111111,env-new-key-222222",
        api_keys_file=str(keys_file),
    )
    with server.client(api_key=None) as http:
        for key in ("env-old-key-111111", "env-new-key-222222", "file-key-aaaaaaaaaaaa"):
            assert http.get("/ops/model-status", headers={"x-api-key": key}).status_code == 200
        # The header is preferred: a bad header is not rescued by a good query key.
        both = http.get(
            "/ops/model-status",
            headers={"x-api-key": "nope"},
            params={"api_key": "env-new-key-222222"},
        )
        assert both.status_code == 401
        denied = http.get("/ops/model-status", params={"api_key": "guess-guess-guess"})
        assert denied.status_code == 401
        assert "guess-guess-guess" not in denied.text
        keys_file.write_text("file-key-rotated-bbbbbb\n")
        rotated = {"x-api-key": "file-key-rotated-bbbbbb"}
        assert http.get("/ops/model-status", headers=rotated).status_code == 200
        old = {"x-api-key": "file-key-aaaaaaaaaaaa"}
        assert http.get("/ops/model-status", headers=old).status_code == 401
    log = server.log()
    for key in ("env-old-key", "env-new-key", "file-key", "guess-guess"):
        assert key not in log


def test_no_key_configured_is_503_unless_dev_mode(
    start_scorer: StartScorer, good_model: Built
) -> None:
    locked = start_scorer(model=good_model.path, api_keys=None)
    with locked.client(api_key="anything") as http:
        answer = http.get("/ops/model-status")
        assert answer.status_code == 503
        assert answer.json()["detail"] == "no API key configured"
        # Scoring is not an /ops route: it works without keys.
        assert http.post("/v1/lead", json={"details": "hi"}).status_code == 200
    open_dev = start_scorer(model=good_model.path, api_keys=None, dev_open_ops="true")
    with open_dev.client(api_key=None) as http:
        assert http.get("/ops/model-status").status_code == 200
    assert "/ops is OPEN" in open_dev.log()


def _raw_request(port: int, head: bytes, chunks: Iterator[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered 413 and closed before we finished: that is the point
        return sock.recv(65536)


def test_body_size_limit_by_header_and_by_counted_bytes(
    start_scorer: StartScorer, good_model: Built
) -> None:
    server = start_scorer(model=good_model.path, max_body_bytes="2048")
    with server.client() as http:
        big = http.post("/v1/lead", json={"details": "x" * 5000})
        assert big.status_code == 413
        assert "2048" in big.json()["detail"]
        assert http.post("/v1/lead", json={"details": "x" * 1500}).status_code == 200
    # Chunked upload with no Content-Length: the limit counts bytes as they arrive.
    head = (
        b"POST /v1/lead HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    payload = b'{"details": "' + b"y" * 6000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 1000):
            part = payload[start : start + 1000]
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
        yield b"0\r\n\r\n"

    answer = _raw_request(server.port, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_openapi_docs_are_off_unless_enabled(start_scorer: StartScorer, good_model: Built) -> None:
    default = start_scorer(model=good_model.path)
    with default.client() as http:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert http.get(path).status_code == 404
    with_docs = start_scorer(model=good_model.path, docs="true")
    with with_docs.client() as http:
        schema = http.get("/openapi.json").json()
    assert "/v1/lead" in schema["paths"]
    assert "/ops/reload-model" in schema["paths"]


def test_health_and_metrics_need_no_key(start_scorer: StartScorer, good_model: Built) -> None:
    server = start_scorer(model=good_model.path)
    plain = httpx.Client(base_url=server.url)
    with plain:
        assert plain.get("/health").json() == {"status": "ok"}
        assert plain.get("/ready").status_code == 200
        assert "lead_model_auc" in plain.get("/metrics").text
