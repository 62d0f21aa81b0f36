"""The running experiment's models: loaded through the serving gates, or the experiment stops.

Every model a variant names (`modelVersion`) is loaded with `load_configured`, the path the
serving model takes (digest, signature, AUC floor, compiled-tree parity), before any lead is
bucketed. One that fails makes the experiment `Invalid`: no lead is bucketed and the serving
model answers every lead, as without an experiment. Variants without a model version are served
by the serving model of the moment (a reload changes it for them too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Counter

from leadops.contract import artifact as contract_artifact
from leadops.contract import bucketing
from leadops.scorer import guardrails, metrics, schemas, shadow
from leadops.scorer.experiment import Experiment, Variant
from leadops.scorer.model import ModelRejected, ServingModel, load_configured
from leadops.scorer.settings import Settings

logger = logging.getLogger(__name__)

SHADOW_PREFIX = "shadow_"


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant as a lead meets it, built once: the answer's part and its metric series."""

    variant: Variant
    answer: schemas.ExperimentAnswer
    # Its leads, scores and answer times (leadops_experiment_leads_total, _score,
    # _answer_duration_seconds; GET /ops/experiment's live counts).
    counts: metrics.VariantCounts
    failures: Counter  # leadops_experiment_scoring_failures_total
    tally: guardrails.Tally  # answers and failures, summed over replicas for the guardrails
    # The record's shadow score fields of the variants this arm's model serves (its answer's
    # score), and of every other model: (its modelVersion, "" for the serving model; fields).
    shadow_fields: tuple[str, ...]
    peers: tuple[tuple[str, tuple[str, ...]], ...]

    def answered(self, seconds: float) -> None:
        self.counts.answered(seconds)
        self.tally.answered(seconds)

    def failed(self) -> None:
        self.failures.inc()
        self.tally.failed()


@dataclass(frozen=True, slots=True)
class ShadowPlan:
    """An arm's answering model, the other models that score its leads with their record's
    batch (each with the record fields of the variants it serves), and whether its leads keep
    their row's cells for those models (another feature spec)."""

    served: ServingModel
    others: tuple[tuple[ServingModel, tuple[str, ...]], ...]
    keeps_cells: bool


class _ShadowPlans:
    """The shadow plan of each arm (by id) for one serving model."""

    __slots__ = ("by_arm", "serving")

    def __init__(self) -> None:
        self.serving: ServingModel | None = None
        self.by_arm: dict[int, ShadowPlan] = {}


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    """An experiment whose every variant model passed the gates."""

    experiment: Experiment
    models: Mapping[str, ServingModel]  # model version -> its loaded model
    # The arm of each of the 100 buckets: assigning a lead is one hash and one index.
    arms: tuple[Arm, ...]
    guardrails: guardrails.GuardrailCounts

    # Each arm's shadow plan for the serving model of the moment (see `shadow_plan`).
    _plans: _ShadowPlans = field(
        default_factory=_ShadowPlans, init=False, repr=False, compare=False
    )

    def model_of(self, variant: Variant, serving: ServingModel) -> ServingModel:
        return self.models[variant.model_version] if variant.model_version else serving

    def arm(self, unit_id: str) -> Arm:
        return self.arms[bucketing.bucket(self.experiment.name, unit_id)]

    def shadow_plan(self, arm: Arm, serving: ServingModel) -> ShadowPlan:
        """Which models shadow-score the leads of `arm` (the other variants'), and whether its
        leads keep their row's cells for them: worked out once per arm and serving model, not
        once a lead (a variant without a model version is served by the serving model, which a
        reload replaces)."""
        plans = self._plans
        if plans.serving is not serving:
            plans.serving, plans.by_arm = serving, {}
        plan = plans.by_arm.get(id(arm))  # the arms live as long as this experiment
        if plan is None:
            served = self.model_of(arm.variant, serving)
            others = tuple(
                (self.models[version] if version else serving, fields)
                for version, fields in arm.peers
            )
            plan = plans.by_arm[id(arm)] = ShadowPlan(
                served=served,
                others=others,
                keeps_cells=shadow.needs_cells(served, (model for model, _ in others)),
            )
        return plan


