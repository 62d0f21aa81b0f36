"""What the operator starts with, and which LeadModel events wake a pass.

The resync period and the selector come from the environment the operator starts with
(kopf's startup), not the one `handlers` was imported in: a test run imports the module long
before an operator starts in it, and a resync fixed at import (60 s) kept a guard's verdict
waiting a minute."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
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


@pytest.fixture
def start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], kopf.OperatorSettings]]:
    """kopf's startup activity as `leadops operator` runs it (the API is not reached)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(handlers, "_state", {})
    monkeypatch.setattr(handlers, "_started", {})
    # kopf's decorators type these as activities, called with everything kopf passes.
    configure, stop_wakeups = cast(Any, handlers.configure), cast(Any, handlers.stop_wakeups)
    started: list[kopf.OperatorSettings] = []

    def run() -> kopf.OperatorSettings:
        settings = kopf.OperatorSettings()
        configure(settings=settings)
        started.append(settings)
        return settings

    yield run
    if started:
        stop_wakeups()


def test_the_resync_and_the_selector_are_read_when_the_operator_starts(
    start: Callable[[], kopf.OperatorSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", "7")
    monkeypatch.setenv("LEADOPS_SELECTOR", "team=north")
    start()
    # Changed after the start: this operator keeps what it started with.
    monkeypatch.setenv("LEADOPS_RESYNC_SECONDS", "9")
    monkeypatch.setenv("LEADOPS_SELECTOR", "team=south")
    assert handlers._resync_seconds() == 7.0
    assert handlers.in_shard({"team": "north"})
    assert not handlers.in_shard({"team": "south"})


def _leadmodel(generation: int, *, labels: dict[str, str], status: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "lm",
            "uid": "first",
            "generation": generation,
            "labels": labels,
            "annotations": {"leadops.io/approve": "3"},
        },
        "spec": {},
        "status": {"phase": status},
    }


def test_a_leadmodel_event_reconciles_only_what_a_pass_decides_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spec (generation), labels and annotations wake a pass; the operator's own status write
    does not; the start's listing (type None) reconciles each LeadModel once."""
    passes: list[int] = []
    monkeypatch.setattr(
        handlers, "_run", lambda body: passes.append(body["metadata"]["generation"])
    )
    monkeypatch.setattr(handlers, "_handled", {})
    monkeypatch.setattr(handlers, "in_shard", lambda labels=None, **_: True)
    on_leadmodel = cast(Any, handlers.on_leadmodel)

    on_leadmodel(type=None, body=_leadmodel(1, labels={}))  # listed at the start
    on_leadmodel(type="MODIFIED", body=_leadmodel(1, labels={}, status="Ready"))  # our status
    assert passes == [1]
    on_leadmodel(type="MODIFIED", body=_leadmodel(2, labels={}))  # spec changed
    on_leadmodel(type="MODIFIED", body=_leadmodel(2, labels={"shard": "a"}))  # labels changed
    on_leadmodel(type="MODIFIED", body=_leadmodel(2, labels={"shard": "a"}, status="x"))
    assert passes == [1, 2, 2]
    approved = _leadmodel(2, labels={"shard": "a"})
    approved["metadata"]["annotations"]["leadops.io/approve"] = "4"
    on_leadmodel(type="MODIFIED", body=approved)
    assert passes == [1, 2, 2, 2]
    # Deleted and made again while the watch was down: the start of a new watch lists it.
    again = copy.deepcopy(approved)
    again["metadata"].update(uid="second", generation=2)
    on_leadmodel(type=None, body=again)
    assert passes == [1, 2, 2, 2, 2]


def test_the_operator_watches_only_its_own_deployments_and_replicasets(
    start: Callable[[], kopf.OperatorSettings],
) -> None:
    settings = start()
    ours = "app.kubernetes.io/managed-by=leadops"
    for plural, kind in [("deployments", "Deployment"), ("replicasets", "ReplicaSet")]:
        resource = kopf.Resource("apps", "v1", plural, kind=kind)
        assert settings.watching.label_selectors.collect(resource) == [ours]
    # Not the LeadModels: one that leaves a shard would look deleted (its bucket emptied).
    leadmodels = kopf.Resource("leadops.io", "v1alpha1", "leadmodels", kind="LeadModel")
    configmaps = kopf.Resource("", "v1", "configmaps", kind="ConfigMap")  # templates: any
    for resource in (leadmodels, configmaps):
        assert settings.watching.label_selectors.collect(resource) == []
