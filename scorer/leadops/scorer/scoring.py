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
from leadops.contract.featurize import RowCells
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, shadow, store
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState
from leadops.scorer.trees import F32
from leadops.scorer.variants import Arm, ConcludedExperiment, RunningExperiment
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
    record_writer = state.writer
    shadow_seconds = record_writer.shadow_seconds
    lead = state.columns.admit(lead)  # the tenant's attribute column cap
    if idempotency_key is None:
        lead_id = _lead_ids.next()
    else:
        lead_id = keyed_lead_id(lead.tenant, idempotency_key)
    # Cold start (no model): no experiment either; the lead is stored unscored.
    configured = state.experiment
    running = configured if isinstance(configured, RunningExperiment) else None
    arm = None if running is None or model is None else _arm(lead, lead_id, running)
    row = lead_to_row(lead, redact=pii.redact)
    score, served, pending = _scored(state, model, row, running=running, arm=arm, started=started)
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
        record |= _bucketed(state, arm, score)
    elif score is not None and isinstance(configured, ConcludedExperiment):
        experiment = configured.answer  # the winner's flags, for every lead; nothing bucketed
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
            shadow=pending,
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
        # The variant's own answer time: only its own model scored the lead in the request,
        # and the batches' shadow scoring it waited for is left out (every arm waits for it
        # alike), so a slow model shows in its own arm only.
        waited = record_writer.shadow_seconds - shadow_seconds
        arm.answered(time.perf_counter() - started - waited)
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


def _scored(
    state: ScorerState,
    model: ServingModel | None,
    row: dict[str, str],
    *,
    running: RunningExperiment | None,
    arm: Arm | None,
    started: float,
) -> tuple[float | None, ServingModel | None, shadow.Pending | None]:
    """The lead's score, the model that gave it (its variant's when it is bucketed), and what
    its record still needs: the other variants' models' scores, added with its batch."""
    if model is None:
        state.metrics.leads_unscored.inc()
        return None, None, None
    if arm is None or running is None:
        return _score(state, model, model, row, arm=None, started=started)[0], model, None
    plan = running.shadow_plan(arm, model)
    served = plan.served
    if not plan.others:  # every variant is served by this model: its score is theirs
        return _score(state, model, served, row, arm=arm, started=started)[0], served, None
    cells = RowCells(row) if plan.keeps_cells else None
    score, vector = _score(state, model, served, row, arm=arm, started=started, cells=cells)
    pending = shadow.Pending(
        row=row, served=served, vector=vector, cells=cells, others=plan.others, serving=model
    )
    return score, served, pending


def _score(
    state: ScorerState,
    model: ServingModel,
    served: ServingModel,
    row: dict[str, str],
    *,
    arm: Arm | None,
    started: float,
    cells: RowCells | None = None,
) -> tuple[float, F32]:
    """The lead's score by `served` (its variant's model when an experiment runs, else the
    serving `model`) and its feature vector. The other variants' models score it later, with
    its record's batch (leadops.scorer.shadow).

    Raises HTTPException 500 "scoring failed" when `served` raises."""
    try:
        score, vector = served.score_row(row, cells)
    except Exception:
        _failed(state, arm, served, serving=served is model)
    m = state.metrics
    m.scoring_seconds.observe(time.perf_counter() - started)
    m.scores.observe(score)
    if served is model:  # else the serving model's windows take the lead with its batch
        model.drift.add(vector)
        model.estimate.add(score)
        state.scoring_failed.append(False)
    return score, vector


def _failed(state: ScorerState, arm: Arm | None, model: ServingModel, *, serving: bool) -> NoReturn:
    """Count a lead whose scoring raised; only the serving model's failures count towards the
    scorer's health (a failing variant model is the guardrails' business), then raise 500."""
    if serving:
        state.scoring_failed.append(True)
    if arm is not None:
        arm.failed()
    logger.exception("Scoring failed with model version %d", model.version)
    raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, SCORING_FAILED) from None


def _bucketed(state: ScorerState, arm: Arm, score: float) -> dict[str, str]:
    """Count the lead in its arm; the record fields that place it in the experiment."""
    arm.counts.bucketed(score)
    # scored_at starts the lead's maturity window; the shadow scores pair the variants (the
    # answering model's here, the other models' once the record's batch is scored).
    fields = dict.fromkeys(arm.shadow_fields, repr(score))
    fields["experiment"] = arm.answer.name
    fields["variant"] = arm.variant.name
    fields["scored_at"] = f"{time.time():.3f}"
    return fields


def _arm(lead: Lead, lead_id: str, running: RunningExperiment) -> Arm:
    unit = running.experiment.unit_id(lead_id=lead_id, chat_id=lead.chat_id, tenant=lead.tenant)
    return running.arm(unit)
