from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from modelyard.api.deps import Actor, IdempotencyKey, Readable, SettingsDep, StoreDep
from modelyard.api.history import (
    HISTORY_RESPONSES,
    AxisQ,
    End,
    FormatQ,
    Limit,
    PageToken,
    Start,
    history_response,
)
from modelyard.api.openapi import batch_body
from modelyard.authz import (
    Level,
    allow,
    project_body,
    run_path,
)
from modelyard.schemas import (
    BatchLog,
    Heartbeat,
    MetricHistory,
    ParamsLog,
    RunCreate,
    RunPage,
    RunPublic,
    RunSearch,
    RunUpdate,
    TagsSet,
)
from modelyard.services import batches, liveness, runs, search, series

router = APIRouter(prefix="/runs", tags=["runs"])


@router.post("", status_code=201)
@allow(Level.WRITE, on=project_body())
def create_run(body: RunCreate, store: StoreDep, actor: Actor) -> RunPublic:
    """Start a run. A client-chosen ``run_id`` makes a retried create a no-op."""
    return runs.create_run(store, body=body, actor=actor)


@router.post("/search")
@allow(Level.READ, on=project_body(many="projects"))
def search_runs(body: RunSearch, store: StoreDep, readable: Readable) -> RunPage:
    """Filter, order and page runs: ``metrics.auc > 0.9 and params.model = 'gbm'``."""
    return search.search_runs(store, req=body, readable=readable)


@router.get("/{run_id}")
@allow(Level.READ, on=run_path())
def get_run(run_id: str, store: StoreDep) -> RunPublic:
    return runs.get_run(store, run_id=run_id)


@router.patch("/{run_id}")
@allow(Level.WRITE, on=run_path())
def update_run(run_id: str, body: RunUpdate, store: StoreDep, actor: Actor) -> RunPublic:
    """Rename a run or end it (finished, failed, killed)."""
    return runs.update_run(store, run_id=run_id, body=body, actor=actor)


@router.post("/{run_id}/heartbeat")
@allow(Level.WRITE, on=run_path())
def heartbeat(
    run_id: str, store: StoreDep, actor: Actor, body: Heartbeat | None = None
) -> RunPublic:
    """The run's client is alive (send no body, or ``{}``): answers the run, so the client sees
    its status. A lost run is running again; a run that has ended answers 409 and is left as
    it is. Any write to the run by its client counts as a heartbeat too."""
    return liveness.heartbeat(store, run_id=run_id, actor=actor)


@router.post("/{run_id}/params", status_code=204)
@allow(Level.WRITE, on=run_path())
def log_params(run_id: str, body: ParamsLog, store: StoreDep, actor: Actor) -> None:
    """Params are immutable: the same value again is a no-op, another value a 409."""
    batches.log_params(store, run_id=run_id, params=body.params, actor=actor)


@router.post("/{run_id}/tags", status_code=204)
@allow(Level.WRITE, on=run_path())
def set_tags(run_id: str, body: TagsSet, store: StoreDep, actor: Actor) -> None:
    runs.set_tags(store, run_id=run_id, tags=body.tags, actor=actor)


@router.delete("/{run_id}/tags/{key:path}", status_code=204)
@allow(Level.WRITE, on=run_path())
def delete_tag(run_id: str, key: str, store: StoreDep, actor: Actor) -> None:
    """Remove a tag; ``key`` may contain "/" (any tag key that can be set can be removed)."""
    runs.set_tags(store, run_id=run_id, tags={}, remove=[key], actor=actor)


@router.post(
    "/{run_id}/batch",
    status_code=204,
    openapi_extra=batch_body(BatchLog),
)
@allow(Level.WRITE, on=run_path())
async def log_batch(
    run_id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    actor: Actor,
    idempotency_key: IdempotencyKey = None,
) -> None:
    """Metric points (rows or columns), params and tags in one transaction.

    NaN and infinities are sent as the strings "NaN", "Infinity" and "-Infinity". Points may
    also be sent as an Arrow IPC stream (Content-Type application/vnd.apache.arrow.stream)
    with columns key, value and optionally step and timestamp. Send an
    ``Idempotency-Key`` header (the SDK does): a batch sent again with the same key, e.g. a
    retry after a lost response, is a no-op, so retries never duplicate points.
    """
    await batches.ingest_batch(
        store,
        run_id=run_id,
        raw=await request.body(),
        content_type=request.headers.get("content-type", ""),
        max_points=settings.max_batch_points,
        actor=actor,
        batch_key=idempotency_key,
    )


@router.get("/{run_id}/metric-history", response_model=MetricHistory, responses=HISTORY_RESPONSES)
@allow(Level.READ, on=run_path())
def metric_history(
    run_id: str, key: Annotated[str, Query(min_length=1, max_length=250)], request: Request,
    store: StoreDep, format: FormatQ = "json", axis: AxisQ = "step", start: Start = None,
    end: End = None, limit: Limit = None, page_token: PageToken = None,
) -> Response:  # fmt: skip
    """The points of one metric ordered by step then timestamp, all or those whose step (or
    time, with ``axis=time``) lies in [start, end], a page at a time: up to ``limit`` points,
    then ``next_page_token`` names the next page. ``format=arrow`` streams an Arrow IPC stream
    with columns step, timestamp, value."""
    page = series.metric_history(
        store, run_id=run_id, key=key, fmt=format, axis=axis, start=start, end=end,
        limit=limit, page_token=page_token,
    )  # fmt: skip
    return history_response(request, page, format)
