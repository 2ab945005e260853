"""Projects: the list, and each project's runs table with filter, sort, columns and compare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    project_path,
)
from modelyard.errors import InvalidInput
from modelyard.metadata.store import Store
from modelyard.schemas import RunPage, RunSearch
from modelyard.services import headlines, projects, search
from modelyard.web.runs_table import (
    Column,
    choose_columns,
    column_groups,
    pager_links,
    sort_link,
    table_cells,
)
from modelyard.web.templating import render

router = APIRouter()
PAGE_SIZES = (25, 50, 100, 200)


@router.get("/projects", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def project_list(request: Request, store: StoreDep, readable: Readable) -> HTMLResponse:
    context = {
        "nav": "projects",
        "projects": projects.list_projects(store, readable=readable),
        "headline_how": f"Over each project's latest {headlines.RECENT_RUNS:,} finished runs. "
        + headlines.EXPLANATION,
    }
    return render(request, "projects.html", context)


@dataclass(frozen=True, slots=True)
class TableQuery:
    """What the runs table is asked to show: filter, order, columns and which page."""

    filter: str = ""
    order: str = ""
    col: list[str] | None = None
    page: str | None = None
    trail: list[str] | None = None
    size: int = 50


def _search(store: Store, project: str, q: TableQuery, size: int) -> tuple[RunPage, str | None]:
    """A page of the project's runs, or none and what is wrong with the filter or order."""
    try:
        req = RunSearch(
            project=project,
            filter=q.filter,
            order_by=[q.order] if q.order.strip() else [],
            page_size=size,
            page_token=q.page or None,
        )
        return search.search_runs(store, req=req, readable=None), None  # one project, checked
    except InvalidInput as exc:
        return RunPage(runs=[], next_page_token=None), exc.message


def project_context(store: Store, ref: str, q: TableQuery) -> dict[str, Any]:
    project = projects.get_project(store, ref=ref)
    keys = projects.project_keys(store, project_id=project.id)
    columns: list[Column] = choose_columns(keys, q.col)
    size = q.size if q.size in PAGE_SIZES else 50
    result, error = _search(store, project.name, q, size)
    cells = table_cells(columns, result.runs)
    state = {"filter": q.filter, "order": q.order, "col": [c.field for c in columns], "size": size}
    return {
        "nav": "projects",
        "project": project,
        "keys": keys,
        "columns": columns,
        "groups": column_groups(columns),
        "cells": cells,
        "rows": list(zip(result.runs, cells.rows, strict=True)),
        "error": error,
        "unknown_keys": search.unknown_keys(q.filter, keys) if not error else [],
        "state": state,
        "pages": pager_links(state, q.page, q.trail or [], result.next_page_token),
        "sort_link": lambda field: sort_link(state, field),
        "page_sizes": PAGE_SIZES,
        "charts": False,
    }


@router.get("/projects/{ref:path}", response_class=HTMLResponse)
@allow(Level.READ, on=project_path())
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
    """A project's runs table: filter, sort, choose columns, page, and pick runs to compare."""
    q = TableQuery(filter, order, col, page, trail, size)
    context = project_context(store, ref, q)
    return render(request, "project.html", context, status=400 if context["error"] else 200)
