"""Evaluation pages: one evaluation's results and panels, a run's evaluations, several
evaluations side by side, and the answers of analyzers' side-table queries that live controls
(such as the binary threshold slider) ask for (as JSON, under ``/charts/``).

Everything analyzer-specific comes through the analyzer contract (headline metrics and their
directions, notes, panels, comparison panels, queries); nothing here knows any analyzer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from jinja2 import Environment
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from modelyard.analyzers.base import OTHER_GROUP, Analyzer, EvaluationView, MetricSpec, Panel
from modelyard.api.deps import ArtifactsDep, PluginsDep, StoreDep
from modelyard.artifacts.base import ArtifactStore
from modelyard.authz import (
    Level,
    allow,
    evaluation_path,
    evaluations_query,
    may,
    run_path,
)
from modelyard.errors import InvalidInput
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.schemas import EvaluationPublic
from modelyard.services import evaluations, runs
from modelyard.web.colors import series_colors
from modelyard.web.templating import compressed, render

router = APIRouter()
chart_router = APIRouter()  # JSON for the pages' scripts: errors in the API's shape

MAX_COMPARED = 8


@dataclass(slots=True)
class Loaded:
    """One evaluation with what its pages show: the stored results of every analyzer, and its
    label and colour among the evaluations on the page."""

    ev: EvaluationPublic
    result: dict[str, Any]
    label: str
    color: str


def _labels(evs: list[EvaluationPublic]) -> list[str]:
    """Names that tell the evaluations apart: their own names, else their runs', else both."""
    for names in (
        [e.name for e in evs],
        [e.run_name for e in evs],
        [f"{e.run_name} / {e.name}" for e in evs],
    ):
        if len(set(names)) == len(names):
            return names
    return [f"{e.run_name} / {e.name} #{i + 1}" for i, e in enumerate(evs)]


def load(store: Store, files: ArtifactStore, ids: list[str]) -> list[Loaded]:
    evs = evaluations.get_evaluations(store, evaluation_ids=ids)
    colors = series_colors([e.run_id for e in evs])  # each run's colour, as on every page
    return [
        Loaded(ev, evaluations.evaluation_result(files, ev), label, color)
        for ev, label, color in zip(evs, _labels(evs), colors, strict=True)
    ]


def view(
    files: ArtifactStore, item: Loaded, name: str, chosen: float | None = None
) -> EvaluationView:
    """The evaluation as the analyzer ``name`` sees it (``chosen``: the page's threshold)."""
    ev = item.ev
    return EvaluationView(
        id=ev.id, label=item.label, color=item.color, task=ev.task, threshold=ev.threshold,
        weighted=ev.weighted, result=item.result.get(name) or {},
        metrics=ev.metrics.get(name) or {},
        side_table=lambda table: evaluations.side_table(files, ev, table), chosen=chosen,
    )  # fmt: skip


def chosen_threshold(raw: str | None) -> float | None:
    """The threshold the page's address asks for; None (the default) for anything that is not
    a finite number, which the page ignores rather than refuses."""
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _analyzers(plugins: Plugins, items: list[Loaded]) -> list[Analyzer]:
    """The installed analyzers that made any of these evaluations, in their order."""
    names = dict.fromkeys(n for i in items for n in i.ev.analyzers if n in i.result)
    return [plugins.analyzers[n] for n in names if n in plugins.analyzers]


def ordered(plugins: Plugins, analyzer: str, keys: list[str]) -> list[str]:
    """Metric keys in the order the analyzer declares them, undeclared ones after."""
    found = plugins.analyzers.get(analyzer)
    declared = [m.key for m in found.metrics] if found is not None else []
    rank = {k: i for i, k in enumerate(declared)}
    return sorted(keys, key=lambda k: rank.get(k, len(rank)))


def _spec(plugins: Plugins, analyzer: str, key: str) -> MetricSpec:
    found = plugins.analyzers.get(analyzer)
    return found.metric(key) if found is not None else MetricSpec(key)


def key_metrics(request: Request, ev: EvaluationPublic) -> list[tuple[str, float]]:
    """The metrics a list of evaluations shows for ``ev``: every analyzer's summary ones."""
    plugins: Plugins = request.app.state.plugins
    shown = []
    for name, values in ev.metrics.items():
        for key in ordered(plugins, name, list(values)):
            spec, value = _spec(plugins, name, key), values[key]
            if spec.summary and value is not None:
                shown.append((spec.label, value))
    return shown


KEY_METRICS = key_metrics  # the name the models and upload pages pass to the list template


