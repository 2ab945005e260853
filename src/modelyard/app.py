"""The application factory: nothing connects or reads configuration at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request

from modelyard._version import __version__
from modelyard.api.openapi import install_openapi
from modelyard.artifacts.base import make_artifact_store
from modelyard.authz import Level, allow, authorize
from modelyard.body_limits import BoundedBodies
from modelyard.guards import install_guards
from modelyard.metadata.engine import ensure_schema, make_engine
from modelyard.metadata.store import Store
from modelyard.plugins import make_plugins
from modelyard.routing import (
    ErrorRenderer,
    Routes,
    add_fallback,
    add_options,
    install_error_handlers,
    json_errors,
    mount,
    refuse_nul,
)
from modelyard.services.access.accounts import count_users
from modelyard.services.access.principals import Access
from modelyard.services.dispatcher import Dispatcher
from modelyard.services.liveness import LostRunSweeper
from modelyard.services.periodic import Periodic
from modelyard.services.statistics import PlannerStatistics
from modelyard.services.upload_sweeper import UploadSweeper
from modelyard.settings import Settings
from modelyard.web import install_web, page_errors

health = APIRouter(include_in_schema=False)


@health.get("/healthz")
@allow(Level.PUBLIC)
def healthz(request: Request) -> dict[str, object]:
    """Liveness, and how event delivery is going (counts capped, so the probe stays cheap)."""
    dispatcher: Dispatcher = request.app.state.dispatcher
    return {"status": "ok", "version": __version__, "events": dispatcher.health()}


def mount_routes(app: FastAPI, families: list[Routes]) -> None:
    """Every family (built-ins first), then, after all of them, the fallbacks of those mounted
    under a prefix, so an unknown path there still answers in that family's shape."""
    shapes: dict[str, ErrorRenderer] = {"json": json_errors, "page": page_errors}
    fallbacks: dict[str, ErrorRenderer] = {}
    for family in [Routes(health), *families]:
        renderer = shapes[family.errors] if isinstance(family.errors, str) else family.errors
        own = getattr(family.router.route_class, "error_renderer", None)
        mount(app, family, renderer)
        if family.router.prefix:
            fallbacks.setdefault(family.router.prefix, own or renderer)
    for prefix, renderer in fallbacks.items():
        add_fallback(app, prefix, renderer)
    add_options(app, "/{rest:anypath}")


def make_dispatcher(store: Store, app: FastAPI, settings: Settings) -> Dispatcher:
    return Dispatcher(
        store,
        app.state.plugins.manager.hook.on_event,
        poll_interval=settings.event_poll_interval,
        handler_timeout=settings.event_handler_timeout,
        max_attempts=settings.event_max_attempts,
        retention_hours=settings.event_retention_hours,
    )


def refuse_unguarded(app: FastAPI) -> None:
    """A server reachable beyond loopback needs someone who can sign in and manage it."""
    settings: Settings = app.state.settings
    if settings.local_mode:
        return
    _, admins = count_users(app.state.store)
    if admins == 0:
        raise RuntimeError(NO_ADMIN.format(host=settings.host))


NO_ADMIN = (
    "modelyard will not serve on {host} (beyond this machine) without a site admin to sign "
    "in: create one first with `modelyard users add NAME --admin` (it asks for a password), "
    "with the same MODELYARD_DATABASE_URL or --data-dir as the server"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Deliver events, remove what cut-short uploads left, mark runs whose client went silent
    lost and keep the planner's statistics current, in the background, while the server
    runs."""
    dispatcher: Dispatcher = app.state.dispatcher
    periodic: list[Periodic] = [
        app.state.upload_sweeper,
        app.state.lost_run_sweeper,
        app.state.planner_statistics,
    ]
    refuse_unguarded(app)
    run = app.state.settings.event_dispatcher
    for work in periodic:
        work.start()
    if run:
        dispatcher.start()
    try:
        yield
    finally:
        if run:
            await asyncio.to_thread(dispatcher.stop)
        for work in periodic:
            await asyncio.to_thread(work.stop)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: engine, schema (migrated on first start), stores, plugins and routes."""
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
    if settings.auto_migrate:
        ensure_schema(engine)
    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Tracking, evaluation, review, deployment and health of ML models.",
        docs_url=None,  # the portal serves /docs (vendored Swagger UI, offline)
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
    )
    app.add_middleware(BoundedBodies)
    app.state.settings = settings
    app.state.store = Store(engine)
    app.state.artifacts = make_artifact_store(settings)
    app.state.upload_sweeper = UploadSweeper(app.state.artifacts, settings.upload_grace_seconds)
    app.state.lost_run_sweeper = LostRunSweeper(app.state.store, settings.run_lost_after_seconds)
    app.state.planner_statistics = PlannerStatistics(engine)
    app.state.plugins = make_plugins(modules=settings.plugins)
    app.state.dispatcher = make_dispatcher(app.state.store, app, settings)
    app.state.access = Access(
        app.state.store,
        idle_ms=int(settings.session_idle_minutes * 60_000),
        absolute_ms=int(settings.session_max_hours * 3_600_000),
    )
    install_guards(app, settings)
    app.router.dependencies.append(Depends(authorize))
    install_error_handlers(app, default=page_errors)
    install_openapi(app)
    install_web(app)
    mount_routes(app, app.state.plugins.routes)
    return app
