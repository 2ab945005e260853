"""A third-party analyzer for the tests of the analyzer contract: scores cut into ten deciles
(highest first). It stores its own side table (one row per decile), answers a query of it
("deciles?k=1&k=10"), reports three headline metrics (one better higher, one better lower, one
with no direction) and has panels and a comparison panel of its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from modelyard.analyzers.base import (
    Analyzer,
    Computed,
    EvaluationView,
    MetricSpec,
    Panel,
    PredictionTable,
    SideQuery,
)
from modelyard.hookspecs import hookimpl

DECILES = 10


def decile_table(y: np.ndarray[Any, Any], s: np.ndarray[Any, Any]) -> pa.Table:
    """Rows sorted by score, highest first, cut into ten near-equal parts."""
    order = np.argsort(-s, kind="stable")
    parts = np.array_split(order, DECILES)
    return pa.table(
        {
            "decile": np.arange(1, DECILES + 1),
            "rows": [len(p) for p in parts],
            "positives": [int(y[p].sum()) for p in parts],
            "mean_score": [float(s[p].mean()) for p in parts],
            "min_score": [float(s[p].min()) for p in parts],
        }
    )


class DecileQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: Annotated[list[Annotated[int, Field(ge=1, le=DECILES)]], Field(min_length=1)]


class Deciles(Analyzer):
    name = "deciles"
    title = "Score deciles"
    tasks = frozenset({"binary"})
    template_dirs = (Path(__file__).parent / "decile_templates",)
    metrics = (
        MetricSpec("top_decile_lift", "top-decile lift", "higher", summary=True),
        MetricSpec("calibration_gap", "decile calibration gap", "lower"),
        MetricSpec("top_decile_cutoff", "top-decile cutoff"),
    )
    queries = (SideQuery("deciles", DecileQuery, ("deciles",)),)

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return self.analyze(table).result

    def analyze(self, table: PredictionTable) -> Computed:
        data = decile_table(table.y_true, table.y_score)
        rows = np.asarray(data.column("rows").to_pylist(), dtype=float)
        rate = np.asarray(data.column("positives").to_pylist()) / rows
        mean = np.asarray(data.column("mean_score").to_pylist())
        base = float(table.y_true.mean())
        metrics = {
            "top_decile_lift": float(rate[0] / base) if base > 0 else None,
            "calibration_gap": float(np.abs(rate - mean).mean()),
            "top_decile_cutoff": float(data.column("min_score")[0].as_py()),
        }
        result = {"metrics": metrics, "positive_rate": rate.tolist(), "notes": []}
        return Computed(result, {"deciles": data})

    def query(self, name: str, tables: Mapping[str, pa.Table], params: BaseModel) -> Any:
        assert isinstance(params, DecileQuery)
        rows = tables["deciles"].to_pylist()
        return [rows[k - 1] for k in params.k]

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        figure = {
            "data": [
                {"type": "bar", "x": list(range(1, DECILES + 1)), "y": result["positive_rate"]}
            ],
            "layout": {"xaxis": {"title": {"text": "decile"}}},
        }
        return [Panel("Positive rate by decile", figure=figure)]

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        stored = item.side_table("deciles")
        rows = stored.to_pylist() if stored is not None else []
        table = Panel("Deciles", template="deciles_panel.html", context={"rows": rows})
        return [table, *self.panels(item.result)]

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        data = [
            {"type": "scatter", "mode": "lines+markers", "name": i.plot_label,
             "x": list(range(1, DECILES + 1)), "y": i.result["positive_rate"],
             "line": {"color": i.color}}
            for i in items
        ]  # fmt: skip
        return [Panel("Positive rate by decile, side by side", figure={"data": data, "layout": {}})]


@hookimpl
def register_analyzers() -> list[Analyzer]:
    return [Deciles()]
