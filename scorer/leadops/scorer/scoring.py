"""Scoring one lead: the code behind every POST /v1/lead answer.

Called by the plain route (routes.score) and by the ASGI fast path (fastpath): one scoring code,
whichever of the two answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from typing import NoReturn

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse

from leadops import pii
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, store
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState
from leadops.scorer.variants import SHADOW_PREFIX, Arm, ConcludedExperiment, RunningExperiment
from leadops.scorer.writer import Stored

logger = logging.getLogger(__name__)

SCORING_FAILED = "scoring failed"
NOT_STORED = (
    "lead not stored: the lead store is unavailable and nothing was recorded; "
    "retry after Retry-After seconds"
)
RETRY_AFTER_SECONDS = 1


class NotStored(Exception):
    """The lead's record is not stored (acknowledged/spooled durability): answer 503."""


def not_stored_response() -> JSONResponse:
    body = schemas.NotStoredBody(detail=NOT_STORED)
    return JSONResponse(
        body.model_dump(),
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class LeadIds:
    """Random 128-bit lead ids (32 hex digits) from os.urandom, read 4 KiB at a time.

    Ids must be unguessable (POST /v1/outcome takes one), so they come from the OS CSPRNG;
    one read per 256 leads instead of a uuid4 object and a syscall per lead.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at == len(self._hex):
            self._hex, at = os.urandom(16 * self.BATCH).hex(), 0
        self._at = at + 32
        return self._hex[at : at + 32]


_lead_ids = LeadIds()

# What an Idempotency-Key may hold: printable ASCII, as the IETF draft's examples (UUIDs).
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def keyed_lead_id(tenant: str, idempotency_key: str) -> str:
    """The lead id of a request sent with an Idempotency-Key: the same for every retry, so a
    retried lead is stored once. As unguessable as the key (callers send a random UUID)."""
    digest = hashlib.sha256(f"leadops-lead-id\0{tenant}\0{idempotency_key}".encode())
    return digest.hexdigest()[:32]


async def answer_lead(
    lead: Lead,
    state: ScorerState,
    model: ServingModel | None,
    *,
    idempotency_key: str | None = None,
) -> bytes:
    """Score the lead, queue its record for the store, and return the JSON answer: at once
    (bestEffort), or once the record is stored or spooled (the writer's durability).

    `model` None is cold start: the lead is stored unscored (`score` null) and its outcome
    counts for the first training all the same.
    Raises HTTPException 500 "scoring failed" when the model raises, NotStored when the
    durability requires the record stored and it is not.
    """
    started = time.perf_counter()
    lead = state.columns.admit(lead)  # the tenant's attribute column cap
    if idempotency_key is None:
        lead_id = _lead_ids.next()
    else:
        lead_id = keyed_lead_id(lead.tenant, idempotency_key)
    # Cold start (no model): no experiment either; the lead is stored unscored.
    configured = state.experiment
    running = configured if isinstance(configured, RunningExperiment) else None
    arm = None if running is None or model is None else _arm(lead, lead_id, running)
    served = model
    row = lead_to_row(lead, redact=pii.redact)
    score: float | None = None
    shadow: dict[str, float] = {}
    shadow_seconds = 0.0
    if model is not None:
        if arm is not None and running is not None:
            served = running.model_of(arm.variant, model)
        score, shadow, shadow_seconds = _score(
            state, model, row, running=running, arm=arm, started=started
        )
    else:
        state.metrics.leads_unscored.inc()

    # The record names its chat list by the hashed key, never by the chat_id (often an email).
    memory = store.memory_key(lead.tenant, lead.chat_id or lead_id)
    # Unscored (cold start): empty strings, as Redis HASH fields hold no null.
    record = row | {
        "score": repr(score) if score is not None else "",
        "model_version": str(served.version) if served is not None else "",
        "chat_key": memory,
    }
    # While the matured-AUC guard shadows: the previous version's score beside the serving one.
    shadowed = _previous_score(state, model, row, answered=score is not None and served is model)
    record |= shadowed
    experiment = None
    if arm is not None and score is not None:
        experiment = arm.answer
        record |= _bucketed(state, arm, score, shadow)
    elif score is not None and isinstance(configured, ConcludedExperiment):
        experiment = configured.answer  # the winner's flags, for every lead; nothing bucketed
    record_writer = state.writer
    batch = record_writer.submit(
        store.LeadWrite(
            lead_id=lead_id,
            record=record,
            columns=list(row),
            memory=memory,
            # `details` in the row is already redacted by the shared PII detector.
            message=row["details"] or None,
            keyed=idempotency_key is not None,
            experiment=experiment is not None and arm is not None,
            guarded=bool(shadowed),
        )
    )
    stored: Stored = False
    if record_writer.waits:
        if batch is None:
            raise NotStored  # the write queue is full
        await batch.done.wait()  # group commit: the whole batch shares one round trip
        stored = batch.stored(lead_id)
        if stored is False:
            raise NotStored
    else:
        # bestEffort: yield once before answering, as a waiting request does. The loop then
        # scores every lead that arrived together before it writes their answers, instead of
        # alternating scoring and socket writes: measured 19 % less CPU per request under load.
        await asyncio.sleep(0)
    # Only once the record is stored (or queued, bestEffort): a 503's retry is a new lead.
    _follow_up(state, lead, lead_id, score, experiment)
    answer = schemas.ScoreResponse(
        lead_id=lead_id,
        score=score,
        model_version=served.version if served is not None else None,
        health=state.health_now(),
        stored=stored,
        experiment=experiment,
    )
    if arm is not None:
        # The variant's own answer time: the other variants' models scoring this lead (shadow
        # scores, which every arm pays alike) left out, so a slow model shows in its arm only.
        arm.answered(time.perf_counter() - started - shadow_seconds)
    # Bytes straight from pydantic-core: what model_dump_json() returns, minus a decode.
    # Without an experiment the answer has no "experiment" field at all (a null score stays).
    return answer.__pydantic_serializer__.to_json(
        answer, exclude=_NO_EXPERIMENT if experiment is None else None
    )


_NO_EXPERIMENT = {"experiment"}


def _previous_score(
    state: ScorerState, model: ServingModel | None, row: dict[str, str], *, answered: bool
) -> dict[str, str]:
    """The previous version's score fields of a lead the serving model `answered` (not an
    experiment variant's model), while the matured-AUC guard shadows; none otherwise, or when
    the previous model raised."""
    guard = state.guard
    if guard is None or model is None or not answered:
        return {}
    now = time.time()
    found = guard.shadow_fields(row, now=now) if guard.shadowing(model, now=now) else None
    return found or {}


def _follow_up(
    state: ScorerState,
    lead: Lead,
    lead_id: str,
    score: float | None,
    experiment: schemas.ExperimentAnswer | None,
) -> None:
    """Hand the lead (its contact as sent) to the follow-up writer: never waits, never fails."""
    if state.followups is None or score is None:
        return
    flags = None if experiment is None else experiment.flags
    state.followups.submit(lead, lead_id=lead_id, score=score, flags=flags)


def _score(
    state: ScorerState,
    model: ServingModel,
    row: dict[str, str],
    *,
    running: RunningExperiment | None,
    arm: Arm | None,
    started: float,
) -> tuple[float, dict[str, float], float]:
    """The lead's score (its variant's model when an experiment runs), the shadow scores and
    the seconds spent on models that do not answer this lead.

    Raises HTTPException 500 "scoring failed" when the serving model or the lead's variant's
    model raises. Another variant's model raising costs only its shadow score."""
    shadow: dict[str, float] = {}
    shadow_seconds = 0.0
    began = time.perf_counter()
    try:
        score, vector = model.score_row(row)
    except Exception:
        _failed(state, arm, model, serving=True)
    own = score  # the serving model's score, whichever variant answers
    if running is not None and arm is not None and running.has_models:
        served = running.model_of(arm.variant, model)
        if served is not model:  # the serving model's score is this lead's shadow score
            shadow_seconds = time.perf_counter() - began
        try:
            shadow, others = _shadow_scores(running, row, model, score, served=served)
        except Exception:
            _failed(state, arm, served, serving=False)
        shadow_seconds += others
        score = shadow[arm.variant.name]
    m = state.metrics
    m.scoring_seconds.observe(time.perf_counter() - started)
    m.scores.observe(score)
    model.drift.add(vector)
    model.estimate.add(own)
    state.scoring_failed.append(False)
    return score, shadow, shadow_seconds


def _failed(state: ScorerState, arm: Arm | None, model: ServingModel, *, serving: bool) -> NoReturn:
    """Count a lead whose scoring raised; only the serving model's failures count towards the
    scorer's health (a failing variant model is the guardrails' business), then raise 500."""
    if serving:
        state.scoring_failed.append(True)
    if arm is not None:
        arm.failed()
    logger.exception("Scoring failed with model version %d", model.version)
    raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, SCORING_FAILED) from None


