from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.api.deps import StoreDep
from modelyard.schemas import ChangePublic
from modelyard.services import changes

router = APIRouter(prefix="/changes", tags=["changes"])


@router.get("")
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
    return changes.list_changes(
        store, urn=urn, actor=actor, since=since, until=until, before_id=before_id, limit=limit
    )
