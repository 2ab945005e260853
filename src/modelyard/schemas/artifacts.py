"""Artifacts (files a run logged)."""

from __future__ import annotations

from pydantic import BaseModel


class ArtifactPublic(BaseModel):
    run_id: str
    urn: str
    path: str
    step: str | None
    size: int
    sha256: str
    media_type: str
    kind: str | None
    created_at: int
