from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelyard.api.deps import Actor, StoreDep
from modelyard.schemas import (
    AspectVersion,
    ChangePublic,
    LineagePublic,
    RunInputs,
    RunOutputs,
)
from modelyard.services import catalog

router = APIRouter(tags=["lineage"])


@router.post("/runs/{run_id}/inputs")
def log_inputs(run_id: str, body: RunInputs, store: StoreDep, actor: Actor) -> list[str]:
    """Datasets and artifacts the run consumed; returns their URNs."""
    return catalog.log_inputs(store, run_id=run_id, body=body, actor=actor)


@router.post("/runs/{run_id}/outputs")
def log_outputs(run_id: str, body: RunOutputs, store: StoreDep, actor: Actor) -> list[str]:
    """Models and datasets the run produced; returns their URNs."""
    return catalog.log_outputs(store, run_id=run_id, body=body, actor=actor)


@router.get("/lineage")
def get_lineage(
    urn: str,
    store: StoreDep,
    upstream: Annotated[int, Query(ge=0, le=20)] = 3,
    downstream: Annotated[int, Query(ge=0, le=20)] = 3,
) -> LineagePublic:
    """The lineage graph around an entity, N hops upstream and downstream."""
    return catalog.get_lineage(store, urn=urn, upstream=upstream, downstream=downstream)


@router.get("/entities/{urn}/aspects")
def list_aspects(urn: str, store: StoreDep) -> dict[str, Any]:
    return catalog.list_aspects(store, urn=urn)


@router.get("/entities/{urn}/aspects/{aspect}/versions")
def aspect_versions(urn: str, aspect: str, store: StoreDep) -> list[AspectVersion]:
    """Every version of an aspect, oldest first: the audit trail of that facet."""
    return catalog.get_aspect_history(store, urn=urn, aspect=aspect)


@router.get("/changes")
def list_changes(
    store: StoreDep,
    urn: str | None = None,
    actor: str | None = None,
    since: Annotated[int | None, Query(ge=0)] = None,
    until: Annotated[int | None, Query(ge=0)] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ChangePublic]:
    """The change log, newest first; page with ``before_id``; ``since`` and ``until``
    (epoch ms, inclusive) bound it in time."""
    return catalog.list_changes(
        store, urn=urn, actor=actor, since=since, until=until, before_id=before_id, limit=limit
    )
