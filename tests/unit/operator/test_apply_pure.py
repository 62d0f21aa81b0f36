"""apply's pure helpers: when a live object already matches, and what a patch removes."""

from __future__ import annotations

from leadops.operator import apply, builders, registry

from .test_builders import FULL, OWNER, ROLLOUT


def test_contains_ignores_server_defaults_and_user_additions() -> None:
    desired = builders.scorer_service(OWNER)
    live = {
        **desired,
        "metadata": {
            **desired["metadata"],
            "labels": {**desired["metadata"]["labels"], "team": "x"},
        },
        "spec": {**desired["spec"], "clusterIP": "10.0.0.1", "sessionAffinity": "None"},
        "status": {},
    }
    assert apply.contains(desired, live)
    changed = {**live, "spec": {**live["spec"], "ports": [{"name": "http", "port": 9999}]}}
    assert not apply.contains(desired, changed)
    assert apply.contains({"env": [], "x": {}}, {})  # omitempty on the server side
    assert not apply.contains({"env": [{"name": "A"}]}, {})


def test_rolling_back_to_no_model_removes_the_unpack_init_container() -> None:
    serving = builders.scorer_deployment(OWNER, FULL, ROLLOUT)
    empty = builders.scorer_deployment(OWNER, FULL, builders.Rollout())
    patch = apply._with_removals(empty, serving)
    assert patch["spec"]["template"]["spec"]["initContainers"] is None
    # The version the scorer no longer serves is removed from every place it was recorded.
    assert patch["metadata"]["annotations"][registry.MODEL_VERSION] is None
    assert patch["spec"]["template"]["metadata"]["annotations"][registry.MODEL_VERSION] is None
    assert patch["spec"]["template"]["metadata"]["labels"]["leadops.io/model-version"] is None
    assert empty["metadata"].get("annotations") is None  # the builder's output is untouched
    assert "kind" not in patch
    # Nothing to remove: no explicit nulls.
    again = apply._with_removals(serving, serving)
    assert "initContainers" in again["spec"]["template"]["spec"]
    assert None not in again["spec"]["template"]["spec"].values()
