"""The Kolmogorov-Smirnov analyzer, registered through modelyard's ``register_analyzers`` hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.analyzers.base import Analyzer, Panel, PredictionTable
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

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        result = ks_statistic(table.y_true, table.y_score, table.w)
        return {"metrics": {"ks": result["statistic"]}, **result}

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return [Panel(self.title, template="ks_panel.html", context={"ks": result})]


@hookimpl
def register_analyzers() -> list[Analyzer]:
    return [KolmogorovSmirnov()]
