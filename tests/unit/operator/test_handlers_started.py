"""The resync period and the selector come from the environment the operator starts with
(kopf's startup), not the one `handlers` was imported in: a test run imports the module long
before an operator starts in it, and a resync fixed at import (60 s) kept a guard's verdict
waiting a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from leadops.operator import handlers

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: local, user: {token: unused}}]
contexts: [{name: local, context: {cluster: local, user: local}}]
current-context: local
"""


def test_the_resync_and_the_selector_are_read_when_the_operator_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(handlers, "_state", {})
    monkeypatch.setattr(handlers, "_started", {})
    monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", "7")
    monkeypatch.setenv("LEADOPS_SELECTOR", "team=north")
    # kopf's decorators type these as activities, called with everything kopf passes.
    configure, stop_wakeups = cast(Any, handlers.configure), cast(Any, handlers.stop_wakeups)
    configure(settings=kopf.OperatorSettings())
    try:
        # Changed after the start: this operator keeps what it started with.
        monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", "9")
        monkeypatch.setenv("LEADOPS_SELECTOR", "team=south")
        assert handlers._resync_seconds() == 7.0
        assert handlers.in_shard({"team": "north"})
        assert not handlers.in_shard({"team": "south"})
    finally:
        stop_wakeups()
