"""An API request the server holds fails once, after the caller's timeout, with no re-sends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadops.operator import kube


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback listener that accepts connections and never answers (an API server that lost
    etcd holds requests like this); the accepted sockets, to count the attempts."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_held_get_fails_once_after_the_timeout(
    silent_server: tuple[int, list[socket.socket]], tmp_path: Path
) -> None:
    port, accepted = silent_server
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    api = kube.Kube(kube.load_api_client(kubeconfig=str(kubeconfig)), timeout=0.5)
    with pytest.raises(kube.KubeError) as raised:
        api.get("LeadModel", "ns", "lm")
    assert raised.value.status == 0
    assert raised.value.transient
    assert "API unreachable" in str(raised.value)
    # One connection, one request: urllib3's default would have sent the GET four times.
    assert len(accepted) == 1
