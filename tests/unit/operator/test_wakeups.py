"""Wake-ups: each LeadModel looked at again once, at the earliest time asked for."""

from __future__ import annotations

import threading

from leadops.operator.wakeups import Wakeups


def test_the_earliest_request_per_leadmodel_wins_and_each_fires_once() -> None:
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def call(namespace: str, name: str) -> None:
        seen.append((namespace, name))
        if len(seen) == 2:
            done.set()

    wake = Wakeups(call)
    wake.start()
    try:
        wake.after("ns", "a", 5.0)
        wake.after("ns", "a", 0.05)  # earlier: replaces the 5 s one
        wake.after("ns", "a", 1.0)  # later than the pending one: ignored
        wake.after("ns", "b", 0.1)
        assert done.wait(timeout=5)
        assert seen == [("ns", "a"), ("ns", "b")]
        assert wake.pending() == 0
    finally:
        wake.stop()


def test_a_failing_call_does_not_stop_the_others() -> None:
    got = threading.Event()

    def call(namespace: str, name: str) -> None:
        if name == "bad":
            raise RuntimeError("apiserver down")
        got.set()

    wake = Wakeups(call)
    wake.start()
    try:
        wake.after("ns", "bad", 0.0)
        wake.after("ns", "good", 0.05)
        assert got.wait(timeout=5)
    finally:
        wake.stop()


def test_stop_drops_what_is_pending() -> None:
    wake = Wakeups(lambda namespace, name: None)
    wake.start()
    wake.after("ns", "a", 60)
    wake.stop()
    assert wake.pending() == 0