# --- metrics
def _cells(values: list[float | None], way: str) -> list[dict[str, Any]]:
    """Each value with its delta from the first and whether it is the best of them."""
    present = [v for v in values if v is not None]
    best = None
    if way != "none" and len(set(present)) > 1:
        best = max(present) if way == "higher" else min(present)
    cells = []
    for n, v in enumerate(values):
        base = values[0]
        delta = None if v is None or base is None or n == 0 else v - base
        gain = (
            None
            if delta is None or way == "none" or delta == 0
            else (delta > 0) == (way == "higher")
        )
        cells.append(
            {"value": v, "delta": delta, "gain": gain, "best": v is not None and v == best}
        )
    return cells


Live = dict[str, dict[str, dict[str, float | None]]]  # analyzer → evaluation id → key → value


def _row_keys(analyzer: Analyzer | None, stored: list[str], live: bool) -> list[str]:
    """The keys shown for an analyzer: declared ones (threshold-dependent ones when there are
    live values) in its order, then undeclared stored ones."""
    declared = analyzer.metrics if analyzer is not None else ()
    known = {m.key for m in declared}
    shown = [m.key for m in declared if (live if m.query else m.key in stored)]
    return shown + [k for k in stored if k not in known]


def metric_rows(plugins: Plugins, items: list[Loaded], live: Live) -> list[dict[str, Any]]:
    """Per metric (analyzer, key): its spec and each evaluation's cell; a metric that depends
    on the page's threshold takes its values from ``live`` (and says at which threshold, from
    the field "threshold" there)."""
    found = dict.fromkeys((a, k) for i in items for a, m in i.ev.metrics.items() for k in m)
    shown = {a for a, _ in found} | set(live)
    ran = dict.fromkeys([*(a for i in items for a in i.ev.analyzers), *shown])  # in their order
    names = [n for n in ran if n in shown]
    rows = []
    for name in names:
        analyzer = plugins.analyzers.get(name)
        title = analyzer.title if analyzer is not None else name
        stored = [k for b, k in found if b == name]
        for key in _row_keys(analyzer, stored, name in live):
            spec = _spec(plugins, name, key)
            at = [live.get(name, {}).get(i.ev.id, {}) for i in items]
            if spec.query:
                values = [found_at.get(key) for found_at in at]
            else:
                values = [i.ev.metrics.get(name, {}).get(key) for i in items]
            rows.append({"analyzer": name, "analyzer_title": title, "key": key, "spec": spec,
                         "cells": _cells(values, spec.direction), "ids": [i.ev.id for i in items],
                         "thresholds": [found_at.get("threshold") for found_at in at]})  # fmt: skip
    return rows


