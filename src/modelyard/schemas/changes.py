"""An entity's aspect versions and the change log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class AspectVersion(BaseModel):
    version: int
    value: dict[str, Any]
    created_at: int
    created_by: str
    created_for: str | None


class ChangePublic(BaseModel):
    id: int
    urn: str
    aspect: str
    version: int
    previous_version: int | None
    actor: str
    created_at: int
    # How the actor acted when not in person: "token ci (#3)", "proxy"; None in person.
    via: str | None = None
