"""Evaluation pages: one evaluation's results and panels, a run's evaluations, several
evaluations side by side, and the exact confusion matrices at any threshold that the threshold
slider of both pages asks for (as JSON, under ``/charts/``)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from jinja2 import Environment
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from modelyard.analyzers.base import Panel
from modelyard.analyzers.binary import HISTOGRAM_BINS, ThresholdTable, histograms
from modelyard.api.deps import ArtifactsDep, PluginsDep, StoreDep
from modelyard.artifacts.local import LocalArtifactStore
from modelyard.errors import InvalidInput
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.schemas import EvaluationPublic
from modelyard.services import evaluations, runs
from modelyard.web.templating import compressed, render

router = APIRouter()
chart_router = APIRouter()  # JSON for the pages' scripts: errors in the API's shape

MAX_COMPARED = 8
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563")
POSITIVE, NEGATIVE = "#dc2626", "#2563eb"
THRESHOLD_STEPS = 1000
# Panels of the binary analyzer that get a marker moved by the threshold slider, and which
# fields of a threshold point it sits at (x, y).
MARKED_PANELS = {"ROC curve": ("fpr", "recall"), "Precision-recall curve": ("recall", "precision")}
HIGHER_IS_BETTER = re.compile(
    r"^(roc_auc.*|average_precision|accuracy|balanced_accuracy|top_\d+_accuracy|"
    r"(precision|recall|f1)_(macro|micro|weighted)|r2|explained_variance|ks|.*_ratio)$"
)
LOWER_IS_BETTER = re.compile(
    r"^(log_loss|brier|mae|mse|rmse|median_absolute_error|max_error|mape|.*_difference)$"
)
KEY_METRICS = {
    "binary": ("roc_auc", "average_precision", "log_loss"),
    "multiclass": ("accuracy", "f1_macro", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
Direction = Literal["higher", "lower", ""]


def direction(key: str) -> Direction:
    """Which way a headline metric improves; "" for counts and shares (rows, prevalence)."""
    if HIGHER_IS_BETTER.match(key):
        return "higher"
    if LOWER_IS_BETTER.match(key):
        return "lower"
    return ""


@dataclass(slots=True)
class Loaded:
    """One evaluation with what its pages show: the stored results and, for a binary task,
    the full threshold table (memory-mapped, shared by every request)."""

    ev: EvaluationPublic
    result: dict[str, Any]
    table: ThresholdTable | None
    label: str
    color: str

    @property
    def binary(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.result.get("binary")
        return found


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


def load(store: Store, files: LocalArtifactStore, ids: list[str]) -> list[Loaded]:
    evs = evaluations.get_evaluations(store, evaluation_ids=ids)
    out = []
    for i, (ev, label) in enumerate(zip(evs, _labels(evs), strict=True)):
        table = None
        if "thresholds" in ev.files:
            table = evaluations.THRESHOLDS.get(files.locate(ev.run_id, ev.files["thresholds"]))
        result = evaluations.evaluation_result(files, ev)
        out.append(Loaded(ev, result, table, label, PALETTE[i % len(PALETTE)]))
    return out


# --- the threshold control
def threshold_control(items: list[Loaded]) -> dict[str, Any] | None:
    """The slider's range (all models' scores; [0, 1] when every model gives probabilities),
    its start (the first evaluation's decision threshold) and the exact matrices there."""
    binary = [i for i in items if i.table is not None and i.binary is not None]
    if not binary:
        return None
    if all(i.binary is not None and i.binary["probabilities"] for i in binary):
        lo, hi = 0.0, 1.0
    else:
        lo = min(float(i.table.thresholds[-1]) for i in binary if i.table is not None)
        hi = max(float(i.table.thresholds[0]) for i in binary if i.table is not None)
        hi = hi if hi > lo else lo + 1.0
    value = min(max(binary[0].ev.threshold, lo), hi)
    return {
        "min": lo,
        "max": hi,
        "step": float(f"{(hi - lo) / THRESHOLD_STEPS:.3g}"),
        "value": value,
        "ids": [i.ev.id for i in binary],
        "models": [
            {"id": i.ev.id, "label": i.label, "color": i.color, "point": point(i, value)}
            for i in binary
        ],
    }


def point(item: Loaded, threshold: float) -> dict[str, Any]:
    assert item.table is not None
    return item.table.at(threshold)


def marker_trace(models: list[dict[str, Any]], x: str, y: str) -> dict[str, Any]:
    """The points of every model at the slider's threshold; evaluations.js moves them."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "at threshold",
        "x": [m["point"][x] for m in models],
        "y": [m["point"][y] for m in models],
        "customdata": [plotly_text(m["label"]) for m in models],
        "marker": {
            "size": 12,
            "color": [m["color"] for m in models],
            "line": {"width": 2, "color": "#ffffff"},
        },
        "hovertemplate": "%{customdata}<br>" + x + " %{x:.4f}<br>" + y + " %{y:.4f}<extra></extra>",
    }


def plotly_text(text: str) -> str:
    """User text for a Plotly label: Plotly reads a few HTML tags in labels, so escape them."""
    return html.escape(text, quote=False)


# --- metrics
def metric_rows(items: list[Loaded]) -> list[dict[str, Any]]:
    """Per headline metric (analyzer, key): each evaluation's value, its delta from the first
    and whether it is the best of them."""
    keys = list(dict.fromkeys((a, k) for i in items for a, m in i.ev.metrics.items() for k in m))
    rows = []
    for analyzer, key in keys:
        values = [i.ev.metrics.get(analyzer, {}).get(key) for i in items]
        way = direction(key)
        present = [v for v in values if v is not None]
        best = None
        if way and len(set(present)) > 1:
            best = max(present) if way == "higher" else min(present)
        base = values[0]
        cells = []
        for n, v in enumerate(values):
            delta = None if v is None or base is None or n == 0 else v - base
            gain = (
                None if delta is None or not way or delta == 0 else (delta > 0) == (way == "higher")
            )
            cells.append(
                {"value": v, "delta": delta, "gain": gain, "best": v is not None and v == best}
            )
        rows.append({"analyzer": analyzer, "key": key, "direction": way, "cells": cells})
    return rows


def notes(result: dict[str, Any]) -> list[str]:
    """Every analyzer's notes, fairness ones per group column included."""
    found: list[str] = []
    for part in result.values():
        found += part.get("notes") or []
        for column in part.get("columns") or []:
            found += column.get("notes") or []
    return found


# --- figures
def _curve_trace(
    item: Loaded, x: list[Any], y: list[Any], thresholds: list[Any], name: str
) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines", "name": plotly_text(name), "x": x, "y": y,
        "customdata": thresholds, "line": {"color": item.color, "width": 2},
        "hovertemplate": plotly_text(item.label) + "<br>(%{x:.4f}, %{y:.4f})<br>"
                         "threshold %{customdata:.4g}<extra></extra>",
    }  # fmt: skip


