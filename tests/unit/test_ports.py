"""free_port: ports the kernel does not give to outgoing connections, never the same one twice."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from tests.fixtures import ports
from tests.fixtures.ports import free_port


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    given = [free_port() for _ in range(200)]
    assert len(set(given)) == len(given)
    assert not [p for p in given if low <= p <= high]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", given[-1]))  # still free: nothing was left bound to it


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        for port in range(*ports._RANGE):  # a port of the range, bound without free_port
            try:
                busy.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        busy.listen()
        used = busy.getsockname()[1]
        spare = next(p for p in range(used + 1, ports._RANGE[1]) if p not in ports._given)
        chosen = iter([used, used, spare])  # what the random choice offers, in turn
        monkeypatch.setattr(random, "randint", lambda *_: next(chosen))
        assert free_port() == spare
