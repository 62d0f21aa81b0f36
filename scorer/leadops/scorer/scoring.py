"""Scoring one lead: the code behind every POST /v1/lead answer.

Called by the plain route (routes.score) and by the ASGI fast path (fastpath): one scoring code,
whichever of the two answers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse

from leadops import pii
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, store
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState
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
    lead: Lead, state: ScorerState, model: ServingModel, *, idempotency_key: str | None = None
) -> bytes:
    """Score the lead, queue its record for the store, and return the JSON answer: at once
    (bestEffort), or once the record is stored or spooled (the writer's durability).

    Raises HTTPException 500 "scoring failed" when the model raises, NotStored when the
    durability requires the record stored and it is not.
    """
    started = time.perf_counter()
    lead = state.columns.admit(lead)  # the tenant's attribute column cap
    try:
        row = lead_to_row(lead, redact=pii.redact)
        score, vector = model.score_row(row)
    except Exception:
        state.scoring_failed.append(True)
        logger.exception("Scoring failed with model version %d", model.version)
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, SCORING_FAILED) from None
    m = state.metrics
    m.scoring_seconds.observe(time.perf_counter() - started)
    m.scores.observe(score)
    model.drift.add(vector)
    state.scoring_failed.append(False)

    if idempotency_key is None:
        lead_id = _lead_ids.next()
    else:
        lead_id = keyed_lead_id(lead.tenant, idempotency_key)
    # The record names its chat list by the hashed key, never by the chat_id (often an email).
    memory = store.memory_key(lead.tenant, lead.chat_id or lead_id)
    record = row | {
        "score": repr(score),
        "model_version": str(model.version),
        "chat_key": memory,
    }
    experiment = _bucket(lead, lead_id, state)
    if experiment is not None:
        record |= {"experiment": experiment.name, "variant": experiment.variant}
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
    answer = schemas.ScoreResponse(
        lead_id=lead_id,
        score=score,
        model_version=model.version,
        health=state.health_now(),
        stored=stored,
        experiment=experiment,
    )
    # Bytes straight from pydantic-core: what model_dump_json() returns, minus a decode.
    # exclude_none: without an experiment the answer has no "experiment" field at all.
    return answer.__pydantic_serializer__.to_json(answer, exclude_none=True)


def _bucket(lead: Lead, lead_id: str, state: ScorerState) -> schemas.ExperimentAnswer | None:
    """The lead's variant of the running experiment, counted; None when none runs."""
    experiment = state.settings.experiment
    if experiment is None:
        return None
    unit = experiment.unit_id(lead_id=lead_id, chat_id=lead.chat_id, tenant=lead.tenant)
    variant = experiment.assign(unit)
    state.metrics.experiment_leads.labels(experiment.name, variant.name).inc()
    state.experiment_leads.leads[variant.name] += 1
    return schemas.ExperimentAnswer(
        name=experiment.name, variant=variant.name, flags=dict(variant.flags)
    )