def overlay_figure(items: list[Loaded], control: dict[str, Any], kind: str) -> dict[str, Any]:
    """ROC ("roc") or precision-recall ("pr") curves of every model in one chart, with the
    marker trace last."""
    data = []
    for item in items:
        assert item.binary is not None
        curve = item.binary["curves"].get(kind)
        if curve is None:
            continue
        metrics = item.binary["metrics"]
        if kind == "roc":
            name = f"{item.label} (AUC {metrics['roc_auc']:.4f})"
            data.append(_curve_trace(item, curve["fpr"], curve["tpr"], curve["threshold"], name))
        else:
            name = f"{item.label} (AP {metrics['average_precision']:.4f})"
            trace = _curve_trace(
                item, curve["recall"], curve["precision"], curve["threshold"], name
            )
            data.append(trace | {"line": {"color": item.color, "width": 2, "shape": "hv"}})
    if kind == "roc":
        data.append({"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1],
                     "y": [0, 1], "line": {"dash": "dot", "width": 1, "color": "#9ca3af"},
                     "hoverinfo": "skip"})  # fmt: skip
    x, y = MARKED_PANELS["ROC curve" if kind == "roc" else "Precision-recall curve"]
    data.append(marker_trace(control["models"], x, y))
    titles = (
        ("false positive rate", "true positive rate") if kind == "roc" else ("recall", "precision")
    )
    layout = {
        "xaxis": {"title": {"text": titles[0]}, "range": [0, 1]},
        "yaxis": {"title": {"text": titles[1]}, "range": [0, 1.02]},
        "hovermode": "closest",
        "uirevision": kind,
    }
    return {"data": data, "layout": layout, "marker": {"trace": len(data) - 1, "x": x, "y": y}}


