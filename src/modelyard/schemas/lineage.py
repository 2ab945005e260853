"""Datasets and models a run consumed or produced, and the lineage graph around an entity."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from modelyard.limits import MAX_NAME, MAX_URI, MAX_URN
from modelyard.schemas._common import (
    Count,
    Description,
    DocumentedPattern,
    Name,
    Strict,
    urn_pattern,
)

# What a run can consume besides new datasets: an existing artifact, dataset or model.
ConsumedUrn = Annotated[
    str,
    StringConstraints(max_length=MAX_URN),
    DocumentedPattern(lambda: urn_pattern("artifact", "dataset", "model")),
]


class DatasetIn(Strict):
    name: Name
    uri: Annotated[str, StringConstraints(max_length=MAX_URI)] | None = None
    digest: Annotated[str, StringConstraints(max_length=MAX_NAME)] | None = None
    num_rows: Count | None = None
    description: Description = ""


class RunInputs(Strict):
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=1000)
    artifacts: list[ConsumedUrn] = Field(
        default_factory=list, max_length=1000, description="URNs of artifacts the run consumed."
    )


class ModelIn(Strict):
    name: Name
    description: Description = ""


class RunOutputs(Strict):
    models: list[ModelIn] = Field(default_factory=list, max_length=1000)
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=1000)


class LineageNode(BaseModel):
    urn: str
    type: str
    hops: int


class LineageEdge(BaseModel):
    upstream: str
    type: str
    downstream: str


class LineagePublic(BaseModel):
    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
