"""Request and response schemas of the REST API, one family per resource."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

from modelyard.metadata.aspects import RunStatus, StepStatus
from modelyard.metadata.tables import (
    MAX_KEY,
    MAX_NAME,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY)]
ParamValue = Annotated[str, StringConstraints(max_length=MAX_PARAM_VALUE)]
TagValue = Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE)]
RunId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Millis = Annotated[int, Field(ge=0, le=2**53)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- projects
class ProjectCreate(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""


class ProjectUpdate(Strict):
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class ProjectPublic(BaseModel):
    id: int
    urn: str
    name: str
    description: str
    created_at: int
    created_by: str
    run_count: int = 0


# --- runs
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
    status: RunStatus | None = None
    end_time: Millis | None = None
    name: Name | None = None
    error: Annotated[str, StringConstraints(max_length=20_000)] | None = None


class LatestMetric(BaseModel):
    value: float | str
    step: int
    timestamp: int


class RunPublic(BaseModel):
    run_id: str
    urn: str
    project: str
    project_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    created_by: str
    error: str | None = None
    source: str | None = None
    git_commit: str | None = None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, LatestMetric]


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


# --- params, tags, metrics
class ParamsLog(Strict):
    params: dict[Key, ParamValue]


class TagsSet(Strict):
    tags: dict[Key, TagValue]


class MetricPointIn(Strict):
    # Strict like the columnar form: true is no step, 2.0 no step, "1.5" and true no value.
    key: Key
    value: StrictFloat | Literal["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"]
    step: StrictInt = 0
    timestamp: Annotated[StrictInt, Field(ge=0, le=2**53)] | None = None


class BatchLog(Strict):
    """Rows (``metrics``) or columns (``columns``) of metric points, plus params and tags."""

    metrics: list[MetricPointIn] = Field(default_factory=list)
    columns: dict[str, list[Any] | str] | None = Field(
        default=None,
        description="Columnar points: key (list or one string), value, step, timestamp.",
    )
    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, TagValue] = Field(default_factory=dict)


class MetricHistory(BaseModel):
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float | str]


# --- steps
class StepUpsert(Strict):
    depends_on: list[Name] | None = None
    status: StepStatus | None = None
    progress: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    message: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    error: Annotated[str, StringConstraints(max_length=20_000)] | None = None


class ArtifactPublic(BaseModel):
    run_id: str
    urn: str
    path: str
    step: str | None
    size: int
    sha256: str
    media_type: str
    kind: str | None
    created_at: int


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


# --- datasets and lineage
class DatasetIn(Strict):
    name: Name
    uri: Annotated[str, StringConstraints(max_length=4000)] | None = None
    digest: Annotated[str, StringConstraints(max_length=MAX_NAME)] | None = None
    num_rows: Annotated[int, Field(ge=0)] | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""


class RunInputs(Strict):
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=1000)
    artifacts: list[Annotated[str, StringConstraints(max_length=2048)]] = Field(
        default_factory=list, max_length=1000, description="URNs of artifacts the run consumed."
    )


class ModelIn(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""


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


class AspectVersion(BaseModel):
    version: int
    value: dict[str, Any]
    created_at: int
    created_by: str
    created_for: str | None


class ChangePublic(BaseModel):
    id: int
    urn: str
    aspect: str
    version: int
    previous_version: int | None
    actor: str
    created_at: int


class SeriesBatch(Strict):
    """Points of an entity's series: rows (``metrics``) or columns (``columns``), shaped as a
    run's metric batch."""

    metrics: list[MetricPointIn] = Field(default_factory=list)
    columns: dict[str, list[Any] | str] | None = Field(
        default=None,
        description="Columnar points: key (list or one string), value, step, timestamp.",
    )


class SeriesRecorded(BaseModel):
    recorded: int


class SeriesLatest(BaseModel):
    step: int
    timestamp: int
    value: float | str


class SeriesReduced(BaseModel):
    key: str
    x_kind: Literal["step", "time"]
    x: list[int]
    y: list[float]
    total: int
    nan: int
    pos_inf: int
    neg_inf: int
    reduced: bool


# --- evaluations
class EvaluationCreate(Strict):
    """Predictions as JSON columns; large tables are better sent as Arrow, Parquet or CSV."""

    y_true: list[Any] = Field(max_length=10_000_000)
    y_score: list[Any] = Field(max_length=10_000_000)
    weights: list[Any] | None = None
    groups: dict[Key, list[Any]] = Field(default_factory=dict, max_length=20)
    dataset: Name | None = None
    name: Name | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    classes: list[Any] | None = Field(default=None, max_length=10_000)
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class ModelVersionCreate(Strict):
    model: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""


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


class EvaluationPublic(BaseModel):
    id: str
    urn: str
    run_id: str
    model: str | None = None
    model_version: int | None = None
    run_name: str
    project: str
    name: str
    dataset: str | None
    task: str
    analyzers: list[str]
    rows: int
    weighted: bool
    groups: list[str]
    threshold: float
    created_at: int
    created_by: str
    metrics: dict[str, dict[str, float | None]]
    files: dict[str, str]


class ThresholdPoint(BaseModel):
    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float | None
    recall: float | None
    fpr: float | None
    specificity: float | None
    f1: float | None
    accuracy: float | None
    predicted_positive_share: float | None