def _arms(
    exp: Experiment, m: metrics.Metrics, counts: guardrails.GuardrailCounts
) -> tuple[Arm, ...]:
    """Each bucket's arm (metric labels only from the configured variants)."""
    by_name = {
        v.name: Arm(
            variant=v,
            answer=schemas.ExperimentAnswer(name=exp.name, variant=v.name, flags=dict(v.flags)),
            counts=m.variant(exp.name, v.name),
            failures=m.experiment_failures.labels(exp.name, v.name),
            tally=counts.tallies[v.name],
            shadow_fields=_shadow_fields(exp, v.model_version),
            peers=tuple(
                (version, _shadow_fields(exp, version))
                for version in dict.fromkeys(u.model_version for u in exp.variants)
                if version != v.model_version
            ),
        )
        for v in exp.variants
    }
    return tuple(by_name[exp.assign_bucket(point).name] for point in range(bucketing.BUCKETS))


def _shadow_fields(exp: Experiment, model_version: str) -> tuple[str, ...]:
    """The record's shadow score fields of the variants served by `model_version` ("": the
    serving model): one model, one score for them all."""
    return tuple(SHADOW_PREFIX + v.name for v in exp.variants if v.model_version == model_version)


@dataclass(frozen=True, slots=True)
class ConcludedExperiment:
    """An experiment with a winner: every lead is answered with the winner's flags (the answer
    part built once); nothing is bucketed, no variant model is loaded."""

    experiment: Experiment
    answer: schemas.ExperimentAnswer


@dataclass(frozen=True, slots=True)
class InvalidExperiment:
    """An experiment that does not run: a variant model failed the gates (reason, message)."""

    experiment: Experiment
    reason: str
    message: str


def load(
    settings: Settings,
    *,
    verify_keys: contract_artifact.VerifyKeys | None,
    m: metrics.Metrics,
    sink: guardrails.Sink,
) -> RunningExperiment | ConcludedExperiment | InvalidExperiment | None:
    """The configured experiment with its variant models loaded; None when none is set.
    `sink`: where the guardrail counts of every replica add up."""
    experiment = settings.experiment
    if experiment is None:
        return None
    winner = experiment.winning_variant()
    if winner is not None:
        answer = schemas.ExperimentAnswer(
            name=experiment.name, variant=winner.name, flags=dict(winner.flags)
        )
        logger.info("Experiment %s concluded: serving variant %s", experiment.name, winner.name)
        return ConcludedExperiment(experiment=experiment, answer=answer)
    models: dict[str, ServingModel] = {}
    for version in experiment.model_versions():
        where = settings.variant_models[version]  # Settings refuses a version without a file
        try:
            model = load_configured(
                where.path,
                settings,
                min_auc=settings.auc_critical,
                verify_keys=verify_keys,
                expect_digest=where.digest,
            )
        except ModelRejected as exc:
            return _invalid(experiment, version, exc.reason, exc.error)
        if str(model.version) != version:
            return _invalid(
                experiment,
                version,
                "VersionMismatch",
                f"the file holds model version {model.version}",
            )
        models[version] = model
    counts = guardrails.GuardrailCounts(
        experiment.name, [v.name for v in experiment.variants], sink
    )
    return RunningExperiment(
        experiment=experiment,
        models=models,
        arms=_arms(experiment, m, counts),
        guardrails=counts,
    )


def _invalid(experiment: Experiment, version: str, reason: str, error: str) -> InvalidExperiment:
    message = f"variant model {version} refused ({reason}: {error}); the serving model answers"
    logger.error("Experiment %s not started: %s", experiment.name, message)
    return InvalidExperiment(experiment=experiment, reason=reason, message=message)
