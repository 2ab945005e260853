"""Dependencies shared by the API routers and the pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

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


@dataclass(frozen=True, slots=True)
class User:
    """Who is acting: every write records this user's ``name`` as its actor."""

    name: str


IMPLICIT_USER = User(name=LOCAL_USER)


async def get_current_user(request: Request) -> User:
    """The user behind the request. Until users and tokens exist (the access issue), everyone
    is the implicit local user."""
    return IMPLICIT_USER


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_actor(user: CurrentUser) -> str:
    """The current user's name, for routes that only record who acted."""
    return user.name


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PluginsDep = Annotated[Plugins, Depends(get_plugins)]
# The current user's name; the same seam as CurrentUser, kept for routes that need only that.
Actor = Annotated[str, Depends(get_actor)]
# A client's key for one request: the same request sent again with it (a retry after a lost
# answer) is a no-op.
IdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
