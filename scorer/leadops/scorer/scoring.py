"""Scoring one lead: the code behind every POST /v1/lead answer.

Called by the plain route (routes.score) and by the ASGI fast path (fastpath): one scoring code,
whichever of the two answers.
"""

from __future__ import annotations

import logging
import os
import time

from fastapi import HTTPException, status

from leadops import pii
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import schemas, store
from leadops.scorer.model import ServingModel
from leadops.scorer.state import ScorerState

logger = logging.getLogger(__name__)

SCORING_FAILED = "scoring failed"


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


def answer_lead(lead: Lead, state: ScorerState, model: ServingModel) -> bytes:
    """Score the lead, queue its record for the store, and return the JSON answer.

    Raises HTTPException 500 "scoring failed" when the model raises.
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

    lead_id = _lead_ids.next()
    # The record names its chat list by the hashed key, never by the chat_id (often an email).
    memory = store.memory_key(lead.tenant, lead.chat_id or lead_id)
    record = row | {
        "score": repr(score),
        "model_version": str(model.version),
        "chat_key": memory,
    }
    state.writer.submit(
        store.LeadWrite(
            lead_id=lead_id,
            record=record,
            columns=list(row),
            memory=memory,
            # `details` in the row is already redacted by the shared PII detector.
            message=row["details"] or None,
        )
    )
    answer = schemas.ScoreResponse(
        lead_id=lead_id, score=score, model_version=model.version, health=state.health_now()
    )
    # Bytes straight from pydantic-core: what model_dump_json() returns, minus a decode.
    return answer.__pydantic_serializer__.to_json(answer)
