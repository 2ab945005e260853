from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
)
from modelyard.schemas import ChangePublic, Natural, Serial
from modelyard.services import changes

router = APIRouter(prefix="/changes", tags=["changes"])


@router.get("")
@allow(Level.SIGNED_IN)
def list_changes(
    store: StoreDep,
    readable: Readable,
    urn: str | None = None,
    actor: str | None = None,
    since: Natural | None = None,
    until: Natural | None = None,
    before_id: Serial | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ChangePublic]:
    """The change log, newest first; page with ``before_id``; ``since`` and ``until``
    (epoch ms, inclusive) bound it in time."""
    return changes.list_changes(
        store,
        urn=urn,
        actor=actor,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
        readable=readable,
    )