def metric_sections(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline metrics first, then each analyzer's other metrics under the groups its
    specs name, in the order it first names them ("Other", for metrics without one, last)."""
    analyzers: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["spec"].headline:
            continue
        found = analyzers.setdefault(
            row["analyzer"], {"name": row["analyzer"], "title": row["analyzer_title"], "groups": {}}
        )
        found["groups"].setdefault(row["spec"].group or OTHER_GROUP, []).append(row)
    for found in analyzers.values():
        groups = found["groups"]
        titles = [g for g in groups if g != OTHER_GROUP] + [g for g in groups if g == OTHER_GROUP]
        found["groups"] = [{"title": g, "rows": groups[g]} for g in titles]
    headline = [r for r in rows if r["spec"].headline]
    return {"headline": headline, "analyzers": list(analyzers.values())}


def live_metrics(analyzers: list[Analyzer], views: dict[str, list[EvaluationView]]) -> Live:
    """Each analyzer's threshold-dependent metrics where the page's threshold starts."""
    live = {a.name: a.metrics_at(views[a.name]) for a in analyzers}
    return {name: values for name, values in live.items() if values}


def notes(plugins: Plugins, item: Loaded) -> list[str]:
    """Every analyzer's notes."""
    return [n for a in _analyzers(plugins, [item]) for n in a.notes(item.result[a.name])]


# --- panels
def panel_block(env: Environment, panel: Panel) -> dict[str, Any]:
    """A panel ready for the page: a figure for the chart macro (with its live marker, if
    any) or the HTML of the panel's template rendered with its context."""
    html = None
    if panel.figure is None and panel.template is not None:
        html = Markup(env.get_template(panel.template).render(panel.context))
    return {"title": panel.title, "wide": panel.wide, "figure": panel.figure,
            "marker": panel.marker, "block": panel.block, "html": html}  # fmt: skip


def section(env: Environment, analyzer: Analyzer, panels: list[Panel]) -> dict[str, Any]:
    blocks = [panel_block(env, p) for p in panels]
    return {
        "name": analyzer.name,
        "title": analyzer.title,
        "blocks": [b for b in blocks if b["block"]],
        "panels": [b for b in blocks if not b["block"]],
    }


def evaluation_context(
    env: Environment, plugins: Plugins, files: ArtifactStore, item: Loaded, chosen: float | None
) -> dict[str, Any]:
    analyzers = _analyzers(plugins, [item])
    views = {a.name: [view(files, item, a.name, chosen)] for a in analyzers}
    sections = [section(env, a, a.evaluation_panels(views[a.name][0])) for a in analyzers]
    rows = metric_rows(plugins, [item], live_metrics(analyzers, views))
    return {"nav": "projects", "charts": True, "item": item, "ev": item.ev,
            "notes": notes(plugins, item), "sections": sections,
            "metrics": metric_sections(rows)}  # fmt: skip


def compare_context(
    env: Environment,
    plugins: Plugins,
    files: ArtifactStore,
    items: list[Loaded],
    chosen: float | None,
) -> dict[str, Any]:
    analyzers = _analyzers(plugins, items)
    views = {
        a.name: [view(files, i, a.name, chosen) for i in items if a.name in i.result]
        for a in analyzers
    }
    sections = []
    for analyzer in analyzers:
        found = section(env, analyzer, analyzer.comparison_panels(views[analyzer.name]))
        if found["blocks"] or found["panels"]:
            sections.append(found)
    return {
        "nav": "projects",
        "charts": True,
        "items": items,
        "task": items[0].ev.task,
        "datasets": list(dict.fromkeys(i.ev.dataset or "(none)" for i in items)),
        "projects": sorted({i.ev.project for i in items}),
        "metrics": metric_sections(metric_rows(plugins, items, live_metrics(analyzers, views))),
        "sections": sections,
    }


def compared(store: Store, files: ArtifactStore, e: list[str] | None) -> list[Loaded]:
    """Two to eight distinct evaluations of one task, loaded; anything else is refused."""
    ids = list(dict.fromkeys(e or []))
    if len(ids) < 2:
        raise InvalidInput(
            "pick at least two evaluations to compare (tick them in a run's evaluations list)"
        )
    if len(ids) > MAX_COMPARED:
        raise InvalidInput(
            f"at most {MAX_COMPARED} evaluations can be compared at once; {len(ids)} were picked"
        )
    items = load(store, files, ids)
    tasks = sorted({i.ev.task for i in items})
    if len(tasks) > 1:
        raise InvalidInput(
            f"these evaluations are of different tasks ({', '.join(tasks)}); "
            "only evaluations of the same task can be compared"
        )
    return items


# --- pages
@router.get("/evaluations/compare", response_class=HTMLResponse)
@allow(Level.READ, on=evaluations_query("e"))
def compare_page(
    request: Request,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    e: Annotated[list[str] | None, Query()] = None,
    threshold: str | None = None,
) -> HTMLResponse:
    items = compared(store, files, e)
    chosen = chosen_threshold(threshold)
    context = compare_context(request.app.state.templates, plugins, files, items, chosen)
    return render(request, "evaluations_compare.html", context)


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
@allow(Level.READ, on=evaluation_path())
def evaluation_page(
    request: Request,
    evaluation_id: str,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    threshold: str | None = None,
) -> HTMLResponse:
    """One evaluation; ``threshold`` (from the address) is where its threshold controls start."""
    item = load(store, files, [evaluation_id])[0]
    chosen = chosen_threshold(threshold)
    context = evaluation_context(request.app.state.templates, plugins, files, item, chosen)
    return render(request, "evaluation.html", context)


@router.get("/runs/{run_id}/evaluations", response_class=HTMLResponse)
@allow(Level.READ, on=run_path())
def run_evaluations(request: Request, run_id: str, store: StoreDep) -> HTMLResponse:
    """A run's evaluations with boxes to pick some to compare; htmx gets the list alone."""
    run = runs.get_run(store, run_id=run_id)
    context = {
        "nav": "projects",
        "run": run,
        "evaluations": evaluations.list_evaluations(store, run_id=run_id),
        "key_metrics": KEY_METRICS,
        "can_upload": may(request, Level.WRITE, run.project_id),
    }
    fragment = bool(request.headers.get("hx-request"))
    return render(
        request, "_evaluation_list.html" if fragment else "_evaluation_run_page.html", context
    )


@chart_router.get("/charts/evaluations/{query}")
@allow(Level.READ, on=evaluations_query("e"))
def live_query(
    request: Request,
    query: str,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    e: Annotated[list[str], Query(min_length=1, max_length=MAX_COMPARED)],
) -> Response:
    """Every evaluation ``e``'s answer to an analyzer's side-table query, combined by that
    analyzer: e.g. ``thresholds?e=...&t=0.4``, the exact confusion matrices the threshold
    slider shows."""
    params = evaluations.query_string(request.query_params.multi_items(), drop=("e",))
    answer = evaluations.answer_queries(
        store, files, plugins, evaluation_ids=e, name=query, params=params
    )
    return compressed(request, orjson.dumps(answer), Response, media_type="application/json")
