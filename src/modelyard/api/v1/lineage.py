from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.api.deps import Actor, Readable, StoreDep
from modelyard.api.openapi import UrnQuery
from modelyard.authz import (
    Level,
    allow,
    run_path,
    urn_query,
)
from modelyard.schemas import LineagePublic, RunInputs, RunOutputs
from modelyard.services import lineage

router = APIRouter(tags=["lineage"])


@router.post("/runs/{run_id}/inputs")
@allow(Level.WRITE, on=run_path())
def log_inputs(run_id: str, body: RunInputs, store: StoreDep, actor: Actor) -> list[str]:
    """Datasets and artifacts the run consumed; returns their URNs."""
    return lineage.log_inputs(store, run_id=run_id, body=body, actor=actor)


@router.post("/runs/{run_id}/outputs")
@allow(Level.WRITE, on=run_path())
def log_outputs(run_id: str, body: RunOutputs, store: StoreDep, actor: Actor) -> list[str]:
    """Models and datasets the run produced; returns their URNs."""
    return lineage.log_outputs(store, run_id=run_id, body=body, actor=actor)


@router.get("/lineage")
@allow(Level.READ, on=urn_query())
def get_lineage(
    urn: UrnQuery,
    store: StoreDep,
    readable: Readable,
    upstream: Annotated[int, Query(ge=0, le=20)] = 3,
    downstream: Annotated[int, Query(ge=0, le=20)] = 3,
) -> LineagePublic:
    """The lineage graph around an entity, N hops upstream and downstream."""
    return lineage.get_lineage(
        store, urn=urn, upstream=upstream, downstream=downstream, readable=readable
    )
