"""The experiment a scorer runs: which variant each lead gets, and the live counts.

Configured by `LEADOPS_EXPERIMENT` (JSON: name, unit, variants with weight and flags), the
shape of `spec.experiment`. Bucketing is `leadops.contract.bucketing`: a stable hash of the
experiment name and the unit id, the same on every replica and after restarts. A variant
naming a `modelVersion` is served by that model (leadops.scorer.variants loads it); one
without is served by the serving model.

A concluded experiment names its `winner`: nothing is bucketed any more, every lead's answer
carries the winner's flags (its model, if it had one, is rolled out as the serving model by
the operator), and no variant model is loaded.
"""

from __future__ import annotations

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
    # The prediction flag: "" = the serving model.
    model_version: str = Field(
        default="", alias="modelVersion", pattern=r"^([0-9]{1,12})?$", max_length=12
    )


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    unit: Literal["lead", "chat", "tenant"] = "lead"
    variants: list[Variant] = Field(min_length=2, max_length=4)
    # The variant that won: served to every lead (its flags), no bucketing.
    winner: Name | None = None

    @model_validator(mode="after")
    def _split(self) -> Experiment:
        if sum(v.weight for v in self.variants) != bucketing.BUCKETS:
            raise ValueError("variant weights must sum to 100")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        if self.winner is not None and self.winner not in {v.name for v in self.variants}:
            raise ValueError(f"winner {self.winner!r} is not a variant")
        return self

    def winning_variant(self) -> Variant | None:
        return next((v for v in self.variants if v.name == self.winner), None)

    def model_versions(self) -> list[str]:
        """The distinct model versions the variants name, in variant order (none once
        concluded: the winner's model, if any, is the serving model then)."""
        if self.winner is not None:
            return []
        return list(dict.fromkeys(v.model_version for v in self.variants if v.model_version))

    def unit_id(self, *, lead_id: str, chat_id: str | None, tenant: str) -> str:
        """What is bucketed: this lead, its chat (all its leads together) or its tenant."""
        if self.unit == "tenant":
            return tenant
        if self.unit == "chat" and chat_id:
            # Tenant-scoped: two tenants' chats with one id are different units.
            return f"{tenant}\0{chat_id}"
        return lead_id

    def assign(self, unit_id: str) -> Variant:
        return self.assign_bucket(bucketing.bucket(self.name, unit_id))

    def assign_bucket(self, point: int) -> Variant:
        """The variant whose cumulative weight range holds bucket `point` (0..99)."""
        edge = 0
        for v in self.variants:
            edge += v.weight
            if point < edge:
                return v
        raise AssertionError("unreachable: weights sum to 100")
