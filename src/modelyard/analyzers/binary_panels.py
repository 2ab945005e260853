"""Plotly figures of a binary evaluation's result (plain dicts; the pages draw them)."""

from __future__ import annotations

import itertools
from typing import Any

from modelyard.analyzers.base import Panel

POSITIVE = "#dc2626"
NEGATIVE = "#2563eb"
DEFAULT_COLOR = "#a16207"  # seen on light and dark backgrounds alike
F1_COLOR = "#16a34a"
HOVER = "{x} %{{x:.4f}}<br>{y} %{{y:.4f}}<br>threshold %{{customdata:.4g}}<extra></extra>"


def _axes(x: str, y: str, square: bool = False) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "xaxis": {"title": {"text": x}},
        "yaxis": {"title": {"text": y}},
        "hovermode": "closest",
    }
    if square:
        layout["xaxis"]["range"] = [0, 1]
        layout["yaxis"]["range"] = [0, 1.02]
    return layout


def _operating_point(name: str, x: float, y: float, color: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "x": [x],
        "y": [y],
        "marker": {"size": 10, "color": color, "symbol": "diamond"},
    }


def roc_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    roc = result["curves"].get("roc")
    if roc is None:
        return None
    auc = result["metrics"]["roc_auc"]
    data = [
        {"type": "scatter", "mode": "lines", "name": f"ROC (AUC {auc:.4f})",
         "x": roc["fpr"], "y": roc["tpr"], "customdata": roc["threshold"],
         "hovertemplate": HOVER.format(x="FPR", y="TPR")},
        {"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1],
         "line": {"dash": "dot", "width": 1, "color": "#9ca3af"}, "hoverinfo": "skip"},
    ]  # fmt: skip
    for label, key, color in (
        ("default threshold", "at_default", DEFAULT_COLOR),
        ("F1-optimal threshold", "at_f1_optimal", F1_COLOR),
    ):
        point = result.get(key)
        if point and point["fpr"] is not None and point["recall"] is not None:
            name = f"{label} {point['threshold']:.4g}"
            data.append(_operating_point(name, point["fpr"], point["recall"], color))
    return {"data": data, "layout": _axes("false positive rate", "true positive rate", True)}


def pr_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    pr = result["curves"].get("pr")
    if pr is None:
        return None
    ap = result["metrics"]["average_precision"]
    prevalence = result["metrics"]["prevalence"]
    data = [
        {"type": "scatter", "mode": "lines", "name": f"PR (AP {ap:.4f})", "line": {"shape": "hv"},
         "x": pr["recall"], "y": pr["precision"], "customdata": pr["threshold"],
         "hovertemplate": HOVER.format(x="recall", y="precision")},
        {"type": "scatter", "mode": "lines", "name": "prevalence", "x": [0, 1],
         "y": [prevalence, prevalence], "line": {"dash": "dot", "width": 1, "color": "#9ca3af"},
         "hoverinfo": "skip"},
    ]  # fmt: skip
    return {"data": data, "layout": _axes("recall", "precision", True)}


def histogram_figure(result: dict[str, Any]) -> dict[str, Any]:
    h = result["score_histogram"]
    edges = h["edges"]
    mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    width = edges[1] - edges[0]
    data = [
        {"type": "bar", "name": label, "x": mids, "y": h[key], "width": width,
         "marker": {"color": color}, "opacity": 0.6}
        for label, key, color in (("actual negatives", "negatives", NEGATIVE),
                                  ("actual positives", "positives", POSITIVE))
    ]  # fmt: skip
    layout = _axes("score", "weighted count" if result["weighted"] else "count")
    layout["barmode"] = "overlay"
    lines = [(result["default_threshold"], "threshold", "#6b7280", 1.0)]
    if result["f1_optimal_threshold"] is not None:
        lines.append((result["f1_optimal_threshold"], "F1-optimal", F1_COLOR, 0.86))
    layout["shapes"] = [threshold_line(t, color) for t, _, color, _ in lines]
    layout["annotations"] = [threshold_label(t, label, color, y) for t, label, color, y in lines]
    return {"data": data, "layout": layout}


def threshold_line(threshold: float, color: str = "#6b7280") -> dict[str, Any]:
    """A dashed vertical line at a threshold, the height of the plot."""
    return {"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1, "yref": "paper",
            "line": {"dash": "dash", "width": 1.5, "color": color}}  # fmt: skip


def threshold_label(
    threshold: float, label: str, color: str = "#6b7280", y: float = 1.0
) -> dict[str, Any]:
    """The label of a threshold line: its name and value, beside the line's top (at ``y``
    of the plot's height), inside the plot."""
    return {"x": threshold, "y": y, "xref": "x", "yref": "paper", "xanchor": "left",
            "yanchor": "top", "xshift": 3, "showarrow": False, "text": f"{label} {threshold:.4g}",
            "font": {"size": 11, "color": color}, "bgcolor": "rgba(127,127,127,0.12)"}  # fmt: skip


def calibration_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    cal = result.get("calibration")
    if not cal:
        return None
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": "model",
         "x": cal["prob_pred"], "y": cal["prob_true"], "customdata": cal["weight"],
         "hovertemplate": "predicted %{x:.3f}<br>observed %{y:.3f}<br>"
                          "weight %{customdata:.4g}<extra></extra>"},
        {"type": "scatter", "mode": "lines", "name": "perfectly calibrated", "x": [0, 1],
         "y": [0, 1], "line": {"dash": "dot", "width": 1, "color": "#9ca3af"}, "hoverinfo": "skip"},
    ]  # fmt: skip
    return {
        "data": data,
        "layout": _axes("mean predicted probability", "observed positive rate", True),
    }


def gain_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    gain = result["curves"].get("gain")
    if gain is None:
        return None
    data = [
        {"type": "scatter", "mode": "lines", "name": "cumulative gain",
         "x": gain["population"], "y": gain["gain"]},
        {"type": "scatter", "mode": "lines", "name": "lift", "x": gain["population"],
         "y": gain["lift"], "yaxis": "y2", "line": {"dash": "dash"}},
    ]  # fmt: skip
    layout = _axes("share of population (highest scores first)", "share of positives captured")
    # Lift on its own axis on the right, with room for its title and labels (automargin).
    top = max((v for v in gain["lift"] if v is not None), default=1.0)
    layout["yaxis"]["range"] = [0, 1.02]
    layout["yaxis2"] = {"title": {"text": "lift"}, "overlaying": "y", "side": "right",
                        "automargin": True, "range": [0, top * 1.02], "tickmode": "auto",
                        "showgrid": False, "tickformat": ".2~f"}  # fmt: skip
    layout["margin"] = {"l": 52, "r": 52, "t": 12, "b": 38}
    return {"data": data, "layout": layout}


def panels(result: dict[str, Any]) -> list[Panel]:
    figures = [
        ("ROC curve", roc_figure(result)),
        ("Precision-recall curve", pr_figure(result)),
        ("Score distribution by actual label", histogram_figure(result)),
        ("Calibration", calibration_figure(result)),
        ("Cumulative gain and lift", gain_figure(result)),
    ]
    return [Panel(title, figure=fig) for title, fig in figures if fig is not None]
