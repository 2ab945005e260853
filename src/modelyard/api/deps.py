"""Dependencies shared by the API routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelyard.artifacts.base import ArtifactStore
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.settings import Settings

LOCAL_USER = "local"


# Dependencies are coroutines on purpose: FastAPI runs plain functions in its thread pool,
# and a thread hop per dependency costs more than everything they do.
async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_artifacts(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts


async def get_plugins(request: Request) -> Plugins:
    plugins: Plugins = request.app.state.plugins
    return plugins


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_actor(request: Request) -> str:
    """Who is acting. Local mode has one implicit user."""
    return LOCAL_USER


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PluginsDep = Annotated[Plugins, Depends(get_plugins)]
Actor = Annotated[str, Depends(get_actor)]
