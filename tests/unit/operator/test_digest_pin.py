"""The planner pins what the scorer serves to the digest the operator validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from leadops.operator import actions, builders, plan
from leadops.operator.registry import Entry
from leadops.operator.rollout import rollout_state

from .worlds import NOW, V2, V3, deployed, entry, spec, world

D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _entry(version: int, digest: str) -> Entry:
    e = entry(version)
    assert e.facts is not None
    return replace(e, facts=replace(e.facts, digest=digest))


def _template_digest(manifest: Mapping[str, Any]) -> str:
    template = manifest["spec"]["template"]
    return str(template["metadata"]["annotations"][builders.ANN_DIGEST])


def test_a_rollout_carries_the_validated_digest_and_remembers_the_previous_one() -> None:
    running = replace(deployed(V2), digest=D2)
    decided = plan.plan(spec(), world(_entry(V2, D2), _entry(V3, D3), deployment=running), NOW)
    (rollout,) = decided.of(actions.RollOut)
    assert rollout.version == V3
    assert _template_digest(rollout.manifest) == D3
    annotations = rollout.manifest["metadata"]["annotations"]
    assert annotations[builders.ANN_PREVIOUS_DIGEST] == D2
    # What the Deployment records is what the next pass reads back.
    state = rollout_state({**rollout.manifest, "status": {}})
    assert (state.digest, state.previous_digest) == (D3, D2)


def test_the_steady_deployment_keeps_its_digest_even_if_the_registry_changes() -> None:
    # The version's ConfigMap now holds other bytes (another digest): the template does not follow.
    running = replace(deployed(V3), digest=D3)
    swapped = _entry(V3, "sha256:" + "9" * 64)
    decided = plan.plan(spec(), world(swapped, deployment=running), NOW)
    assert not decided.of(actions.RollOut)
    (ensure,) = [a for a in decided.of(actions.Ensure) if a.kind == "Deployment"]
    assert _template_digest(ensure.manifest) == D3


def test_a_rollback_returns_to_the_previous_validated_digest() -> None:
    failing = replace(deployed(V3, previous=V2, deadline=True), digest=D3, previous_digest=D2)
    decided = plan.plan(spec(), world(_entry(V2, D2), _entry(V3, D3), deployment=failing), NOW)
    (back,) = decided.of(actions.RollBack)
    assert back.version == V2
    assert _template_digest(back.manifest) == D2