def _bucketed(
    state: ScorerState, arm: Arm, score: float, shadow: dict[str, float]
) -> dict[str, str]:
    """Count the lead in its arm; the record fields that place it in the experiment."""
    arm.leads.inc()
    arm.scores.observe(score)
    state.experiment_leads.leads[arm.variant.name] += 1
    # scored_at starts the lead's maturity window; the shadow scores pair the variants.
    fields = {
        "experiment": arm.answer.name,
        "variant": arm.variant.name,
        "scored_at": f"{time.time():.3f}",
    }
    fields |= {SHADOW_PREFIX + name: repr(value) for name, value in shadow.items()}
    return fields


def _arm(lead: Lead, lead_id: str, running: RunningExperiment) -> Arm:
    unit = running.experiment.unit_id(lead_id=lead_id, chat_id=lead.chat_id, tenant=lead.tenant)
    return running.arm(unit)


def _shadow_scores(
    running: RunningExperiment,
    row: dict[str, str],
    serving: ServingModel,
    serving_score: float,
    *,
    served: ServingModel,
) -> tuple[dict[str, float], float]:
    """Every variant's model score of this lead, by variant (the paired comparison's data),
    and the seconds the models other than `served` took. Each distinct model scores the lead
    once; `served` raising raises, another model raising leaves its variant without a score."""
    by_version: dict[int, float | None] = {serving.version: serving_score}
    scores: dict[str, float] = {}
    others = 0.0
    for variant in running.experiment.variants:
        model = running.model_of(variant, serving)
        if model.version not in by_version:
            if model is served:
                by_version[model.version] = model.score_row(row)[0]
            else:
                began = time.perf_counter()
                by_version[model.version] = _shadow_score(model, row)
                others += time.perf_counter() - began
        value = by_version[model.version]
        if value is not None:
            scores[variant.name] = value
    return scores, others


_shadow_failures_logged: set[int] = set()


def _shadow_score(model: ServingModel, row: dict[str, str]) -> float | None:
    try:
        return model.score_row(row)[0]
    except Exception:
        if model.version not in _shadow_failures_logged:  # once per model, not once per lead
            _shadow_failures_logged.add(model.version)
            logger.exception("Shadow scoring failed with model version %d", model.version)
        return None
