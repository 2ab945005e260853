"""Runs, their params and tags, and run search."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from modelyard.limits import RunStatus, RunStatusUpdate
from modelyard.schemas._common import (
    ErrorText,
    Key,
    Millis,
    Name,
    ParamValue,
    RunId,
    Strict,
    TagValue,
)


class RunCreate(Strict):
    project: Name
    name: Name | None = None
    run_id: RunId | None = Field(
        default=None, description="Client-chosen id; repeating a create with it is a no-op."
    )
    start_time: Millis | None = None
    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, TagValue] = Field(default_factory=dict)
    source: Annotated[str, StringConstraints(max_length=1000)] | None = None
    git_commit: Annotated[str, StringConstraints(max_length=64)] | None = None


class RunUpdate(Strict):
    status: RunStatusUpdate | None = None
    end_time: Millis | None = None
    name: Name | None = None
    error: ErrorText | None = None


class LatestMetric(BaseModel):
    value: float | str
    step: int
    timestamp: int


class HeadlineMetric(BaseModel):
    """The metric that heads a list of runs (a project's, or a model's versions'), and its
    best value among them; see modelyard.services.headlines for how it is chosen."""

    key: str
    value: float | str = Field(description="The best of the runs' latest values.")
    higher_is_better: bool
    runs: int = Field(description="How many of the runs logged the metric.")
    run_id: str = Field(description="A run that reached the best value.")


class RunPublic(BaseModel):
    run_id: str
    urn: str
    project: str
    project_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    last_heartbeat: int | None = Field(
        default=None,
        description="When the run's client was last heard from (epoch ms): its creation, a "
        "heartbeat, or a write to the run. A running run silent for longer than the server's "
        "MODELYARD_RUN_LOST_AFTER_SECONDS becomes lost.",
    )
    created_by: str
    error: str | None = None
    source: str | None = None
    git_commit: str | None = None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, LatestMetric]


class Heartbeat(Strict):
    """A heartbeat carries nothing; an empty object (or no body at all) is the whole of it."""


class RunSearch(Strict):
    project: Name | None = None
    projects: list[Name] | None = None
    filter: Annotated[str, StringConstraints(max_length=10_000)] = ""
    order_by: list[Annotated[str, StringConstraints(max_length=1000)]] = Field(default_factory=list)
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    page_token: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class RunPage(BaseModel):
    runs: list[RunPublic]
    next_page_token: str | None


class ParamsLog(Strict):
    params: dict[Key, ParamValue]


class TagsSet(Strict):
    tags: dict[Key, TagValue]
