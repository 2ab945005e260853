from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from modelyard.api.deps import Actor, ArtifactsDep, PluginsDep, SettingsDep, StoreDep
from modelyard.authz import (
    Level,
    allow,
    evaluation_path,
    run_path,
    version_path,
)
from modelyard.body_limits import TABLES, body_limit
from modelyard.schemas import EvaluationCreate, EvaluationPublic, Name, Version
from modelyard.services import evaluation_upload, evaluations, models
from modelyard.services.evaluation_upload import Upload

router = APIRouter(tags=["evaluations"])
UPLOADS = "JSON, Arrow IPC, Parquet (application/vnd.apache.parquet) or CSV (text/csv)"


class EvaluationQuery(BaseModel):
    """Where the columns of an uploaded table are, and what to call the evaluation."""

    model_config = ConfigDict(extra="forbid")
    dataset: Name | None = None
    name: Name | None = None
    y_true: Annotated[str, Field(max_length=250)] = "y_true"
    y_score: Annotated[list[str] | None, Field(max_length=10_000)] = None
    weights: Annotated[str | None, Field(max_length=250)] = None
    group: Annotated[list[str] | None, Field(max_length=20)] = None
    task: Annotated[str | None, Field(pattern="^(binary|multiclass|regression)$")] = None
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    classes: Annotated[list[str] | None, Field(max_length=10_000)] = None
    evaluation_id: Annotated[str | None, Field(pattern=r"^[0-9a-f]{32}$")] = None

    def upload(self, raw: bytes, content_type: str) -> Upload:
        """The uploaded body with what the query says about it."""
        fields = self.model_dump(exclude={"group"})
        return Upload(raw=raw, content_type=content_type, groups=self.group, **fields)


BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": EvaluationCreate.model_json_schema()},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.arrow.stream": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    }
}
QueryDep = Annotated[EvaluationQuery, Query()]


async def _upload(request: Request, q: EvaluationQuery, max_bytes: int) -> Upload:
    raw = await evaluation_upload.read_limited(
        request.stream(), max_bytes=max_bytes, declared_length=request.headers.get("content-length")
    )
    return q.upload(raw, request.headers.get("content-type", "application/json"))


@router.post("/runs/{run_id}/evaluations", status_code=201, openapi_extra=BODY)
@body_limit(TABLES)
@allow(Level.WRITE, on=run_path())
async def evaluate(
    run_id: str,
    request: Request,
    q: QueryDep,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    settings: SettingsDep,
    actor: Actor,
) -> EvaluationPublic:
    """Evaluate predictions of the run with every analyzer that applies (binary tasks are
    detected). Send JSON columns, or a table as Arrow IPC, Parquet or CSV with the column
    names in the query (``y_true``, ``y_score`` (repeat it for one column per class),
    ``weights``, ``group`` (repeatable)). Nothing is stored unless the whole table is valid.
    A client-chosen ``evaluation_id`` makes a retried request a no-op."""
    return await evaluation_upload.evaluate_upload(
        store, files, plugins, upload=await _upload(request, q, settings.max_table_bytes),
        max_bytes=settings.max_table_bytes, actor=actor, run_id=run_id,
    )  # fmt: skip


@router.post(
    "/models/{model:path}/versions/{version}/evaluations", status_code=201, openapi_extra=BODY
)
@body_limit(TABLES)
@allow(Level.WRITE, on=version_path())
async def evaluate_version(
    model: str,
    version: Version,
    request: Request,
    q: QueryDep,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    settings: SettingsDep,
    actor: Actor,
) -> EvaluationPublic:
    """Evaluate predictions of a model version (as for a run); the evaluation is linked to the
    version and to the run that made it."""
    return await evaluation_upload.evaluate_upload(
        store, files, plugins, upload=await _upload(request, q, settings.max_table_bytes),
        max_bytes=settings.max_table_bytes, actor=actor, model_version=(model, version),
    )  # fmt: skip


@router.get("/models/{model:path}/versions/{version}/evaluations")
@allow(Level.READ, on=version_path())
def list_version_evaluations(
    model: str, version: Version, store: StoreDep
) -> list[EvaluationPublic]:
    return models.version_evaluations(store, model=model, version=version)


@router.get("/runs/{run_id}/evaluations")
@allow(Level.READ, on=run_path())
def list_evaluations(run_id: str, store: StoreDep) -> list[EvaluationPublic]:
    return evaluations.list_evaluations(store, run_id=run_id)


@router.get("/evaluations/{evaluation_id}")
@allow(Level.READ, on=evaluation_path())
def get_evaluation(evaluation_id: str, store: StoreDep) -> EvaluationPublic:
    return evaluations.get_evaluation(store, evaluation_id=evaluation_id)


@router.get("/evaluations/{evaluation_id}/result")
@allow(Level.READ, on=evaluation_path())
def get_result(evaluation_id: str, store: StoreDep, files: ArtifactsDep) -> Response:
    """Every analyzer's full result: metrics, curves (reduced for display), tables."""
    ev = evaluations.get_evaluation(store, evaluation_id=evaluation_id)
    result: dict[str, Any] = evaluations.evaluation_result(files, ev)
    return Response(orjson.dumps(result), media_type="application/json")


@router.get("/evaluations/{evaluation_id}/{query}")
@allow(Level.READ, on=evaluation_path())
def answer_query(
    evaluation_id: str, query: str, request: Request, store: StoreDep, files: ArtifactsDep,
    plugins: PluginsDep,
) -> Response:  # fmt: skip
    """An analyzer's query of the evaluation's stored side tables, e.g. ``thresholds?t=0.3``
    (repeat ``t``): the exact confusion matrix and rates at each threshold (score >= t is
    positive), from a binary evaluation's full threshold table. The query string is checked
    against the query's parameters (422 when it does not fit)."""
    params = evaluations.query_string(request.query_params.multi_items())
    answer = evaluations.answer_query(
        store, files, plugins, evaluation_id=evaluation_id, name=query, params=params
    )
    return Response(orjson.dumps(answer), media_type="application/json")
