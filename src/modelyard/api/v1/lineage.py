from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelyard.api.deps import Actor, StoreDep
from modelyard.schemas import LineagePublic, RunInputs, RunOutputs, TimeseriesBatch
from modelyard.services import lineage, timeseries

router = APIRouter(tags=["lineage"])


@router.post("/runs/{run_id}/inputs")
def log_inputs(run_id: str, body: RunInputs, store: StoreDep, actor: Actor) -> list[str]:
    """Datasets and artifacts the run consumed; returns their URNs."""
    return lineage.log_inputs(store, run_id=run_id, body=body, actor=actor)


@router.post("/runs/{run_id}/outputs")
def log_outputs(run_id: str, body: RunOutputs, store: StoreDep, actor: Actor) -> list[str]:
    """Models and datasets the run produced; returns their URNs."""
    return lineage.log_outputs(store, run_id=run_id, body=body, actor=actor)


@router.get("/lineage")
def get_lineage(
    urn: str,
    store: StoreDep,
    upstream: Annotated[int, Query(ge=0, le=20)] = 3,
    downstream: Annotated[int, Query(ge=0, le=20)] = 3,
) -> LineagePublic:
    """The lineage graph around an entity, N hops upstream and downstream."""
    return lineage.get_lineage(store, urn=urn, upstream=upstream, downstream=downstream)


@router.post("/timeseries", status_code=201)
def record_events(body: TimeseriesBatch, store: StoreDep, actor: Actor) -> dict[str, int]:
    return {"recorded": timeseries.record_events(store, events=body.events, actor=actor)}


@router.get("/timeseries")
def read_events(
    urn: str,
    name: str,
    store: StoreDep,
    start: int | None = None,
    end: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
) -> list[dict[str, Any]]:
    return timeseries.read_events(store, urn=urn, name=name, start=start, end=end, limit=limit)
