"""Dependencies shared by the API routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelyard.artifacts.local import LocalArtifactStore
from modelyard.metadata.store import Store
from modelyard.settings import Settings

LOCAL_USER = "local"


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_artifacts(request: Request) -> LocalArtifactStore:
    artifacts: LocalArtifactStore = request.app.state.artifacts
    return artifacts


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_actor(request: Request) -> str:
    """Who is acting. Local mode has one implicit user."""
    return LOCAL_USER


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[LocalArtifactStore, Depends(get_artifacts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Actor = Annotated[str, Depends(get_actor)]
