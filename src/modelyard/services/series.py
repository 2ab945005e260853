"""Histories for display and download: a run's metric history serialised (JSON or Arrow), and
any series reduced for a chart, every extreme kept, a few thousand points sent.

A chart cannot show more points than it has pixels, so a long history is cut into equal
buckets and each bucket keeps its first, lowest and highest point (and the series its very
last): spikes survive, the line's shape is exact at screen resolution, and the browser draws
a few thousand points instead of millions. Zooming asks again for the visible range only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata.store import Store
from modelyard.services.metrics import read_history, read_page
from modelyard.services.runs import run_row
from modelyard.services.series_store import (
    Axis,
    Floats,
    Format,
    History,
    Ints,
    Page,
    page_request,
)

MAX_RUNS = 20


@dataclass(slots=True)
class Reduced:
    """A history's points within a range, cut down to what a chart can show."""

    key: str
    x: Ints
    y: Floats
    total: int  # points in the requested range, drawn or not
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0

    @property
    def reduced(self) -> bool:
        return len(self.x) < self.total - self.nan - self.pos_inf - self.neg_inf


@dataclass(slots=True)
class Series(Reduced):
    """One run's reduced metric, in a chart of several runs."""

    run_id: str = ""
    run_name: str = ""


@dataclass(slots=True)
class SeriesSet:
    key: str
    x_kind: Axis  # "step", or "time" when every point was logged at one step
    series: list[Series] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # names of runs without this metric


def reduce_indices(y: Floats, points: int) -> Ints:
    """Indices to draw so that no bucket's extreme is lost: first, min and max of each of
    ``points // 3`` equal buckets, plus the last point, in order."""
    n = len(y)
    if n <= points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, points // 3)
    size = -(-n // buckets)
    pad = buckets * size - n
    lows = np.concatenate([y, np.full(pad, np.inf)]).reshape(buckets, size)
    highs = np.concatenate([y, np.full(pad, -np.inf)]).reshape(buckets, size)
    starts = np.arange(buckets, dtype=np.int64) * size
    picks = np.concatenate(
        [starts, starts + lows.argmin(axis=1), starts + highs.argmax(axis=1), [n - 1]]
    )
    return np.unique(picks[picks < n])


def x_axis(hists: list[History]) -> Axis:
    """Steps, or time when every point of every history was logged at one step."""
    one_step = all(len(h.steps) < 2 or h.steps[0] == h.steps[-1] for h in hists)
    many = any(len(h.steps) > 1 for h in hists)
    return "time" if one_step and many else "step"


def along(h: History, axis: Axis) -> tuple[History, Ints]:
    """The history ordered along the x axis, and its x values."""
    if axis == "step":
        return h, h.steps
    if not bool(np.all(np.diff(h.timestamps) >= 0)):
        order = np.argsort(h.timestamps, kind="stable")
        h = History(h.key, h.steps[order], h.timestamps[order], h.values[order])
    return h, h.timestamps


def check_reduction(
    points: int, x0: float | None, x1: float | None
) -> tuple[float | None, float | None]:
    if not 10 <= points <= 20_000:
        raise InvalidInput("points must be between 10 and 20000")
    if x0 is not None and x1 is not None and x0 > x1:
        x0, x1 = x1, x0
    return x0, x1


def reduce(h: History, xs: Ints, x0: float | None, x1: float | None, points: int) -> Reduced:
    """The points of ``h`` (ordered by ``xs``) within [x0, x1], reduced to about ``points``;
    NaN and infinities are counted, not drawn."""
    lo = 0 if x0 is None else int(np.searchsorted(xs, x0, side="left"))
    hi = len(xs) if x1 is None else int(np.searchsorted(xs, x1, side="right"))
    # one point beyond each edge, so the line runs to the edges of a zoomed view
    lo, hi = max(0, lo - 1), min(len(xs), hi + 1)
    x, y = xs[lo:hi], h.values[lo:hi]
    finite = np.isfinite(y)
    out = Reduced(h.key, x, y, total=len(y))
    if not finite.all():
        out.nan = int(np.isnan(y).sum())
        out.pos_inf = int(np.isposinf(y).sum())
        out.neg_inf = int(np.isneginf(y).sum())
        x, y = x[finite], y[finite]
    keep = reduce_indices(y, points)
    out.x, out.y = x[keep], y[keep]
    return out


def metric_series(
    store: Store,
    *,
    run_ids: list[str],
    key: str,
    x0: float | None = None,
    x1: float | None = None,
    points: int = 1500,
) -> SeriesSet:
    """One metric of one or more runs, reduced to about ``points`` points per run within
    the x range [x0, x1] (steps, or epoch milliseconds when the metric has no steps)."""
    if not run_ids:
        raise InvalidInput("name at least one run")
    if len(run_ids) > MAX_RUNS:
        raise InvalidInput(f"at most {MAX_RUNS} runs in one chart; {len(run_ids)} were asked for")
    x0, x1 = check_reduction(points, x0, x1)
    found: list[tuple[str, str, History]] = []
    missing = []
    with store.read() as conn:
        for run_id in dict.fromkeys(run_ids):
            row = run_row(conn, run_id)
            try:
                found.append((run_id, row.name, read_history(conn, row.pk, key)))
            except NotFound:
                missing.append(row.name)
    if not found:
        raise NotFound(
            f"metric {key!r} was not logged in {'this run' if len(run_ids) == 1 else 'these runs'}"
        )
    axis = x_axis([h for _, _, h in found])
    result = SeriesSet(key, axis, missing=missing)
    for run_id, name, h in found:
        r = reduce(*along(h, axis), x0, x1, points)
        s = Series(r.key, r.x, r.y, r.total, r.nan, r.pos_inf, r.neg_inf, run_id, name)
        result.series.append(s)
    return result


def metric_history(
    store: Store,
    *,
    run_id: str,
    key: str,
    fmt: Format = "json",
    axis: Axis = "step",
    start: int | None = None,
    end: int | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> Page:
    """A page of a run's metric: up to ``limit`` points (at most ``MAX_PAGE[fmt]``) whose step
    (or time) lies in [start, end], after the point ``page_token`` names; and the token of the
    next page when more remain."""
    req = page_request(fmt, axis=axis, start=start, end=end, limit=limit, page_token=page_token)
    with store.read() as conn:
        return read_page(conn, run_row(conn, run_id).pk, key, req)
