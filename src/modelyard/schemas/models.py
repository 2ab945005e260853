"""Registered models and their versions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from modelyard.limits import MAX_ARTIFACT_PATH
from modelyard.schemas._common import Description, Name, Strict
from modelyard.schemas.runs import HeadlineMetric

ArtifactPath = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ARTIFACT_PATH)]


class ModelVersionCreate(Strict):
    model: Name
    description: Description = ""
    # The path of the run's artifact that is this version (e.g. "model.pkl"), if there is one.
    source: ArtifactPath | None = None


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
    source: str | None = None  # the path of the run's artifact that is this version


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
