"""Dependencies shared by the API routers and the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from modelyard.artifacts.base import ArtifactStore
from modelyard.authz import readable_projects
from modelyard.errors import Unauthenticated
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.services.access.principals import Principal
from modelyard.settings import Settings


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


async def get_current_user(request: Request) -> Principal:
    """The principal :func:`modelyard.authz.authorize` resolved for this request (routes open
    to anonymous callers do not take this)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthenticated("sign in, or send an API token as 'Authorization: Bearer <token>'")
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def get_actor(user: CurrentUser) -> str:
    """Who acts, for the change log: the user's name, and how they acted (a token, a proxy)."""
    return user.actor


async def get_readable(request: Request) -> frozenset[int] | None:
    return readable_projects(request)


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PluginsDep = Annotated[Plugins, Depends(get_plugins)]
# The current user's name; the same seam as CurrentUser, kept for routes that need only that.
Actor = Annotated[str, Depends(get_actor)]
# The projects the caller may read (None: all of them), for routes that list across projects.
Readable = Annotated[frozenset[int] | None, Depends(get_readable)]
# A client's key for one request: the same request sent again with it (a retry after a lost
# answer) is a no-op.
IdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
