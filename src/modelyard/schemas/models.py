"""Registered models and their versions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelyard.schemas._common import Description, Name, Strict
from modelyard.schemas.runs import HeadlineMetric


class ModelVersionCreate(Strict):
    model: Name
    description: Description = ""


class ModelVersionPublic(BaseModel):
    model: str
    version: int
    urn: str
    run_id: str
    run_name: str
    project: str
    description: str
    created_at: int
    created_by: str


class ModelPublic(BaseModel):
    name: str
    urn: str
    versions: int
    latest_version: int
    latest_at: int
    headline: HeadlineMetric | None = Field(
        default=None,
        description="The headline metric of the runs that made the model's versions, and its "
        "best value among them.",
    )
