"""The Kolmogorov-Smirnov analyzer, registered through modelyard's ``register_analyzers`` hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.analyzers.base import Analyzer, EvaluationView, MetricSpec, Panel, PredictionTable
from modelyard.hookspecs import hookimpl

HERE = Path(__file__).parent


def ks_statistic(
    y: np.ndarray[Any, Any], s: np.ndarray[Any, Any], w: np.ndarray[Any, Any]
) -> dict[str, Any]:
    """The largest gap between the weighted empirical CDFs of positive and negative scores."""
    order = np.argsort(s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # end of each run of ties
    pos = np.cumsum(w * (y == 1))[last]
    neg = np.cumsum(w * (y == 0))[last]
    if pos[-1] <= 0 or neg[-1] <= 0:
        return {"statistic": None, "threshold": None, "note": "needs both classes"}
    gap = np.abs(pos / pos[-1] - neg / neg[-1])
    i = int(np.argmax(gap))
    return {"statistic": float(gap[i]), "threshold": float(s[last[i]]), "note": None}


class KolmogorovSmirnov(Analyzer):
    name = "ks"
    title = "Kolmogorov-Smirnov separation"
    tasks = frozenset({"binary"})
    template_dirs = (HERE / "templates",)
    static_dirs = (HERE / "static",)
    # The pages put the headline metric first, and the others under the groups named here.
    metrics = (
        MetricSpec("ks", "KS statistic", "higher", summary=True, headline=True, group="Separation"),
        MetricSpec("ks_threshold", "score at the largest gap", group="Separation"),
    )

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        result = ks_statistic(table.y_true, table.y_score, table.w)
        metrics = {"ks": result["statistic"], "ks_threshold": result["threshold"]}
        return {"metrics": metrics, **result}

    def notes(self, result: dict[str, Any]) -> list[str]:
        return [f"KS statistic: {result['note']}"] if result.get("note") else []

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return [Panel(self.title, template="ks_panel.html", context={"ks": result})]

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        """Each evaluation's KS statistic as a bar in its colour on the page."""
        figure = {
            "data": [
                {
                    "type": "bar",
                    "x": [i.plot_label for i in items],
                    "y": [i.result.get("statistic") for i in items],
                    "marker": {"color": [i.color for i in items]},
                    "hovertemplate": "KS %{y:.4f}<extra></extra>",
                }
            ],
            "layout": {"yaxis": {"title": {"text": "KS statistic"}, "range": [0, 1]}},
        }
        return [Panel("KS statistic by evaluation", figure=figure)]


@hookimpl
def register_analyzers() -> list[Analyzer]:
    return [KolmogorovSmirnov()]
