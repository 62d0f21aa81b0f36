"""apply's pure helpers: when a live object already matches, and what a patch removes."""

from __future__ import annotations

from dataclasses import replace

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


class _Recorder:
    """Just enough of Kube for `ensure`: what it would create or patch."""

    def __init__(self) -> None:
        self.patches: list[dict[str, object]] = []

    def patch(
        self, kind: str, namespace: str, name: str, body: dict[str, object], **_: object
    ) -> None:
        self.patches.append(body)


def test_an_annotation_no_longer_wanted_is_removed_even_when_nothing_else_changed() -> None:
    refusing = replace(ROLLOUT, rolled_back_image="x/scorer:bad")
    live = builders.scorer_deployment(OWNER, FULL, refusing)
    wanted = builders.scorer_deployment(OWNER, FULL, ROLLOUT)
    assert apply.contains(wanted, live), "every wanted field is already there"
    kube = _Recorder()
    assert apply.ensure(kube, wanted, live, uid=OWNER.uid) == "patched"  # type: ignore[arg-type]
    (body,) = kube.patches
    assert body["metadata"]["annotations"][builders.ANN_ROLLED_BACK_IMAGE] is None  # type: ignore[index]
    assert apply.ensure(kube, wanted, wanted, uid=OWNER.uid) == "unchanged"  # type: ignore[arg-type]


def test_the_next_promotion_removes_the_promotion_an_image_rollout_carried() -> None:
    """Left behind, a carried promotion would point the matured-AUC guard of the next
    promotion at the old one's previous version."""
    carried = builders.Promotion(previous=1, previous_digest="sha256:" + "1" * 64, since="t")
    image_rolled = replace(ROLLOUT, carried_promotion=carried)
    live = builders.scorer_deployment(OWNER, FULL, image_rolled)
    assert live["metadata"]["annotations"][builders.ANN_GUARDED_PREVIOUS] == "1"
    patch = apply._with_removals(builders.scorer_deployment(OWNER, FULL, ROLLOUT), live)
    for key in (
        builders.ANN_GUARDED_PREVIOUS,
        builders.ANN_GUARDED_DIGEST,
        builders.ANN_GUARDED_SINCE,
    ):
        assert patch["metadata"]["annotations"][key] is None
