"""Comparison of runs, and the global search box."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    runs_query,
)
from modelyard.errors import InvalidInput
from modelyard.metadata.store import Store
from modelyard.schemas import RunPublic, RunSearch
from modelyard.services import comparisons, entities, projects, runs, search, series
from modelyard.services.search_grammar import quote_string
from modelyard.services.series import MAX_RUNS
from modelyard.web.colors import series_colors
from modelyard.web.pages.evaluations import MAX_COMPARED
from modelyard.web.templating import render
from modelyard.web.urls import entity_page

router = APIRouter()
LOWER_IS_BETTER = re.compile(r"loss|err|mse|mae|rmse|brier|perplexity|latency|time|duration", re.I)
RUN_ID = re.compile(r"[0-9a-f]{32}")
PARTIAL_RUN_ID = re.compile(r"[0-9a-f]{4,31}")  # as copied from a log line or a short listing
# Text that reads as a filter is run as one (and its mistakes reported); other text is a name.
FILTER_WORDS = re.compile(
    r"[=<>!]|\b(like|ilike|in|is)\b|^\s*(metrics|params|tags|attributes)\.", re.I
)


def lower_is_better(key: str) -> bool:
    """Whether a smaller value of this metric is the better one (losses, errors, times)."""
    return bool(LOWER_IS_BETTER.search(key))


def _numeric(run: RunPublic, key: str) -> float | None:
    point = run.metrics.get(key)
    if point is None or isinstance(point.value, str):
        return None
    return point.value


# A run that has not ended (a lost one may yet come back) has a partial value: it is never
# called the best, only "best so far (running)" when it leads every run compared.
UNENDED = frozenset({"running", "lost"})


def metric_rows(compared: list[RunPublic]) -> list[dict[str, Any]]:
    """Per metric: each run's value, its delta from the first run, the best of the runs that
    have ended, and a running run whose partial value leads them all ("best so far")."""
    keys = sorted({k for r in compared for k in r.metrics})
    settled = [r.status not in UNENDED for r in compared]
    rows = []
    for key in keys:
        values = [_numeric(r, key) for r in compared]
        low = lower_is_better(key)
        present = [v for v in values if v is not None]
        ended = [v for v, done in zip(values, settled, strict=True) if v is not None and done]
        differ = len(set(present)) > 1
        pick = min if low else max
        leader = pick(present) if differ else None
        # the best of the ended runs, when it beats another ended run or leads everyone
        best = pick(ended) if ended and (len(set(ended)) > 1 or pick(ended) == leader) else None
        base = values[0]
        rows.append(
            {
                "key": key,
                "lower_is_better": low,
                "cells": [
                    {
                        "value": r.metrics[key].value if key in r.metrics else None,
                        "delta": None if v is None or base is None or i == 0 else v - base,
                        "best": done and best is not None and v == best,
                        "best_so_far": not done and leader is not None and v == leader,
                    }
                    for i, (r, v, done) in enumerate(zip(compared, values, settled, strict=True))
                ],
            }
        )
    return rows


def param_rows(compared: list[RunPublic]) -> list[dict[str, Any]]:
    keys = sorted({k for r in compared for k in r.params})
    return [
        {
            "key": key,
            "by_run": [r.params.get(key) for r in compared],
            "differs": len({r.params.get(key) for r in compared}) > 1,
        }
        for key in keys
    ]


def compare_context(store: Store, run_ids: list[str], only_diff: bool) -> dict[str, Any]:
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise InvalidInput(
            "pick at least two runs to compare (tick them in a project's runs table)"
        )
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"at most {MAX_RUNS} runs can be compared at once; {len(ids)} were picked"
        )
    compared = runs.get_runs(store, run_ids=ids)
    params = param_rows(compared)
    metrics = metric_rows(compared)
    extents = series.metric_extents(store, run_ids=ids)
    histories = {k for e in extents.values() for k, x in e.items() if series.has_history(x)}
    charted = [m["key"] for m in metrics if m["key"] in histories]
    return {
        "nav": "projects",
        "charts": bool(charted),
        "runs": compared,
        "colors": series_colors([r.run_id for r in compared]),
        "charted": charted,
        "running": any(r.status in UNENDED for r in compared),
        "params": [p for p in params if p["differs"]] if only_diff else params,
        "param_total": len(params),
        "only_diff": only_diff,
        "metrics": metrics,
        "projects": sorted({r.project for r in compared}),
        "run_query": "&".join(f"run={r.run_id}" for r in compared),
        "evaluations": comparisons.for_runs(store, runs=compared, limit=MAX_COMPARED),
    }


@router.get("/compare", response_class=HTMLResponse)
@allow(Level.READ, on=runs_query("run"))
def compare(
    request: Request,
    store: StoreDep,
    run: Annotated[list[str] | None, Query()] = None,
    only_diff: bool = False,
) -> HTMLResponse:
    """Runs side by side: their params (or only those that differ) and metrics."""
    return render(request, "compare.html", compare_context(store, run or [], only_diff))


def _runs_matching(
    store: Store, q: str, page: str | None, readable: frozenset[int] | None
) -> tuple[Any, str | None, str]:
    """Runs for the search box: the text as a filter if it is one, else a name search."""
    as_filter = bool(FILTER_WORDS.search(q))
    if not as_filter and page is None and PARTIAL_RUN_ID.fullmatch(q):
        by_id = RunSearch(filter=f"attributes.run_id like {quote_string(q + '%')}", page_size=50)
        found = search.search_runs(store, req=by_id, readable=readable)
        if found.runs:
            return found.runs, None, "run id"
    how = "filter" if as_filter else "name"
    text = q if as_filter else f"name ilike {quote_string('%' + _like_escape(q) + '%')}"
    req = RunSearch(filter=text, order_by=["start_time desc"], page_size=50, page_token=page)
    found = search.search_runs(store, req=req, readable=readable)
    return found.runs, found.next_page_token, how


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_context(
    store: Store, q: str, page: str | None, readable: frozenset[int] | None
) -> dict[str, Any]:
    """Projects, datasets and models whose name holds the text, and matching runs."""
    context: dict[str, Any] = {"search_q": q, "error": None, "runs": [], "next": None}
    context.update(projects=[], entities=[], how="")
    if not q:
        return context
    needle = q.lower()
    context["projects"] = [
        p
        for p in projects.list_projects(store, readable=readable, headlines=False)
        if needle in p.name.lower()
    ]
    urns = entities.find_entities(store, text=q)
    labels = entities.entity_labels(store, urns=urns)
    context["entities"] = [(u, labels[u]) for u in urns]
    try:
        context["runs"], context["next"], context["how"] = _runs_matching(store, q, page, readable)
    except InvalidInput as exc:
        context["error"] = exc.message
    return context


@router.get("/search", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def global_search(
    request: Request,
    store: StoreDep,
    readable: Readable,
    q: Annotated[str, Query(max_length=10_000)] = "",
    page: Annotated[str | None, Query(max_length=10_000)] = None,
) -> Response:
    """The search box: an entity's URN or a run's id goes straight to its page."""
    q = q.strip()
    if q.startswith("urn:modelyard:"):
        return RedirectResponse(entity_page(q), status_code=303)
    if RUN_ID.fullmatch(q):
        return RedirectResponse(f"/runs/{q}", status_code=303)
    context = search_context(store, q, page, readable)
    if context["how"] == "run id" and len(context["runs"]) == 1 and not context["projects"]:
        return RedirectResponse(f"/runs/{context['runs'][0].run_id}", status_code=303)
    return render(request, "search.html", context)
