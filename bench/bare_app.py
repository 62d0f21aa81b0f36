"""Baseline (a) for bench.scorer: a bare FastAPI endpoint that parses the same lead body
with the same pydantic model and returns a constant. Everything the scorer adds on top
(featurize, trees, drift, metrics, Redis write-behind) is what the benchmark measures."""

from __future__ import annotations

from fastapi import FastAPI

from leadops.contract.lead import Lead
from leadops.scorer.health import Health
from leadops.scorer.schemas import ScoreResponse

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
CONSTANT = ScoreResponse(
    lead_id="0" * 32, score=0.5, model_version=1, health=Health.OK, stored=True
)


@app.post("/v1/lead", response_model=ScoreResponse)
async def score_lead(lead: Lead) -> ScoreResponse:
    return CONSTANT


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
