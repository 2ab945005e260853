"""Regression: error metrics, residual quantiles and the data behind two charts.

Every metric is weighted when the table has weights and matches scikit-learn's function of
the same name, including its conventions: R² and explained variance are 1.0 for a perfect fit
of a constant target and 0.0 for an imperfect one (``force_finite``); the median absolute
error with weights is the "averaged inverted CDF" weighted median scikit-learn uses; max error
ignores weights (scikit-learn's takes none). MAPE is left out (None, with a note) when any
true value is 0, where scikit-learn would divide by machine epsilon and report a meaningless
huge number. A residual is ``y_true - y_pred``.

Result (JSON)::

    {
      "metrics": {"mae", "mse", "rmse", "r2", "explained_variance", "median_absolute_error",
                  "max_error", "mape" (float | None), "rows", "weight"},
      "residual_quantiles": {"q": [0.05, 0.25, 0.5, 0.75, 0.95], "value": [5 floats]},
      "residual_histogram": {"edges": [51 floats], "weight": [50 floats]},
      "scatter": {"actual": [...], "predicted": [...], "sampled": bool},  # <= 2,000 points
      "weighted": bool,
      "notes": [str, ...]
    }
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.analyzers.base import (
    Analyzer,
    EvaluationView,
    Floats,
    MetricSpec,
    Panel,
    PredictionTable,
)

HISTOGRAM_BINS = 50
SCATTER_POINTS = 2000
RESIDUAL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def weighted_quantiles(values: Floats, w: Floats, q: Floats) -> Floats:
    """Quantiles by the "averaged inverted CDF" rule (numpy's ``averaged_inverted_cdf``; with
    weights, scikit-learn's ``_weighted_percentile(average=True)``): when the cumulative
    weight lands exactly on a quantile, average that value and the next one with weight."""
    order = np.argsort(values, kind="stable")
    v, cdf = values[order], np.cumsum(w[order])
    target = q * cdf[-1]
    last = len(v) - 1
    i = np.clip(np.searchsorted(cdf, target, side="left"), 0, last)
    # the next value carrying weight: skips rows of zero weight
    nxt = np.searchsorted(cdf, cdf[i], side="right")
    nxt = np.where(nxt > last, i, nxt)
    above = cdf[i] - target > np.finfo(np.float64).eps
    out: Floats = np.where(above, v[i], (v[i] + v[nxt]) / 2)
    return out


def _explained(numerator: float, denominator: float) -> float:
    """1 - numerator / denominator with scikit-learn's ``force_finite`` rule."""
    if denominator == 0:
        return 1.0 if numerator == 0 else 0.0
    return 1.0 - numerator / denominator


def error_metrics(y: Floats, p: Floats, w: Floats, weighted: bool) -> dict[str, float | None]:
    residual = y - p
    absolute = np.abs(residual)
    mse = float(np.average(residual**2, weights=w))
    y_mean = np.average(y, weights=w)
    total = float(np.average((y - y_mean) ** 2, weights=w))
    shift = np.average(residual, weights=w)
    spread = float(np.average((residual - shift) ** 2, weights=w))
    median = (
        weighted_quantiles(absolute, w, np.array([0.5]))[0] if weighted else np.median(absolute)
    )
    has_zero = bool((y == 0).any())
    return {
        "mae": float(np.average(absolute, weights=w)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": _explained(mse, total),
        "explained_variance": _explained(spread, total),
        "median_absolute_error": float(median),
        "max_error": float(absolute.max()),
        "mape": None if has_zero else float(np.average(absolute / np.abs(y), weights=w)),
        "rows": float(len(y)),
        "weight": float(w.sum()),
    }


def scatter_sample(y: Floats, p: Floats, points: int = SCATTER_POINTS) -> dict[str, Any]:
    """At most ``points`` rows, evenly spaced over the rows sorted by the true value, so the
    sample is the same every time and covers the whole range."""
    order = np.argsort(y, kind="stable")
    sampled = len(y) > points
    if sampled:
        order = order[np.unique(np.linspace(0, len(y) - 1, points).round().astype(np.int64))]
    return {"actual": y[order].tolist(), "predicted": p[order].tolist(), "sampled": sampled}


def evaluate_regression(table: PredictionTable) -> dict[str, Any]:
    y, p, w = table.y_true, table.y_score, table.w
    weighted = table.weights is not None
    metrics = error_metrics(y, p, w, weighted)
    notes = []
    if metrics["mape"] is None:
        zeros = int((y == 0).sum())
        notes.append(f"y_true is 0 in {zeros:,} row(s): MAPE is undefined and left out")
    residual = y - p
    q = np.array(RESIDUAL_QUANTILES)
    lo, hi = float(residual.min()), float(residual.max())
    if not hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):  # (nearly) constant residuals
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(residual, bins=HISTOGRAM_BINS, range=(lo, hi), weights=w)
    return {
        "metrics": metrics,
        "residual_quantiles": {
            "q": q.tolist(),
            "value": weighted_quantiles(residual, w, q).tolist(),
        },
        "residual_histogram": {"edges": edges.tolist(), "weight": counts.astype(float).tolist()},
        "scatter": scatter_sample(y, p),
        "weighted": weighted,
        "notes": notes,
    }


def scatter_figure(scatter: dict[str, Any]) -> dict[str, Any]:
    actual, predicted = scatter["actual"], scatter["predicted"]
    lo = min(min(actual), min(predicted))
    hi = max(max(actual), max(predicted))
    return {
        "data": [
            {
                "type": "scattergl",
                "mode": "markers",
                "name": "rows",
                "x": actual,
                "y": predicted,
                "marker": {"size": 4, "opacity": 0.6},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "y = x",
                "x": [lo, hi],
                "y": [lo, hi],
                "line": {"dash": "dash", "width": 1},
            },
        ],
        "layout": {
            "xaxis": {"title": {"text": "actual"}},
            "yaxis": {"title": {"text": "predicted"}},
            "showlegend": False,
        },
    }


def histogram_figure(histogram: dict[str, Any]) -> dict[str, Any]:
    edges = histogram["edges"]
    centres = [(a + b) / 2 for a, b in pairwise(edges)]
    widths = [b - a for a, b in pairwise(edges)]
    return {
        "data": [
            {
                "type": "bar",
                "x": centres,
                "y": histogram["weight"],
                "width": widths,
                "name": "residuals",
            }
        ],
        "layout": {
            "xaxis": {"title": {"text": "residual (actual − predicted)"}},
            "yaxis": {"title": {"text": "rows (weighted)"}},
            "bargap": 0,
        },
    }


class Regression(Analyzer):
    name = "regression"
    title = "Regression"
    tasks = frozenset({"regression"})
    template_dirs = (Path(__file__).parent / "templates",)
    metrics = (
        MetricSpec("rmse", "RMSE", "lower", summary=True, headline=True),
        MetricSpec("mae", "MAE", "lower", summary=True, headline=True),
        MetricSpec("r2", "R²", "higher", summary=True, headline=True),
        MetricSpec("mse", "MSE", "lower", group="Errors"),
        MetricSpec("median_absolute_error", "median absolute error", "lower", group="Errors"),
        MetricSpec("max_error", "max error", "lower", group="Errors"),
        MetricSpec("mape", "MAPE", "lower", group="Errors"),
        MetricSpec("explained_variance", "explained variance", "higher", group="Fit"),
        MetricSpec("rows", "rows", group="Data"),
        MetricSpec("weight", "total weight", group="Data"),
    )

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return evaluate_regression(table)

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        title = "Predicted against actual"
        if result["scatter"]["sampled"]:
            title += f" ({len(result['scatter']['actual']):,} rows sampled)"
        return [
            Panel(title=title, figure=scatter_figure(result["scatter"])),
            Panel(title="Residuals", figure=histogram_figure(result["residual_histogram"])),
        ]

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        details = Panel(
            "Details", template="regression_details.html", context={"r": item.result}, block=True
        )
        return [details, *self.panels(item.result)]
