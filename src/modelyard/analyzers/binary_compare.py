"""The binary analyzer on the pages: the fixed confusion matrices, the threshold slider with
its live table, ROC and PR charts whose markers follow the slider, and, for several
evaluations, the overlaid curves and the score distributions on shared bins.

The slider asks ``/charts/evaluations/thresholds`` (the "thresholds" query of every model's
stored threshold table); evaluations.js updates the cells and moves the markers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelyard.analyzers.base import EvaluationView, Panel, plotly_text
from modelyard.analyzers.binary import (
    HISTOGRAM_BINS,
    ThresholdTable,
    histograms,
    threshold_from_arrow,
)
from modelyard.analyzers.binary_panels import threshold_label, threshold_line
from modelyard.schemas import ThresholdPoint

POSITIVE, NEGATIVE = "#dc2626", "#2563eb"
THRESHOLD_STEPS = 1000
ENDPOINT = "/charts/evaluations/thresholds"
# Panels that get a marker moved by the threshold slider, and which fields of a threshold
# point it sits at (x, y).
MARKED_PANELS = {"ROC curve": ("fpr", "recall"), "Precision-recall curve": ("recall", "precision")}
# Panels whose first threshold line (and its label) moves with the slider.
LINE_PANELS = {"Score distribution by actual label"}


class RocCurve(BaseModel):
    fpr: list[float]
    tpr: list[float]
    threshold: list[float | None]


class PrCurve(BaseModel):
    recall: list[float]
    precision: list[float]
    threshold: list[float]


class Curves(BaseModel):
    model_config = ConfigDict(extra="ignore")
    roc: RocCurve | None = None
    pr: PrCurve | None = None


class BinaryResult(BaseModel):
    """What the pages read of a stored binary result."""

    model_config = ConfigDict(extra="ignore")
    metrics: dict[str, float | None]
    default_threshold: float
    f1_optimal_threshold: float | None
    at_default: ThresholdPoint
    at_f1_optimal: ThresholdPoint | None
    curves: Curves
    probabilities: bool
    weighted: bool


@dataclass(slots=True)
class Model:
    """One binary evaluation on a page: its view, typed result and full threshold table."""

    view: EvaluationView
    result: BinaryResult
    table: ThresholdTable


def models(items: list[EvaluationView]) -> list[Model]:
    out = []
    for item in items:
        stored = item.side_table("thresholds")
        if stored is not None:
            result = BinaryResult.model_validate(item.result)
            out.append(Model(item, result, threshold_from_arrow(stored)))
    return out


# --- the threshold control
def threshold_control(found: list[Model]) -> dict[str, Any]:
    """The slider's range (all models' scores; [0, 1] when every model gives probabilities),
    its start (the first evaluation's decision threshold) and the exact matrices there."""
    if all(m.result.probabilities for m in found):
        lo, hi = 0.0, 1.0
    else:
        lo = min(float(m.table.thresholds[-1]) for m in found)
        hi = max(float(m.table.thresholds[0]) for m in found)
        hi = hi if hi > lo else lo + 1.0
    chosen = found[0].view.chosen
    if chosen is not None and lo <= chosen <= hi:
        value = chosen
    else:  # none asked for, or outside the scores' range: the evaluation's own threshold
        value = min(max(found[0].view.threshold, lo), hi)
    return {
        "endpoint": ENDPOINT,
        "min": lo,
        "max": hi,
        "step": float(f"{(hi - lo) / THRESHOLD_STEPS:.3g}"),
        "value": value,
        "ids": [m.view.id for m in found],
        "models": [
            {"id": m.view.id, "label": m.view.label, "color": m.view.color,
             "point": m.table.at(value)}
            for m in found
        ],
    }  # fmt: skip


def metrics_at(items: list[EvaluationView], keys: list[str]) -> dict[str, dict[str, float | None]]:
    """Each evaluation's ``keys`` of its threshold point where the slider starts."""
    found = models(items)
    if not found:
        return {}
    control = threshold_control(found)
    return {m["id"]: {k: m["point"].get(k) for k in keys} for m in control["models"]}


def marker_trace(control: dict[str, Any], x: str, y: str) -> dict[str, Any]:
    """The points of every model at the slider's threshold; evaluations.js moves them."""
    found = control["models"]
    return {
        "type": "scatter",
        "mode": "markers",
        "name": f"chosen threshold {control['value']:.4g}",
        "x": [m["point"][x] for m in found],
        "y": [m["point"][y] for m in found],
        "customdata": [plotly_text(m["label"]) for m in found],
        "marker": {
            "size": 12,
            "color": [m["color"] for m in found],
            "line": {"width": 2, "color": "#ffffff"},
        },
        "hovertemplate": "%{customdata}<br>" + x + " %{x:.4f}<br>" + y + " %{y:.4f}<extra></extra>",
    }


def with_marker(panel: Panel, control: dict[str, Any]) -> Panel:
    """A panel with the slider's marker added, if it is a marked panel; its first threshold
    line put at the slider's threshold, if it is a panel with one."""
    if panel.figure is not None and panel.title in LINE_PANELS:
        return with_line(panel, control["value"])
    if panel.figure is None or panel.title not in MARKED_PANELS:
        return panel
    x, y = MARKED_PANELS[panel.title]
    data = [*panel.figure["data"], marker_trace(control, x, y)]
    figure = {"data": data, "layout": panel.figure["layout"]}
    marker = {"trace": len(data) - 1, "x": x, "y": y}
    return Panel(panel.title, figure=figure, wide=panel.wide, marker=marker)


def with_line(panel: Panel, threshold: float) -> Panel:
    """The panel's first threshold line and its label at ``threshold`` (they follow the
    slider from there)."""
    assert panel.figure is not None
    layout = dict(panel.figure["layout"])
    layout["shapes"] = [threshold_line(threshold), *layout.get("shapes", [])[1:]]
    layout["annotations"] = [threshold_label(threshold, "threshold"),
                             *layout.get("annotations", [])[1:]]  # fmt: skip
    figure = {"data": panel.figure["data"], "layout": layout}
    return Panel(panel.title, figure=figure, wide=panel.wide, marker={"line": 0})


def evaluation_panels(item: EvaluationView, panels: list[Panel]) -> list[Panel]:
    """One evaluation: the matrices at the default and F1-optimal thresholds, the slider, and
    the analyzer's charts (ROC and PR with the slider's marker)."""
    found = models([item])
    result = BinaryResult.model_validate(item.result)
    control = threshold_control(found) if found else None
    details = Panel(
        "Confusion matrices",
        template="binary_details.html",
        context={"r": result, "control": control},
        block=True,
    )
    if control is None:
        return [details, *panels]
    return [details, *(with_marker(p, control) for p in panels)]


# --- several evaluations
def _curve_trace(
    model: Model, x: list[Any], y: list[Any], thresholds: list[Any], name: str
) -> dict[str, Any]:
    view = model.view
    return {
        "type": "scatter", "mode": "lines", "name": plotly_text(name), "x": x, "y": y,
        "customdata": thresholds, "line": {"color": view.color, "width": 2},
        "hovertemplate": plotly_text(view.label) + "<br>(%{x:.4f}, %{y:.4f})<br>"
                         "threshold %{customdata:.4g}<extra></extra>",
    }  # fmt: skip


def _roc_traces(found: list[Model]) -> list[dict[str, Any]]:
    data = []
    for m in found:
        roc, auc = m.result.curves.roc, m.result.metrics.get("roc_auc")
        if roc is not None and auc is not None:
            name = f"{m.view.label} (AUC {auc:.4f})"
            data.append(_curve_trace(m, roc.fpr, roc.tpr, roc.threshold, name))
    data.append({"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1],
                 "y": [0, 1], "line": {"dash": "dot", "width": 1, "color": "#9ca3af"},
                 "hoverinfo": "skip"})  # fmt: skip
    return data


def _pr_traces(found: list[Model]) -> list[dict[str, Any]]:
    data = []
    for m in found:
        pr, ap = m.result.curves.pr, m.result.metrics.get("average_precision")
        if pr is not None and ap is not None:
            name = f"{m.view.label} (AP {ap:.4f})"
            trace = _curve_trace(m, pr.recall, pr.precision, pr.threshold, name)
            data.append(trace | {"line": {"color": m.view.color, "width": 2, "shape": "hv"}})
    return data


def overlay_figure(found: list[Model], control: dict[str, Any], kind: str) -> dict[str, Any]:
    """ROC ("roc") or precision-recall ("pr") curves of every model in one chart, with the
    marker trace last."""
    data = _roc_traces(found) if kind == "roc" else _pr_traces(found)
    x, y = MARKED_PANELS["ROC curve" if kind == "roc" else "Precision-recall curve"]
    data.append(marker_trace(control, x, y))
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


def histogram_figure(model: Model, edges: np.ndarray[Any, Any], threshold: float) -> dict[str, Any]:
    """Scores of one model by actual label, counted exactly from its threshold table."""
    h = histograms(model.table, edges)
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
        "yaxis": {"title": {"text": "weighted count" if model.view.weighted else "count"}},
        "shapes": [threshold_line(threshold)],
        "annotations": [threshold_label(threshold, "threshold")],
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "margin": {"l": 52, "r": 12, "t": 28, "b": 38},
    }
    return {"data": data, "layout": layout}


def comparison_panels(items: list[EvaluationView]) -> list[Panel]:
    """The slider over every model, their ROC and PR curves overlaid with its markers, and
    their score distributions on bins common to all (the slider's range)."""
    found = models(items)
    if not found:
        return []
    control = threshold_control(found)
    edges = np.linspace(control["min"], control["max"], HISTOGRAM_BINS + 1)
    figures = [(m.view.label, histogram_figure(m, edges, control["value"])) for m in found]
    curves = {
        "roc": overlay_figure(found, control, "roc"),
        "pr": overlay_figure(found, control, "pr"),
    }
    return [
        Panel("At a threshold of your choice", template="binary_threshold.html",
              context={"control": control}, block=True),
        Panel("Curves", template="binary_compare_curves.html", context=curves, block=True),
        Panel("Score distributions by actual label", template="binary_compare_histograms.html",
              context={"histograms": figures, "control": control, "bins": HISTOGRAM_BINS},
              block=True),
    ]  # fmt: skip
