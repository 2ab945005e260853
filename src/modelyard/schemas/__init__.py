"""Request and response schemas of the REST API, one module per resource.

They import only pydantic and :mod:`modelyard.limits`, so the SDK uses them without the server.
Every name is re-exported here: ``from modelyard.schemas import RunPublic`` works as before.
"""

from __future__ import annotations

from modelyard.schemas._common import (
    Count,
    Description,
    ErrorBody,
    ErrorDetail,
    ErrorText,
    Int64,
    Key,
    Message,
    Millis,
    Name,
    Natural,
    ParamValue,
    RunId,
    Serial,
    Strict,
    TagValue,
    Urn,
    Version,
)
from modelyard.schemas.artifacts import ArtifactPublic
from modelyard.schemas.changes import AspectVersion, ChangePublic
from modelyard.schemas.evaluations import EvaluationCreate, EvaluationPublic, ThresholdPoint
from modelyard.schemas.lineage import (
    DatasetIn,
    LineageEdge,
    LineageNode,
    LineagePublic,
    ModelIn,
    RunInputs,
    RunOutputs,
)
from modelyard.schemas.metrics import BatchLog, MetricHistory, MetricPointIn, PointsBatch
from modelyard.schemas.models import ModelPublic, ModelVersionCreate, ModelVersionPublic
from modelyard.schemas.projects import ProjectCreate, ProjectPublic, ProjectUpdate
from modelyard.schemas.runs import (
    HeadlineMetric,
    Heartbeat,
    LatestMetric,
    ParamsLog,
    RunCreate,
    RunPage,
    RunPublic,
    RunSearch,
    RunUpdate,
    TagsSet,
)
from modelyard.schemas.series import SeriesBatch, SeriesLatest, SeriesRecorded, SeriesReduced
from modelyard.schemas.steps import StepPublic, StepUpsert

__all__ = [
    "ArtifactPublic",
    "AspectVersion",
    "BatchLog",
    "ChangePublic",
    "Count",
    "DatasetIn",
    "Description",
    "ErrorBody",
    "ErrorDetail",
    "ErrorText",
    "EvaluationCreate",
    "EvaluationPublic",
    "HeadlineMetric",
    "Heartbeat",
    "Int64",
    "Key",
    "LatestMetric",
    "LineageEdge",
    "LineageNode",
    "LineagePublic",
    "Message",
    "MetricHistory",
    "MetricPointIn",
    "Millis",
    "ModelIn",
    "ModelPublic",
    "ModelVersionCreate",
    "ModelVersionPublic",
    "Name",
    "Natural",
    "ParamValue",
    "ParamsLog",
    "PointsBatch",
    "ProjectCreate",
    "ProjectPublic",
    "ProjectUpdate",
    "RunCreate",
    "RunId",
    "RunInputs",
    "RunOutputs",
    "RunPage",
    "RunPublic",
    "RunSearch",
    "RunUpdate",
    "Serial",
    "SeriesBatch",
    "SeriesLatest",
    "SeriesRecorded",
    "SeriesReduced",
    "StepPublic",
    "StepUpsert",
    "Strict",
    "TagValue",
    "TagsSet",
    "ThresholdPoint",
    "Urn",
    "Version",
]
