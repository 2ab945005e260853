from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from modelyard.api.deps import StoreDep
from modelyard.api.openapi import UrnPath
from modelyard.authz import (
    Level,
    allow,
    urn_path,
)
from modelyard.schemas import AspectVersion
from modelyard.services import entities

router = APIRouter(prefix="/entities/{urn}", tags=["entities"])


@router.get("/aspects")
@allow(Level.READ, on=urn_path())
def list_aspects(urn: UrnPath, store: StoreDep) -> dict[str, Any]:
    return entities.list_aspects(store, urn=urn)


AspectName = Annotated[str, Path(json_schema_extra={"enum": entities.ASPECT_NAMES})]


@router.get("/aspects/{aspect}/versions")
@allow(Level.READ, on=urn_path())
def aspect_versions(urn: UrnPath, aspect: AspectName, store: StoreDep) -> list[AspectVersion]:
    """Every version of an aspect, oldest first: the audit trail of that facet."""
    return entities.get_aspect_history(store, urn=urn, aspect=aspect)
