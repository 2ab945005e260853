"""Home: my recent runs, pipelines running now, projects and recent activity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Actor, Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
)
from modelyard.metadata.store import Store
from modelyard.schemas import RunSearch
from modelyard.services import changes, projects, search, steps
from modelyard.services.search_grammar import quote_string
from modelyard.web.change_rows import change_rows
from modelyard.web.templating import render

router = APIRouter()
RUNNING = 10  # pipelines shown running
LOST = 5  # runs shown lost (their client has gone silent), most recently heard from first
LOST_FILTER = "attributes.status = 'lost'"
MY_RUNS = 10
RECENT_CHANGES = 15


def home_context(store: Store, actor: str, readable: frozenset[int] | None) -> dict[str, Any]:
    mine = RunSearch(filter=f"attributes.created_by = {quote_string(actor)}", page_size=MY_RUNS)
    recent = changes.labelled_changes(store, limit=RECENT_CHANGES, values=True, readable=readable)
    return {
        "nav": "home",
        "actor": actor,
        "my_runs": search.search_runs(store, req=mine, readable=readable).runs,
        **running_context(store, readable),
        "projects": projects.list_projects(store, readable=readable, headlines=False),
        "rows": change_rows(recent.changes, recent.values),
        "labels": recent.labels,
    }


@router.get("/", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def home(request: Request, store: StoreDep, actor: Actor, readable: Readable) -> HTMLResponse:
    return render(request, "home.html", home_context(store, actor, readable))


@router.get("/fragments/running", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def running_fragment(request: Request, store: StoreDep, readable: Readable) -> HTMLResponse:
    """The running-pipelines panel, polled by the home page while anything runs."""
    return render(request, "_running.html", running_context(store, readable))


def running_context(store: Store, readable: frozenset[int] | None) -> dict[str, Any]:
    """The runs running now with their steps, and apart from them the runs whose client has
    gone silent (lost), which are not running as far as anyone knows."""
    lost = RunSearch(filter=LOST_FILTER, order_by=["last_heartbeat desc"], page_size=LOST)
    found = search.search_runs(store, req=lost, readable=readable)
    return {
        "running": steps.running_pipelines(store, limit=RUNNING, readable=readable),
        "lost": found.runs,
        "more_lost": found.next_page_token is not None,
        "lost_filter": LOST_FILTER,
    }
