"""Plotly figures as plain dicts; templates embed them through the one ``chart`` macro."""

from __future__ import annotations

from typing import Any

from modelyard.services.series import SeriesSet
from modelyard.web.colors import series_colors


def _not_drawn(s: Any) -> str:
    parts = [
        f"{n} {label}"
        for n, label in ((s.nan, "NaN"), (s.pos_inf, "+inf"), (s.neg_inf, "-inf"))
        if n
    ]
    return ", ".join(parts)


def metric_figure(data: SeriesSet, run_ids: list[str] | None = None) -> dict[str, Any]:
    """Line chart of one metric for one or more runs, each in its run's colour among
    ``run_ids`` (the runs of the page, in its order); notes what could not be drawn."""
    order = list(dict.fromkeys([*(run_ids or []), *(s.run_id for s in data.series)]))
    colors = dict(zip(order, series_colors(order), strict=True))
    traces = []
    notes = []
    for s in data.series:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(s.x) <= 60 else "lines",
                "name": s.run_name,
                "x": s.x,
                "y": s.y,
                "line": {"width": 1.6, "color": colors[s.run_id]},
                "marker": {"size": 4},
                "hovertemplate": "%{y:.6g}<extra>" + s.run_name.replace("<", "&lt;") + "</extra>",
            }
        )
        if skipped := _not_drawn(s):
            notes.append(f"{s.run_name}: {skipped} not drawn")
    if data.missing:
        notes.append("not logged in " + ", ".join(data.missing))
    shown = sum(len(s.x) for s in data.series)
    total = sum(s.total for s in data.series)
    layout: dict[str, Any] = {
        "xaxis": {"title": {"text": "time" if data.x_kind == "time" else "step"}},
        "yaxis": {"title": {"text": data.key}},
        "showlegend": len(data.series) > 1,
        "uirevision": data.key,
    }
    if data.x_kind == "time":
        layout["xaxis"]["type"] = "date"
    if shown < total:
        notes.insert(0, f"{shown:,} of {total:,} points shown, zoom for detail")
    # The note goes under the chart (modelyard.js), where it cannot cover the legend.
    meta = {"shown": shown, "total": total, "note": "; ".join(notes)}
    return {"data": traces, "layout": layout, "meta": meta}
