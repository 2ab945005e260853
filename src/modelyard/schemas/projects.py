"""Projects."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelyard.schemas._common import Description, Name, Strict
from modelyard.schemas.runs import HeadlineMetric


class ProjectCreate(Strict):
    name: Name
    description: Description = ""


class ProjectUpdate(Strict):
    description: Description | None = None


class ProjectPublic(BaseModel):
    id: int
    urn: str
    name: str
    description: str
    created_at: int
    created_by: str
    run_count: int = 0
    last_run_at: int | None = Field(
        default=None, description="Start time of the project's latest run (epoch ms); in lists."
    )
    headline: HeadlineMetric | None = Field(
        default=None,
        description="The project's headline metric and its best value over its finished runs; "
        "in lists.",
    )
