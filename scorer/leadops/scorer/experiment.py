"""The experiment a scorer runs: which variant each lead gets, and the live counts.

Configured by `LEADOPS_EXPERIMENT` (JSON: name, unit, variants with weight and flags), the
shape of `spec.experiment`. Bucketing is `leadops.contract.bucketing`: a stable hash of the
experiment name and the unit id, the same on every replica and after restarts. This build
serves flag variants only: a variant naming a model version is refused at start (loading
and shadow-scoring variant models is the next step of issue #18).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from leadops.contract import bucketing

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
FlagName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9]{0,62}$")]
FlagValue = Annotated[str, StringConstraints(max_length=256)]


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Name
    weight: int = Field(ge=1, le=99)
    flags: dict[FlagName, FlagValue] = Field(default_factory=dict, max_length=16)
    model_version: str = Field(default="", alias="modelVersion", max_length=12)

    @model_validator(mode="after")
    def _flags_only(self) -> Variant:
        if self.model_version:
            raise ValueError(
                f"variant {self.name!r} names modelVersion {self.model_version}: this scorer "
                "serves flag variants only"
            )
        return self


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    unit: Literal["lead", "chat", "tenant"] = "lead"
    variants: list[Variant] = Field(min_length=2, max_length=4)

    @model_validator(mode="after")
    def _split(self) -> Experiment:
        if sum(v.weight for v in self.variants) != bucketing.BUCKETS:
            raise ValueError("variant weights must sum to 100")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        return self

    def unit_id(self, *, lead_id: str, chat_id: str | None, tenant: str) -> str:
        """What is bucketed: this lead, its chat (all its leads together) or its tenant."""
        if self.unit == "tenant":
            return tenant
        if self.unit == "chat" and chat_id:
            # Tenant-scoped: two tenants' chats with one id are different units.
            return f"{tenant}\0{chat_id}"
        return lead_id

    def assign(self, unit_id: str) -> Variant:
        weights = [(v.name, v.weight) for v in self.variants]
        chosen = bucketing.variant(self.name, unit_id, weights)
        return next(v for v in self.variants if v.name == chosen)


class LiveCounts:
    """Leads bucketed into each variant by this process since it started (GET /ops/experiment)."""

    def __init__(self) -> None:
        self.leads: Counter[str] = Counter()
