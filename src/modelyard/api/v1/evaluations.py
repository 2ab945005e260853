from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.api.deps import Actor, ArtifactsDep, PluginsDep, SettingsDep, StoreDep, parse_body
from modelyard.artifacts.base import ArtifactStore
from modelyard.errors import PayloadTooLarge
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.schemas import EvaluationCreate, EvaluationPublic, Name, ThresholdPoint
from modelyard.services import evaluations, models
from modelyard.settings import Settings

router = APIRouter(tags=["evaluations"])
UPLOADS = "JSON, Arrow IPC, Parquet (application/vnd.apache.parquet) or CSV (text/csv)"


def _from_json(raw: bytes, threshold: float) -> tuple[PredictionTable, str | None, str | None]:
    body = parse_body(raw, EvaluationCreate)
    table = prediction_table(
        body.y_true,
        body.y_score,
        weights=body.weights,
        groups=body.groups,
        task=body.task,
        classes=body.classes,
        threshold=body.threshold if body.threshold != 0.5 else threshold,
    )
    return table, body.dataset, body.name


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


async def _evaluate(
    request: Request,
    q: EvaluationQuery,
    *,
    store: Store,
    files: ArtifactStore,
    plugins: Plugins,
    settings: Settings,
    actor: str,
    run_id: str,
    model_version: tuple[str, int] | None = None,
) -> EvaluationPublic:
    size = int(request.headers.get("content-length") or 0)
    if size > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the upload is larger than the {settings.max_upload_bytes}-byte limit"
        )
    raw = await request.body()
    kind = request.headers.get("content-type", "application/json")

    def work() -> EvaluationPublic:
        if kind.startswith("application/json"):
            table, ds, nm = _from_json(raw, q.threshold)
        else:
            data = evaluations.read_upload(raw, kind)
            table = evaluations.table_from_arrow(
                data, y_true=q.y_true, y_score=q.y_score, weights=q.weights, groups=q.group,
                task=q.task, threshold=q.threshold, classes=q.classes,
            )  # fmt: skip
            ds, nm = None, None
        return evaluations.evaluate(
            store, files, plugins, run_id=run_id, table=table, dataset=q.dataset or ds,
            name=q.name or nm, actor=actor, evaluation_id=q.evaluation_id,
            model_version=model_version,
        )  # fmt: skip

    return await run_in_threadpool(work)


@router.post("/runs/{run_id}/evaluations", status_code=201, openapi_extra=BODY)
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
    return await _evaluate(
        request, q, store=store, files=files, plugins=plugins, settings=settings, actor=actor,
        run_id=run_id,
    )  # fmt: skip


@router.post(
    "/models/{model:path}/versions/{version}/evaluations", status_code=201, openapi_extra=BODY
)
async def evaluate_version(
    model: str,
    version: int,
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
    mv = models.get_version(store, model=model, version=version)
    return await _evaluate(
        request, q, store=store, files=files, plugins=plugins, settings=settings, actor=actor,
        run_id=mv.run_id, model_version=(model, version),
    )  # fmt: skip


@router.get("/models/{model:path}/versions/{version}/evaluations")
def list_version_evaluations(model: str, version: int, store: StoreDep) -> list[EvaluationPublic]:
    models.get_version(store, model=model, version=version)
    return evaluations.list_version_evaluations(store, model=model, version=version)


@router.get("/runs/{run_id}/evaluations")
def list_evaluations(run_id: str, store: StoreDep) -> list[EvaluationPublic]:
    return evaluations.list_evaluations(store, run_id=run_id)


@router.get("/evaluations/{evaluation_id}")
def get_evaluation(evaluation_id: str, store: StoreDep) -> EvaluationPublic:
    return evaluations.get_evaluation(store, evaluation_id=evaluation_id)


@router.get("/evaluations/{evaluation_id}/result")
def get_result(evaluation_id: str, store: StoreDep, files: ArtifactsDep) -> Response:
    """Every analyzer's full result: metrics, curves (reduced for display), tables."""
    ev = evaluations.get_evaluation(store, evaluation_id=evaluation_id)
    result: dict[str, Any] = evaluations.evaluation_result(files, ev)
    return Response(orjson.dumps(result), media_type="application/json")


@router.get("/evaluations/{evaluation_id}/thresholds")
def at_thresholds(
    evaluation_id: str,
    store: StoreDep,
    files: ArtifactsDep,
    t: Annotated[list[float], Query(min_length=1, max_length=1000)],
) -> list[ThresholdPoint]:
    """The exact confusion matrix and rates at each threshold ``t`` (score >= t is positive),
    from the evaluation's full threshold table."""
    return evaluations.at_thresholds(store, files, evaluation_id=evaluation_id, thresholds=t)
