"""Chart data for the pages: figures as JSON, reduced on the server to what a chart can show."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from modelyard.api.deps import StoreDep
from modelyard.authz import (
    Level,
    allow,
    runs_query,
)
from modelyard.services.series import metric_series
from modelyard.web.charts import metric_figure
from modelyard.web.templating import compressed

router = APIRouter()


@router.get("/charts/metric")
@allow(Level.READ, on=runs_query("run"))
def metric_chart(
    request: Request,
    store: StoreDep,
    key: Annotated[str, Query(min_length=1, max_length=250)],
    run: Annotated[list[str], Query(min_length=1)],
    x0: float | None = None,
    x1: float | None = None,
    points: Annotated[int, Query(ge=10, le=20_000)] = 1500,
) -> Response:
    """One metric's history for one or more runs, with ``x0``/``x1`` for a zoomed range."""
    data = metric_series(store, run_ids=run, key=key, x0=x0, x1=x1, points=points)
    body = orjson.dumps(metric_figure(data, run), option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"Cache-Control": "no-store"}
    return compressed(request, body, Response, headers=headers, media_type="application/json")
