"""Which models shadow-score an arm's leads (RunningExperiment.shadow_plan): worked out once
per arm and serving model, and following the serving model when a reload replaces it."""

from __future__ import annotations

from leadops.scorer import guardrails, metrics, variants
from leadops.scorer.experiment import Experiment
from leadops.scorer.model import load_serving_model
from leadops.scorer.settings import Settings, VariantModelFile
from tests.fixtures.artifacts import Built


def test_an_arms_shadow_plan_follows_the_serving_model(
    good_model: Built, other_model: Built
) -> None:
    version = str(other_model.version)
    experiment = Experiment.model_validate(
        {
            "name": "trial",
            "variants": [
                {"name": "control", "weight": 50},
                {"name": "b", "weight": 50, "modelVersion": version},
            ],
        }
    )
    settings = Settings(
        model_path=good_model.path,
        experiment=experiment,
        variant_models={version: VariantModelFile(path=other_model.path)},
    )
    running = variants.load(
        settings, verify_keys=None, m=metrics.Metrics(), sink=guardrails.MemorySink()
    )
    assert isinstance(running, variants.RunningExperiment)
    challenger = running.models[version]
    arms = {arm.variant.name: arm for arm in running.arms}
    serving, reloaded = load_serving_model(good_model.path), load_serving_model(good_model.path)

    control = running.shadow_plan(arms["control"], serving)
    assert control.served is serving
    assert control.others == ((challenger, ("shadow_b",)),)
    assert control.keeps_cells  # the challenger was trained on other leads: another spec
    b = running.shadow_plan(arms["b"], serving)
    assert b.served is challenger
    assert [(model is serving, fields) for model, fields in b.others] == [
        (True, ("shadow_control",))
    ]
    assert running.shadow_plan(arms["b"], serving) is b  # once per arm and serving model

    after_reload = running.shadow_plan(arms["b"], reloaded)
    assert [model is reloaded for model, _ in after_reload.others] == [True]
    assert running.shadow_plan(arms["control"], reloaded).served is reloaded
