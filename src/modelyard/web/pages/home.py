"""Home: my recent runs, pipelines running now, projects and recent activity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Actor, StoreDep
from modelyard.metadata.store import Store
from modelyard.schemas import RunPublic, RunSearch, StepPublic
from modelyard.services import catalog, projects, search, steps
from modelyard.services.search_grammar import quote_string
from modelyard.web.templating import render

router = APIRouter()


def running_pipelines(store: Store, limit: int = 10) -> list[tuple[RunPublic, list[StepPublic]]]:
    req = RunSearch(filter="attributes.status = 'running'", page_size=limit)
    found = search.search_runs(store, req=req).runs
    by_run = steps.steps_of_runs(store, run_ids=[run.run_id for run in found])
    return [(run, by_run[run.run_id]) for run in found]


def recent_activity(store: Store, limit: int) -> dict[str, Any]:
    changes = catalog.list_changes(
        store, urn=None, actor=None, since=None, before_id=None, limit=limit
    )
    labels = catalog.entity_labels(store, urns=[c.urn for c in changes])
    return {"changes": changes, "labels": labels}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, store: StoreDep, actor: Actor) -> HTMLResponse:
    mine = search.search_runs(
        store, req=RunSearch(filter=f"attributes.created_by = {quote_string(actor)}", page_size=10)
    ).runs
    context = {
        "nav": "home",
        "actor": actor,
        "my_runs": mine,
        "running": running_pipelines(store),
        "projects": projects.list_projects(store),
        **recent_activity(store, 15),
    }
    return render(request, "home.html", context)


@router.get("/fragments/running", response_class=HTMLResponse)
def running_fragment(request: Request, store: StoreDep) -> HTMLResponse:
    """The running-pipelines panel, polled by the home page while anything runs."""
    return render(request, "_running.html", {"running": running_pipelines(store)})
