"""A plugin that uses every hook but the analyzers': an API route and a page with its own
template, a mount with an MLflow-like error shape, a CLI subcommand, and an event handler.

Loaded by name through ``MODELYARD_PLUGINS=tests.sample_plugin``. The handler keeps events in
``RECEIVED``; a server process started by the tests appends them to the file named by
``SAMPLE_PLUGIN_EVENT_LOG`` instead, pausing ``SAMPLE_PLUGIN_EVENT_SLEEP`` seconds on each.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from modelyard.api.deps import CurrentUser, StoreDep
from modelyard.authz import Level, allow
from modelyard.errors import NotFound
from modelyard.events import DomainEvent
from modelyard.hookspecs import hookimpl
from modelyard.routing import ErrorInfo, Routes, route_class
from modelyard.schemas import ProjectCreate, ProjectPublic
from modelyard.services import projects
from modelyard.web.templating import render

RECEIVED: list[DomainEvent] = []

api = APIRouter(prefix="/api/v1/sample")


@api.post("/projects/{name}", status_code=201)
@allow(Level.CREATE)
def create_sample_project(name: str, store: StoreDep, user: CurrentUser) -> ProjectPublic:
    """A write from a plugin: its actor comes from the current user."""
    return projects.create_project(store, body=ProjectCreate(name=name), actor=user.actor)


@api.get("/missing")
@allow(Level.SIGNED_IN)
def missing() -> None:
    raise NotFound("the sample plugin has nothing here")


@api.get("/broken")
@allow(Level.SIGNED_IN)
def broken() -> None:
    raise RuntimeError("a bug in the plugin")


pages = APIRouter()


@pages.get("/sample")
@allow(Level.SIGNED_IN)
def sample_page(request: Request, store: StoreDep, user: CurrentUser) -> HTMLResponse:
    context = {"user": user.name, "projects": len(projects.list_projects(store, readable=None))}
    return render(request, "sample_page.html", context)


@pages.get("/sample/missing")
@allow(Level.SIGNED_IN)
def missing_page() -> None:
    raise NotFound("the sample plugin has no such page")


@pages.get("/sample/broken")
@allow(Level.SIGNED_IN)
def broken_page() -> None:
    raise RuntimeError("a bug in the plugin's page")


@pages.get("/api/v1/sample/page-among-the-api")
@allow(Level.SIGNED_IN)
def page_among_the_api() -> None:
    """A page whose path looks like the API's: its errors are still a page's."""
    raise NotFound("this page has nothing to show")


def mlflow_errors(request: Request, error: ErrorInfo) -> Response:
    """MLflow's error shape: ``{"error_code": ..., "message": ...}``."""
    codes = {404: "RESOURCE_DOES_NOT_EXIST", 405: "ENDPOINT_NOT_FOUND"}
    code = codes.get(error.status, "INVALID_PARAMETER_VALUE")
    return JSONResponse(
        {"error_code": code, "message": error.message},
        status_code=error.status,
        headers=dict(error.headers),
    )


mlflow = APIRouter(prefix="/sample-mlflow/api/2.0/mlflow", route_class=route_class(mlflow_errors))


@mlflow.get("/experiments/get")
@allow(Level.SIGNED_IN)
def get_experiment(experiment_id: int) -> dict[str, object]:
    raise NotFound(f"no experiment with id {experiment_id}")


@hookimpl
def register_routes() -> list[Routes]:
    return [
        Routes(api),
        Routes(pages, errors="page", template_dirs=[Path(__file__).parent / "templates"]),
        Routes(mlflow),
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("sample-greet")
    @click.argument("name")
    @click.option("--shout", is_flag=True)
    def greet(name: str, shout: bool) -> None:
        """Greet someone (a sample plugin command)."""
        text = f"hello, {name}"
        click.echo(text.upper() if shout else text)


@hookimpl
def on_event(event: DomainEvent) -> None:
    log = os.environ.get("SAMPLE_PLUGIN_EVENT_LOG")
    if not log:
        RECEIVED.append(event)
        return
    with open(log, "a") as out:
        out.write(f"{os.getpid()} {event.id} {event.urn}\n")
    time.sleep(float(os.environ.get("SAMPLE_PLUGIN_EVENT_SLEEP", "0")))
