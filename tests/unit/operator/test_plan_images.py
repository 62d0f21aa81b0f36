"""The scorer image moves with rollouts and rollbacks: a rollback returns to the image the
previous version served on, and an image it undid is refused while the spec names it. The
Jobs run the jobs image, never the serving one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from leadops.operator import builders, reasons, registry
from leadops.operator.actions import (
    EmitEvent,
    EnsureCronJob,
    EnsureDeployment,
    MarkVersion,
    Plan,
    RollBack,
    RollOut,
)
from leadops.operator.plan import plan
from leadops.operator.rollout import RolloutState, rollout_state

from .worlds import NOW, V1, V2, deployed, entry, spec, world

GOOD = "docker.io/leadops/scorer:0.1.0"
BAD = "docker.io/leadops/scorer:0.0.0-missing"
NEXT = "docker.io/leadops/scorer:0.2.0"
ROLLED = "2026-11-26T11:00:00Z"


def lm(image: str) -> Any:
    return spec(scorer={"image": image})


def on(
    state: RolloutState, image: str, *, previous_image: str = "", rolled_back_image: str = ""
) -> RolloutState:
    return replace(
        state, image=image, previous_image=previous_image, rolled_back_image=rolled_back_image
    )


def images(manifest: dict[str, Any]) -> set[str]:
    pod = manifest["spec"]["template"]["spec"]
    return {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}


def condition(p: Plan, type_: str) -> tuple[str, str]:
    c = next(c for c in p.conditions if c.type == type_)
    return c.status, c.reason


def test_a_new_image_under_a_serving_version_is_a_rollout_of_its_own() -> None:
    obs = world(entry(V1, promoted=ROLLED), deployment=on(deployed(V1), GOOD))
    p = plan(lm(NEXT), obs, NOW)
    (roll,) = p.of(RollOut)
    assert (roll.version, roll.previous) == (V1, V1)
    assert images(dict(roll.manifest)) == {NEXT}
    ann = roll.manifest["metadata"]["annotations"]
    assert ann[builders.ANN_PREVIOUS_IMAGE] == GOOD
    assert ann[builders.ANN_ROLLOUT_KIND] == builders.ROLLOUT_FORWARD
    assert not p.of(MarkVersion), "the registry's history is about versions, not images"
    assert not p.of(EnsureDeployment), "the Deployment moves by the RollOut alone"
    (event,) = [e for e in p.of(EmitEvent) if e.reason == reasons.IMAGE_ROLLOUT]
    assert f"Rolling out image {NEXT}" in event.message
    assert condition(p, reasons.ROLLED_OUT) == ("False", reasons.ROLLOUT_IN_PROGRESS)


def test_after_an_image_rollout_the_previous_version_is_still_the_one_served_before() -> None:
    """What `leadops rollback` returns to, and what registry GC keeps."""
    image_moved = on(deployed(V2, previous=V2), NEXT, previous_image=GOOD)
    obs = world(
        entry(V1, promoted="2026-11-25T10:00:00Z"),
        entry(V2, promoted=ROLLED),
        deployment=image_moved,
    )
    assert plan(lm(NEXT), obs, NOW).status.previous_version == str(V1)
    alone = world(entry(V2, promoted=ROLLED), deployment=image_moved)
    assert plan(lm(NEXT), alone, NOW).status.previous_version == ""


def test_a_failed_image_rollout_returns_to_the_old_image_and_leaves_the_version_alone() -> None:
    stuck = on(deployed(V1, previous=V1, deadline=True), BAD, previous_image=GOOD)
    p = plan(lm(BAD), world(entry(V1, promoted=ROLLED), deployment=stuck), NOW)
    (back,) = p.of(RollBack)
    assert (back.version, back.failed) == (V1, V1)
    assert images(dict(back.manifest)) == {GOOD}
    ann = back.manifest["metadata"]["annotations"]
    assert ann[builders.ANN_ROLLOUT_KIND] == builders.ROLLOUT_BACK
    assert ann[builders.ANN_ROLLED_BACK_IMAGE] == BAD
    assert ann[builders.ANN_PREVIOUS_IMAGE] == BAD
    assert not p.of(MarkVersion), "the model version did not fail: it is not rolled back"
    (warning,) = [e for e in p.of(EmitEvent) if e.type == "Warning"]
    assert warning.reason == reasons.PROGRESS_DEADLINE_EXCEEDED
    assert f"from image {BAD} to {GOOD}" in warning.message
    assert p.status.serving_version == str(V1)
    # What every later pass says too (no flapping between reasons).
    assert condition(p, reasons.DEGRADED) == ("True", reasons.ROLLED_BACK)


def test_a_failed_model_rollout_with_a_new_image_restores_both() -> None:
    """The bug: the rollback restored the model version but kept the new (bad) image."""
    stuck = on(deployed(V2, previous=V1, deadline=True), BAD, previous_image=GOOD)
    p = plan(lm(BAD), world(entry(V1), entry(V2), deployment=stuck), NOW)
    (back,) = p.of(RollBack)
    assert back.version == V1
    assert images(dict(back.manifest)) == {GOOD}
    template = back.manifest["spec"]["template"]
    assert template["metadata"]["annotations"][registry.MODEL_VERSION] == str(V1)
    (mark,) = p.of(MarkVersion)
    assert mark.name == registry.configmap_name("lm", V2)
    (warning,) = [e for e in p.of(EmitEvent) if e.type == "Warning"]
    assert f"from version {V2} to {V1} and image {BAD} to {GOOD}" in warning.message


def test_a_failed_model_rollout_on_the_same_image_keeps_that_image() -> None:
    stuck = on(deployed(V2, previous=V1, deadline=True), GOOD, previous_image=GOOD)
    p = plan(lm(GOOD), world(entry(V1), entry(V2), deployment=stuck), NOW)
    (back,) = p.of(RollBack)
    assert images(dict(back.manifest)) == {GOOD}
    assert builders.ANN_ROLLED_BACK_IMAGE not in back.manifest["metadata"]["annotations"]


def _after_image_rollback() -> RolloutState:
    return on(
        deployed(V1, previous=V1, kind=builders.ROLLOUT_BACK),
        GOOD,
        previous_image=BAD,
        rolled_back_image=BAD,
    )


def test_the_rolled_back_image_is_refused_while_the_spec_names_it() -> None:
    p = plan(lm(BAD), world(entry(V1, promoted=ROLLED), deployment=_after_image_rollback()), NOW)
    assert not p.of(RollOut)
    assert not p.of(RollBack)
    (deploy,) = p.of(EnsureDeployment)
    assert images(dict(deploy.manifest)) == {GOOD}
    assert deploy.manifest["metadata"]["annotations"][builders.ANN_ROLLED_BACK_IMAGE] == BAD
    assert condition(p, reasons.DEGRADED) == ("True", reasons.ROLLED_BACK)
    assert condition(p, reasons.ROLLED_OUT) == ("False", reasons.ROLLED_BACK)
    assert condition(p, reasons.READY) == ("True", reasons.SERVING)


def test_naming_the_serving_image_again_clears_the_rollback() -> None:
    p = plan(lm(GOOD), world(entry(V1, promoted=ROLLED), deployment=_after_image_rollback()), NOW)
    assert not p.of(RollOut)
    (deploy,) = p.of(EnsureDeployment)
    assert images(dict(deploy.manifest)) == {GOOD}
    assert builders.ANN_ROLLED_BACK_IMAGE not in deploy.manifest["metadata"]["annotations"]
    assert condition(p, reasons.DEGRADED) == ("False", reasons.AS_EXPECTED)
    assert condition(p, reasons.ROLLED_OUT) == ("True", reasons.ROLLOUT_COMPLETE)


def test_a_third_image_after_a_rollback_rolls_out() -> None:
    p = plan(lm(NEXT), world(entry(V1, promoted=ROLLED), deployment=_after_image_rollback()), NOW)
    (roll,) = p.of(RollOut)
    assert images(dict(roll.manifest)) == {NEXT}
    assert builders.ANN_ROLLED_BACK_IMAGE not in roll.manifest["metadata"]["annotations"]


def test_a_new_version_while_an_image_is_refused_rolls_out_on_the_serving_image() -> None:
    obs = world(entry(V1, promoted=ROLLED), entry(V2), deployment=_after_image_rollback())
    (roll,) = plan(lm(BAD), obs, NOW).of(RollOut)
    assert roll.version == V2
    assert images(dict(roll.manifest)) == {GOOD}
    assert roll.manifest["metadata"]["annotations"][builders.ANN_ROLLED_BACK_IMAGE] == BAD


def test_an_image_change_waits_for_the_rollout_in_flight() -> None:
    moving = on(deployed(V2, previous=V1, complete=False), GOOD, previous_image=GOOD)
    p = plan(lm(NEXT), world(entry(V1), entry(V2), deployment=moving), NOW)
    assert not p.of(RollOut)
    (deploy,) = p.of(EnsureDeployment)
    assert images(dict(deploy.manifest)) == {GOOD}


def test_without_a_model_the_image_is_changed_in_place() -> None:
    p = plan(lm(NEXT), world(deployment=on(deployed(None), GOOD)), NOW)
    assert not p.of(RollOut)
    (deploy,) = p.of(EnsureDeployment)
    assert images(dict(deploy.manifest)) == {NEXT}


def test_the_deployment_records_what_rollout_state_reads_back() -> None:
    owner = builders.Owner(name="lm", namespace="ns", uid="uid-1")
    rollout = builders.Rollout(
        version=V1,
        previous=V1,
        kind=builders.ROLLOUT_BACK,
        digest="sha256:" + "0" * 64,
        previous_digest="sha256:" + "0" * 64,
        image=GOOD,
        previous_image=BAD,
        rolled_back_image=BAD,
    )
    state = rollout_state(builders.scorer_deployment(owner, lm(BAD), rollout))
    assert (state.image, state.previous_image, state.rolled_back_image) == (GOOD, BAD, BAD)
    assert (state.version, state.previous, state.kind) == (V1, V1, builders.ROLLOUT_BACK)


def _job_images(p: Plan) -> dict[str, str]:
    return {
        c.name: c.manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        for c in p.of(EnsureCronJob)
    }


def test_the_jobs_run_the_jobs_image_never_the_serving_one() -> None:
    p = plan(lm(GOOD), world(), NOW)
    assert _job_images(p) == {
        "lm-train": "docker.io/leadops/jobs:0.1.0",
        "lm-pii-backfill": "docker.io/leadops/jobs:0.1.0",
    }
    configured = replace(world(), jobs_image="registry.example/tools:7")
    assert set(_job_images(plan(lm(GOOD), configured, NOW)).values()) == {
        "registry.example/tools:7"
    }
    named = spec(scorer={"image": GOOD}, training={"image": "docker.io/leadops/trainer:1"})
    assert _job_images(plan(named, configured, NOW))["lm-train"] == "docker.io/leadops/trainer:1"
