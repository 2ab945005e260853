"""A run's steps (its pipeline)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from pydantic import Strict as NoCoercion

from modelyard.limits import StepStatus
from modelyard.schemas._common import ErrorText, Message, Name, Strict
from modelyard.schemas.artifacts import ArtifactPublic


class StepUpsert(Strict):
    depends_on: list[Name] | None = None
    status: StepStatus | None = None
    # A JSON number: false is no progress (0) and "0.5" no half.
    progress: Annotated[float, NoCoercion(), Field(ge=0.0, le=1.0)] | None = None
    message: Message | None = None
    error: ErrorText | None = None


class StepPublic(BaseModel):
    run_id: str
    urn: str
    name: str
    position: int
    depends_on: list[str]
    status: StepStatus
    progress: float | None
    message: str | None
    start_time: int | None
    end_time: int | None
    error: str | None
    artifacts: list[ArtifactPublic] = Field(default_factory=list)
