"""Projects: the list, and each project's runs table with filter, sort, columns and compare."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import StoreDep
from modelyard.errors import InvalidInput
from modelyard.schemas import RunPage, RunSearch
from modelyard.services import projects, search
from modelyard.web.runs_table import Column, choose_columns, pager_links, sort_link
from modelyard.web.templating import render

router = APIRouter()
PAGE_SIZES = (25, 50, 100, 200)


@router.get("/projects", response_class=HTMLResponse)
def project_list(request: Request, store: StoreDep) -> HTMLResponse:
    return render(
        request, "projects.html", {"nav": "projects", "projects": projects.list_projects(store)}
    )


@router.get("/projects/{ref:path}", response_class=HTMLResponse)
def project_page(
    request: Request,
    ref: str,
    store: StoreDep,
    filter: Annotated[str, Query(max_length=10_000)] = "",
    order: Annotated[str, Query(max_length=1000)] = "",
    col: Annotated[list[str] | None, Query()] = None,
    page: Annotated[str | None, Query(max_length=10_000)] = None,
    trail: Annotated[list[str] | None, Query()] = None,
    size: Annotated[int, Query()] = 50,
) -> HTMLResponse:
    project = projects.get_project(store, ref=ref)
    keys = projects.project_keys(store, project_id=project.id)
    columns: list[Column] = choose_columns(keys, col)
    size = size if size in PAGE_SIZES else 50
    error = None
    result = RunPage(runs=[], next_page_token=None)
    try:
        req = RunSearch(
            project=project.name,
            filter=filter,
            order_by=[order] if order.strip() else [],
            page_size=size,
            page_token=page or None,
        )
        result = search.search_runs(store, req=req)
    except InvalidInput as exc:
        error = exc.message
    state = {"filter": filter, "order": order, "col": [c.field for c in columns], "size": size}
    context = {
        "nav": "projects",
        "project": project,
        "keys": keys,
        "columns": columns,
        "runs": result.runs,
        "error": error,
        "state": state,
        "pages": pager_links(state, page, trail or [], result.next_page_token),
        "sort_link": lambda field: sort_link(state, field),
        "page_sizes": PAGE_SIZES,
        "charts": False,
    }
    return render(request, "project.html", context, status=400 if error else 200)
