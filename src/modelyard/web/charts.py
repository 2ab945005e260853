"""Plotly figures as plain dicts; templates embed them through the one ``chart`` macro."""

from __future__ import annotations

from typing import Any

from modelyard.services.series import SeriesSet

PALETTE = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
    "#0891b2", "#c026d3", "#65a30d", "#b45309", "#4f46e5",
]  # fmt: skip


def _not_drawn(s: Any) -> str:
    parts = [
        f"{n} {label}"
        for n, label in ((s.nan, "NaN"), (s.pos_inf, "+inf"), (s.neg_inf, "-inf"))
        if n
    ]
    return ", ".join(parts)


def metric_figure(data: SeriesSet) -> dict[str, Any]:
    """Line chart of one metric for one or more runs; notes what could not be drawn."""
    traces = []
    notes = []
    for i, s in enumerate(data.series):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(s.x) <= 60 else "lines",
                "name": s.run_name,
                "x": s.x,
                "y": s.y,
                "line": {"width": 1.6, "color": PALETTE[i % len(PALETTE)]},
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
    annotation = "; ".join(notes)
    if shown < total:
        annotation = (
            f"{shown:,} of {total:,} points shown, zoom for detail; " + annotation
        ).rstrip("; ")
    if annotation:
        layout["annotations"] = [
            {
                "text": annotation,
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": 1.02,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 10},
            }
        ]
        layout["margin"] = {"t": 24}
    return {"data": traces, "layout": layout, "meta": {"shown": shown, "total": total}}
