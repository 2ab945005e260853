from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from modelyard.api.deps import StoreDep
from modelyard.schemas import AspectVersion
from modelyard.services import entities

router = APIRouter(prefix="/entities/{urn}", tags=["entities"])


@router.get("/aspects")
def list_aspects(urn: str, store: StoreDep) -> dict[str, Any]:
    return entities.list_aspects(store, urn=urn)


@router.get("/aspects/{aspect}/versions")
def aspect_versions(urn: str, aspect: str, store: StoreDep) -> list[AspectVersion]:
    """Every version of an aspect, oldest first: the audit trail of that facet."""
    return entities.get_aspect_history(store, urn=urn, aspect=aspect)
