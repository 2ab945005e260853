"""Series of any entity (telemetry and the like): write a batch, read a history, a range, a
reduced range for charts, the latest values. A run's metrics read the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from modelyard.api.deps import Actor, IdempotencyKey, SettingsDep, StoreDep
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
from modelyard.api.openapi import SeriesUrnPath, UrnPath, batch_body
from modelyard.authz import (
    Level,
    allow,
    urn_path,
)
from modelyard.schemas import (
    MetricHistory,
    SeriesBatch,
    SeriesLatest,
    SeriesRecorded,
    SeriesReduced,
)
from modelyard.services import batches, timeseries

router = APIRouter(prefix="/series", tags=["series"])
Key = Annotated[str, Query(min_length=1, max_length=250)]
JSON = "application/json"


@router.post(
    "/{urn:path}/batch",
    status_code=201,
    openapi_extra=batch_body(SeriesBatch),
)
@allow(Level.WRITE, on=urn_path())
async def record_batch(
    urn: SeriesUrnPath,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    actor: Actor,
    idempotency_key: IdempotencyKey = None,
) -> SeriesRecorded:
    """Points of an entity's series, as rows, columns or an Arrow IPC stream, in one
    transaction: the same shapes as a run's metric batch. A batch sent again with the same
    ``Idempotency-Key`` header is a no-op (``recorded`` is then 0)."""
    n = await batches.ingest_series_batch(
        store, urn=urn, raw=await request.body(),
        content_type=request.headers.get("content-type", ""),
        max_points=settings.max_batch_points, actor=actor, batch_key=idempotency_key,
    )  # fmt: skip
    return SeriesRecorded(recorded=n)


@router.get("/{urn:path}/history", response_model=MetricHistory, responses=HISTORY_RESPONSES)
@allow(Level.READ, on=urn_path())
def history(
    urn: UrnPath, key: Key, request: Request, store: StoreDep, format: FormatQ = "json",
    axis: AxisQ = "step", start: Start = None, end: End = None, limit: Limit = None,
    page_token: PageToken = None,
) -> Response:  # fmt: skip
    """The points of a series ordered by step then time, all or those whose step (or time,
    with ``axis=time``) lies in [start, end], a page at a time: up to ``limit`` points, then
    ``next_page_token`` names the next page; ``format=arrow`` streams an Arrow IPC stream."""
    page = timeseries.history(
        store, urn=urn, key=key, fmt=format, axis=axis, start=start, end=end, limit=limit,
        page_token=page_token,
    )  # fmt: skip
    return history_response(request, page, format)


@router.get("/{urn:path}/reduced", response_model=SeriesReduced)
@allow(Level.READ, on=urn_path())
def reduced(
    urn: UrnPath,
    key: Key,
    store: StoreDep,
    x0: float | None = None,
    x1: float | None = None,
    points: Annotated[int, Query(ge=10, le=20_000)] = 1500,
) -> Response:
    """A series within [x0, x1] reduced for a chart: each bucket's first, lowest and highest
    point kept; NaN and infinities counted, not drawn."""
    body = timeseries.reduced(store, urn=urn, key=key, x0=x0, x1=x1, points=points)
    return Response(body, media_type=JSON)


@router.get("/{urn:path}/latest")
@allow(Level.READ, on=urn_path())
def latest(
    urn: UrnPath, store: StoreDep, key: Annotated[list[str] | None, Query()] = None
) -> dict[str, SeriesLatest]:
    """The latest point of each series of an entity (highest step, then latest time)."""
    return timeseries.latest(store, urn=urn, keys=key)
