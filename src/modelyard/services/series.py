"""Histories for display and download: a run's metric history serialised (JSON or Arrow), and
any series reduced for a chart, every extreme kept, a few thousand points sent.

A chart cannot show more points than it has pixels, so a long history is cut into equal
buckets and each bucket keeps its first, lowest and highest point (and the series its very
last): spikes survive, the line's shape is exact at screen resolution, and the browser draws
a few thousand points instead of millions. Zooming asks again for the visible range only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata.store import Store
from modelyard.services import series_store
from modelyard.services.metrics import read_page
from modelyard.services.runs import run_row
from modelyard.services.series_store import (
    Axis,
    Extent,
    Floats,
    Format,
    Ints,
    Owner,
    Page,
    page_request,
    run_owner,
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


def x_axis(extents: list[Extent]) -> Axis:
    """Steps, or time when every point of every history was logged at one step."""
    one_step = all(e.points < 2 or e.min_step == e.max_step for e in extents)
    many = any(e.points > 1 for e in extents)
    return "time" if one_step and many else "step"


def check_reduction(
    points: int, x0: float | None, x1: float | None
) -> tuple[float | None, float | None]:
    if not 10 <= points <= 20_000:
        raise InvalidInput("points must be between 10 and 20000")
    if any(x is not None and math.isnan(x) for x in (x0, x1)):
        raise InvalidInput("x0 and x1 must be numbers, not NaN")
    if x0 is not None and x1 is not None and x0 > x1:
        x0, x1 = x1, x0
    return x0, x1


# A history is reduced in two walks through it, a chunk of points at a time (see
# ``series_store.stream``): the first finds which points the range [x0, x1] covers and how many
# of them are finite, which sets the buckets' size; the second keeps each bucket's first,
# lowest and highest point. The result is what ``reduce_indices`` picks from the whole
# history at once; memory is one chunk plus the buckets, however long the history.

Chunks = Callable[[], Iterator[tuple[Ints, Floats]]]  # (x, value) pieces in history order
_FINITE, _NAN, _POS_INF, _NEG_INF = range(4)


def _classes(y: Floats) -> Ints:
    """How many of ``y`` are finite, NaN, +inf and -inf."""
    finite = np.isfinite(y)
    fin = int(finite.sum())
    if fin == len(y):
        return np.array([fin, 0, 0, 0], dtype=np.int64)
    counts = [fin, int(np.isnan(y).sum()), int(np.isposinf(y).sum()), int(np.isneginf(y).sum())]
    return np.array(counts, dtype=np.int64)


def _finite(x: Ints, y: Floats) -> tuple[Ints, Floats]:
    keep = np.isfinite(y)
    return (x, y) if keep.all() else (x[keep], y[keep])


@dataclass(slots=True)
class _Span:
    """Where the range lies in a history: positions [start, stop) in history order (one
    point beyond each edge of [x0, x1]), the finite, NaN, +inf and -inf points there, and the
    finite points themselves when there are at most ``points`` of them."""

    start: int
    stop: int
    counts: Ints
    drawn: tuple[Ints, Floats] | None


def _span(chunks: Chunks, x0: float | None, x1: float | None, points: int) -> _Span:
    """The first walk; it ends at the first point beyond x1."""
    pos = lo = 0  # points walked; points before x0
    hi: int | None = None  # points up to x1, once a point beyond it is seen
    seen = np.zeros(4, dtype=np.int64)  # classes of the points walked
    at_lo = np.zeros(4, dtype=np.int64)  # ... of those before the range's first position
    at_hi = seen
    before: tuple[Ints, Floats] | None = None  # the point just before x0 and just after x1
    after: tuple[Ints, Floats] | None = None
    held: list[tuple[Ints, Floats]] | None = []  # finite points within [x0, x1] while few
    count = 0
    for xs, ys in chunks():
        n = len(xs)
        a = 0 if x0 is None else int(np.searchsorted(xs, x0, side="left"))
        b = n if x1 is None else int(np.searchsorted(xs, x1, side="right"))
        if a > 0:
            lo = pos + a
            at_lo = seen + _classes(ys[: a - 1])
            before = (xs[a - 1 : a].copy(), ys[a - 1 : a].copy())
        if held is not None and b > a:
            x, y = _finite(xs[a:b], ys[a:b])
            count += len(x)
            if count <= points:
                held.append((x.copy(), y.copy()))
            else:
                held = None
        if b < n:
            hi = pos + b
            at_hi = seen + _classes(ys[: b + 1])
            after = (xs[b : b + 1].copy(), ys[b : b + 1].copy())
            break
        seen = seen + _classes(ys)
        pos += n
    else:
        at_hi = seen
    start = max(0, lo - 1)
    stop = pos if hi is None else hi + 1
    counts = at_hi - at_lo
    drawn = None
    if held is not None and counts[_FINITE] <= points:
        parts = [p for p in (before, *held, after) if p is not None]
        x, y = _finite(
            np.concatenate([p[0] for p in parts] or [np.empty(0, dtype=np.int64)]),
            np.concatenate([p[1] for p in parts] or [np.empty(0)]),
        )
        drawn = (x, y)
    return _Span(start, stop, counts, drawn)


class _Buckets:
    """The first, lowest and highest point of each of ``points // 3`` equal buckets of ``m``
    finite points (and the last point), gathered from consecutive pieces of them."""

    def __init__(self, m: int, points: int) -> None:
        self.m = m
        self.buckets = max(1, points // 3)
        self.size = -(-m // self.buckets)
        nb = self.buckets
        # per bucket and kind (first, lowest, highest): the point's index among the finite
        # points (-1: none yet), its x and its value
        self.index = np.full((3, nb), -1, dtype=np.int64)
        self.x = np.zeros((3, nb), dtype=np.int64)
        self.y = np.zeros((3, nb), dtype=np.float64)
        self.y[1], self.y[2] = np.inf, -np.inf
        self.last: tuple[int, int, float] | None = None
        self.taken = 0  # finite points seen so far

    def add(self, x: Ints, y: Floats) -> None:
        """The next finite points, in order."""
        j0 = self.taken
        k = min(len(y), self.m - j0)  # never more than the first walk counted
        if k <= 0:
            return
        x, y = x[:k], y[:k]
        self.taken += k
        self.last = (j0 + k - 1, int(x[-1]), float(y[-1]))
        size = self.size
        bs = np.arange(j0 // size, (j0 + k - 1) // size + 1)
        starts = np.maximum(bs * size - j0, 0)  # where each bucket starts in this piece
        lows = np.minimum.reduceat(y, starts)
        highs = np.maximum.reduceat(y, starts)
        lens = np.diff(np.append(starts, k))
        segment = np.repeat(np.arange(len(bs)), lens)
        at = {
            0: starts,
            1: _first_hit(y == np.repeat(lows, lens), segment, len(bs)),
            2: _first_hit(y == np.repeat(highs, lens), segment, len(bs)),
        }
        new = self.index[0, bs] < 0
        better = {0: new, 1: lows < self.y[1, bs], 2: highs > self.y[2, bs]}
        for kind, where in at.items():  # a tie keeps the earlier point
            sel, pick = bs[better[kind]], where[better[kind]]
            self.index[kind, sel] = j0 + pick
            self.x[kind, sel] = x[pick]
            self.y[kind, sel] = y[pick]

    def result(self) -> tuple[Ints, Floats]:
        index, x, y = self.index.ravel(), self.x.ravel(), self.y.ravel()
        if self.last is not None:
            index = np.append(index, self.last[0])
            x = np.append(x, self.last[1])
            y = np.append(y, self.last[2])
        ok = index >= 0
        _, at = np.unique(index[ok], return_index=True)
        return x[ok][at], y[ok][at]


def _first_hit(hit: np.ndarray[Any, np.dtype[np.bool_]], segment: Ints, segments: int) -> Ints:
    """The first position of each segment where ``hit`` holds (each has one)."""
    where = np.flatnonzero(hit)
    return where[np.searchsorted(segment[where], np.arange(segments))]


def reduce_stream(
    key: str, chunks: Chunks, x0: float | None, x1: float | None, points: int
) -> Reduced:
    """The points of a history (``chunks`` walks it in order, as x and value) within
    [x0, x1] and one beyond each edge, reduced to about ``points``; NaN and infinities are
    counted, not drawn. Two walks, one chunk held at a time."""
    span = _span(chunks, x0, x1, points)
    c = span.counts
    out = Reduced(key, np.empty(0, dtype=np.int64), np.empty(0), total=int(c.sum()))
    out.nan, out.pos_inf, out.neg_inf = int(c[_NAN]), int(c[_POS_INF]), int(c[_NEG_INF])
    if span.drawn is not None:
        out.x, out.y = span.drawn
        return out
    acc = _Buckets(int(c[_FINITE]), points)
    pos = 0
    for xs, ys in chunks():
        a, b = max(span.start - pos, 0), min(span.stop - pos, len(xs))
        pos += len(xs)
        if a < b:
            acc.add(*_finite(xs[a:b], ys[a:b]))
        if pos >= span.stop:
            break
    out.x, out.y = acc.result()
    return out


def series_chunks(
    conn: Connection, owner: Owner, key: str, axis: Axis, what: str = "this run"
) -> Chunks:
    """Walks through a stored series in history order: (step or time, value) pieces."""

    def walk() -> Iterator[tuple[Ints, Floats]]:
        for h in series_store.stream(conn, owner, key, what=what):
            yield (h.steps if axis == "step" else h.timestamps), h.values

    return walk


def metric_extents(store: Store, *, run_ids: Sequence[str]) -> dict[str, dict[str, Extent]]:
    """How many points each metric of each run holds and the steps they span, read at once
    from the blocks' descriptions: what tells a history (a chart) from a value logged once."""
    with store.read() as conn:
        return series_store.run_extents(conn, run_ids)