def shared_edges(items: list[Loaded], control: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Bin edges common to every model: the slider's range (all scores) in equal bins."""
    return np.linspace(control["min"], control["max"], HISTOGRAM_BINS + 1)


def histogram_figure(item: Loaded, edges: np.ndarray[Any, Any], threshold: float) -> dict[str, Any]:
    """Scores of one model by actual label, counted exactly from its threshold table."""
    assert item.table is not None
    h = histograms(item.table, edges)
    mids = ((edges[:-1] + edges[1:]) / 2).tolist()
    bounds = np.column_stack([edges[:-1], edges[1:]]).tolist()
    data = [
        {"type": "bar", "name": label, "x": mids, "y": h[key], "width": float(edges[1] - edges[0]),
         "customdata": bounds, "marker": {"color": color}, "opacity": 0.6,
         "hovertemplate": "score %{customdata[0]:.4g} to %{customdata[1]:.4g}<br>%{y:,} " + label
                          + "<extra></extra>"}
        for label, key, color in (("actual negatives", "negatives", NEGATIVE),
                                  ("actual positives", "positives", POSITIVE))
    ]  # fmt: skip
    layout = {
        "barmode": "overlay",
        "xaxis": {"title": {"text": "score"}, "range": [float(edges[0]), float(edges[-1])]},
        "yaxis": {"title": {"text": "weighted count" if item.ev.weighted else "count"}},
        "shapes": [threshold_line(threshold)],
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "margin": {"l": 52, "r": 12, "t": 28, "b": 38},
    }
    return {"data": data, "layout": layout}


def threshold_line(threshold: float) -> dict[str, Any]:
    return {"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1, "yref": "paper",
            "line": {"dash": "dash", "width": 1.5, "color": "#6b7280"}}  # fmt: skip


def with_marker(panel: Panel, control: dict[str, Any] | None) -> dict[str, Any] | None:
    """A binary panel's figure with the slider's marker added, if it is a marked panel."""
    if panel.figure is None or control is None or panel.title not in MARKED_PANELS:
        return None
    x, y = MARKED_PANELS[panel.title]
    data = [*panel.figure["data"], marker_trace(control["models"], x, y)]
    return {
        "data": data,
        "layout": panel.figure["layout"],
        "marker": {"trace": len(data) - 1, "x": x, "y": y},
    }


def panel_blocks(
    env: Environment,
    plugins: Plugins,
    name: str,
    result: dict[str, Any],
    control: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """An analyzer's panels ready for the page: a figure for the chart macro (with the slider's
    marker where it belongs) or the HTML of the panel's template rendered with its context."""
    blocks = []
    for panel in plugins.analyzer(name).panels(result):
        block: dict[str, Any] = {
            "title": panel.title,
            "wide": panel.wide,
            "figure": None,
            "html": None,
        }
        marked = with_marker(panel, control) if name == "binary" else None
        if marked is not None:
            block["figure"] = {"data": marked["data"], "layout": marked["layout"]}
            block["marker"] = marked["marker"]
        elif panel.figure is not None:
            block["figure"] = panel.figure
        elif panel.template is not None:
            block["html"] = Markup(env.get_template(panel.template).render(panel.context))
        blocks.append(block)
    return blocks


# --- pages
@router.get("/evaluations/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    store: StoreDep,
    files: ArtifactsDep,
    e: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
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
    return render(request, "evaluations_compare.html", compare_context(items))


def compare_context(items: list[Loaded]) -> dict[str, Any]:
    control = threshold_control(items)
    context: dict[str, Any] = {
        "nav": "projects",
        "charts": True,
        "items": items,
        "task": items[0].ev.task,
        "datasets": list(dict.fromkeys(i.ev.dataset or "(none)" for i in items)),
        "projects": sorted({i.ev.project for i in items}),
        "metrics": metric_rows(items),
        "control": control,
        "fairness": fairness_columns(items),
        "roc": None,
        "pr": None,
        "histograms": [],
    }
    if control is not None:
        binary = [i for i in items if i.table is not None and i.binary is not None]
        context["roc"] = overlay_figure(binary, control, "roc")
        context["pr"] = overlay_figure(binary, control, "pr")
        edges = shared_edges(binary, control)
        context["histograms"] = [(i, histogram_figure(i, edges, control["value"])) for i in binary]
    return context


def fairness_columns(items: list[Loaded]) -> list[dict[str, Any]]:
    """Per group column found in any evaluation: each evaluation's report of it."""
    names = list(dict.fromkeys(
        c["column"] for i in items for c in (i.result.get("fairness") or {}).get("columns", [])
    ))  # fmt: skip
    out = []
    for name in names:
        reports = []
        for i in items:
            columns = (i.result.get("fairness") or {}).get("columns", [])
            found = next((c for c in columns if c["column"] == name), None)
            if found is not None:
                reports.append((i, found))
        out.append({"column": name, "reports": reports})
    return out


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
def evaluation_page(
    request: Request, evaluation_id: str, store: StoreDep, files: ArtifactsDep, plugins: PluginsDep
) -> HTMLResponse:
    item = load(store, files, [evaluation_id])[0]
    control = threshold_control([item])
    env: Environment = request.app.state.templates
    sections = [
        {
            "name": name,
            "title": plugins.analyzer(name).title,
            "result": item.result[name],
            "headline": item.ev.metrics.get(name, {}),
            "panels": panel_blocks(env, plugins, name, item.result[name], control),
        }
        for name in item.ev.analyzers
        if name in item.result
    ]
    context = {
        "nav": "projects",
        "charts": True,
        "item": item,
        "ev": item.ev,
        "notes": notes(item.result),
        "sections": sections,
        "control": control,
        "direction": direction,
    }
    return render(request, "evaluation.html", context)


@router.get("/runs/{run_id}/evaluations", response_class=HTMLResponse)
def run_evaluations(request: Request, run_id: str, store: StoreDep) -> HTMLResponse:
    """A run's evaluations with boxes to pick some to compare; htmx gets the list alone."""
    run = runs.get_run(store, run_id=run_id)
    context = {
        "nav": "projects",
        "run": run,
        "evaluations": evaluations.list_evaluations(store, run_id=run_id),
        "key_metrics": KEY_METRICS,
    }
    fragment = bool(request.headers.get("hx-request"))
    return render(
        request, "_evaluation_list.html" if fragment else "_evaluation_run_page.html", context
    )


@chart_router.get("/charts/evaluations/thresholds")
def thresholds(
    request: Request,
    store: StoreDep,
    files: ArtifactsDep,
    e: Annotated[list[str], Query(min_length=1, max_length=MAX_COMPARED)],
    t: Annotated[float, Query(allow_inf_nan=False)],
) -> Response:
    """The exact confusion matrix and rates of each binary evaluation ``e`` when scores >= ``t``
    are called positive: what the threshold slider shows."""
    found = []
    for ev in evaluations.get_evaluations(store, evaluation_ids=list(dict.fromkeys(e))):
        (at,) = evaluations.thresholds_of(files, ev, [t])
        found.append({"id": ev.id, **at.model_dump()})
    body = orjson.dumps({"threshold": t, "evaluations": found})
    return compressed(request, body, Response, media_type="application/json")