def has_history(extent: Extent | None) -> bool:
    """Whether a metric was logged at two or more steps, so that a line has a shape."""
    return extent is not None and extent.points > 1 and extent.max_step > extent.min_step


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
    the x range [x0, x1] (steps, or epoch milliseconds when the metric has no steps). The runs'
    histories are walked one after another, a chunk at a time."""
    if not run_ids:
        raise InvalidInput("name at least one run")
    if len(run_ids) > MAX_RUNS:
        raise InvalidInput(f"at most {MAX_RUNS} runs in one chart; {len(run_ids)} were asked for")
    x0, x1 = check_reduction(points, x0, x1)
    found: list[tuple[str, str, Owner, Extent]] = []
    missing = []
    with store.read() as conn:
        for run_id in dict.fromkeys(run_ids):
            row = run_row(conn, run_id)
            owner = run_owner(row.pk)
            try:
                found.append((run_id, row.name, owner, series_store.extent(conn, owner, key)))
            except NotFound:
                missing.append(row.name)
        if not found:
            runs = "this run" if len(run_ids) == 1 else "these runs"
            raise NotFound(f"metric {key!r} was not logged in {runs}")
        axis = x_axis([e for *_, e in found])
        result = SeriesSet(key, axis, missing=missing)
        for run_id, name, owner, _ in found:
            r = reduce_stream(
                key, series_chunks(conn, owner, key, axis, "this run"), x0, x1, points
            )
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
