"""Charts reduce a history in chunks, walking it twice; what they draw is exactly what the
whole-array reduction (each bucket's first, lowest and highest point, and the last; NaN and
infinities counted) picks from the whole history at once. The reference below is that
reduction as it read whole histories, run on the same points."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.services import series_store
from modelyard.services.series import Reduced, reduce_indices, reduce_stream
from tests.helpers import new_run
from tests.test_history_pages import log_blocks

API = "/api/v1"
T0 = 1_700_000_000_000
Arr = np.ndarray[Any, Any]


def whole_array(
    steps: Arr, stamps: Arr, values: Arr, x0: float | None, x1: float | None, points: int
) -> Reduced:
    """The reduction as it was: the whole history (in history order) in memory at once."""
    xs = along(steps, stamps)
    if xs is stamps and not bool(np.all(np.diff(stamps) >= 0)):
        order = np.argsort(stamps, kind="stable")
        xs, values = stamps[order], values[order]
    lo = 0 if x0 is None else int(np.searchsorted(xs, x0, side="left"))
    hi = len(xs) if x1 is None else int(np.searchsorted(xs, x1, side="right"))
    lo, hi = max(0, lo - 1), min(len(xs), hi + 1)
    x, y = xs[lo:hi], values[lo:hi]
    finite = np.isfinite(y)
    out = Reduced("m", x, y, total=len(y))
    if not finite.all():
        out.nan = int(np.isnan(y).sum())
        out.pos_inf = int(np.isposinf(y).sum())
        out.neg_inf = int(np.isneginf(y).sum())
        x, y = x[finite], y[finite]
    keep = reduce_indices(y, points)
    out.x, out.y = x[keep], y[keep]
    return out


def along(steps: Arr, stamps: Arr) -> Arr:
    """The x axis: steps, or times when every point was logged at one step."""
    one_step = len(steps) < 2 or steps[0] == steps[-1]
    return stamps if one_step and len(steps) > 1 else steps


def chunked(xs: Arr, ys: Arr, rng: np.random.Generator, size: int) -> Any:
    """Walks of (xs, ys) in pieces of irregular length around ``size``."""

    def walk() -> Iterator[tuple[Arr, Arr]]:
        at = 0
        while at < len(xs):
            step = int(rng.integers(1, 2 * size + 1))
            yield xs[at : at + step], ys[at : at + step]
            at += step

    return walk


def assert_same(got: Reduced, expected: Reduced) -> None:
    np.testing.assert_array_equal(got.x, expected.x)
    np.testing.assert_array_equal(got.y, expected.y)
    assert got.x.dtype == np.int64
    got_counts = (got.total, got.nan, got.pos_inf, got.neg_inf, got.reduced)
    assert got_counts == (
        expected.total, expected.nan, expected.pos_inf, expected.neg_inf, expected.reduced,
    )  # fmt: skip


def random_history(rng: np.random.Generator, n: int, one_step: bool) -> tuple[Arr, Arr, Arr]:
    """A history in history order: repeated steps (or one step, along time), repeated times,
    values with ties, signed zeros, NaN and infinities."""
    if one_step:
        steps = np.full(n, 7, dtype=np.int64)
        stamps = np.sort(T0 + rng.integers(0, max(1, n // 3), n))
    else:
        steps = np.sort(rng.integers(-5, max(1, n // 2), n)).astype(np.int64)
        stamps = T0 + rng.integers(0, 3, n)
        order = np.lexsort((stamps, steps))
        steps, stamps = steps[order], stamps[order]
    kind = rng.integers(0, 3)
    if kind == 0:
        values = rng.normal(size=n)
    elif kind == 1:  # few levels: many ties for the lowest and highest of a bucket
        values = rng.integers(-2, 3, n).astype(np.float64)
        values[rng.random(n) < 0.1] = -0.0
    else:
        values = np.cumsum(rng.normal(size=n))
    special = rng.random(n)
    values[special < 0.05] = math.nan
    values[(special >= 0.05) & (special < 0.07)] = math.inf
    values[(special >= 0.07) & (special < 0.09)] = -math.inf
    return steps, stamps, values


def random_range(rng: np.random.Generator, xs: Arr) -> tuple[float | None, float | None]:
    if not len(xs) or rng.random() < 0.25:
        return None, None
    lo, hi = float(xs.min()), float(xs.max())
    pick = rng.integers(0, 6)
    a, b = sorted(rng.uniform(lo - 3, hi + 3, 2))
    if pick == 0:
        return float(xs[rng.integers(0, len(xs))]), None
    if pick == 1:
        return None, float(xs[rng.integers(0, len(xs))])
    if pick == 2:  # one x that many points share
        x = float(xs[rng.integers(0, len(xs))])
        return x, x
    if pick == 3:  # whole numbers: edges fall on points
        return float(math.floor(a)), float(math.ceil(b))
    if pick == 4:
        return (-math.inf, b) if rng.random() < 0.5 else (a, math.inf)
    return float(a), float(b)


def test_the_chunked_reduction_draws_what_the_whole_array_reduction_drew() -> None:
    rng = np.random.default_rng(20261201)
    cases = 0
    for n in (0, 1, 2, 9, 30, 31, 200, 1000, 2003):
        for one_step in (False, True):
            for _ in range(8):
                steps, stamps, values = random_history(rng, n, one_step)
                points = int(rng.choice([10, 11, 30, 31, 100, 1500]))
                xs = along(steps, stamps)
                x0, x1 = random_range(rng, xs)
                expected = whole_array(steps, stamps, values, x0, x1, points)
                bucket = max(1, n // max(1, points // 3))
                # chunks far smaller than a bucket, about one, and larger than the history
                for size in (1, max(1, bucket // 3), bucket + 1, 3 * bucket, n + 10):
                    walk = chunked(xs, values, rng, size)
                    assert_same(reduce_stream("m", walk, x0, x1, points), expected)
                    cases += 1
    assert cases > 700


def test_every_bucket_spanning_many_chunks_keeps_its_first_lowest_and_highest() -> None:
    # ties everywhere: the first of equal lowest (highest) values must win across chunks
    values = np.tile([1.0, 0.0, 2.0, 0.0, 2.0, 1.0], 300)
    steps = np.arange(len(values), dtype=np.int64)
    for points in (10, 30, 300, 3000):
        expected = whole_array(steps, steps, values, None, None, points)
        for size in (1, 5, 7, 64, 1000):
            got = reduce_stream("m", chunked(steps, values, np.random.default_rng(size), size),
                                None, None, points)  # fmt: skip
            assert_same(got, expected)


def log(api: httpx.Client, url: str, blocks: list[tuple[Arr, Arr, Arr]]) -> tuple[Arr, Arr, Arr]:
    """Send each (steps, stamps, values) as one batch; returns the history in order."""
    return log_blocks(api, url, blocks, 204)


def overlapping_blocks(rng: np.random.Generator, n_blocks: int, size: int) -> list[Any]:
    """Batches sent out of step order whose steps overlap, many points at one step and time
    across batches, NaN and infinities."""
    out = []
    for i in range(n_blocks):
        base = int(rng.integers(0, 400))
        steps = base + rng.integers(0, 200, size)
        stamps = T0 + rng.integers(0, 2, size)
        values = np.round(rng.normal(size=size), 1) + i % 3
        values[rng.integers(0, size, 4)] = [math.nan, math.inf, -math.inf, math.nan]
        out.append((steps, stamps, values))
    return out


def reduced(api: httpx.Client, run_id: str, **params: Any) -> Reduced:
    url = f"{API}/series/urn:modelyard:run:{run_id}/reduced"
    resp = api.get(url, params={"key": "loss", **params})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    out = Reduced("m", np.array(body["x"], dtype=np.int64), np.array(body["y"]), body["total"])
    out.nan, out.pos_inf, out.neg_inf = body["nan"], body["pos_inf"], body["neg_inf"]
    assert body["reduced"] == out.reduced
    return out


@pytest.mark.parametrize("chunk", [40, 100_000])
def test_charts_of_stored_histories_match_the_whole_array_reduction(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(series_store, "STREAM_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    runs = []
    for _ in range(2):
        run_id = new_run(api)
        blocks = overlapping_blocks(rng, 5, 300)
        runs.append((run_id, log(api, f"{API}/runs/{run_id}/batch", blocks)))
    ranges = [(None, None), (150.0, 333.0), (150.5, 150.5), (-10.0, 120.0), (401.0, 10**6)]
    for x0, x1 in ranges:
        for points in (10, 60, 600):
            params: dict[str, Any] = {"points": points}
            params |= {} if x0 is None else {"x0": x0, "x1": x1}
            figure = api.get(
                "/charts/metric", params={"key": "loss", "run": [r for r, _ in runs], **params}
            ).json()
            for (run_id, hist), trace in zip(runs, figure["data"], strict=True):
                expected = whole_array(*hist, x0, x1, points)
                assert_same(reduced(api, run_id, **params), expected)
                assert trace["x"] == expected.x.tolist()
                assert trace["y"] == expected.y.tolist()


def test_a_chart_of_a_series_logged_at_one_step_runs_along_time(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_store, "STREAM_CHUNK", 13)
    rng = np.random.default_rng(5)
    run_id = new_run(api)
    blocks = [
        (np.zeros(200, dtype=np.int64), T0 + rng.integers(0, 500, 200), rng.normal(size=200))
        for _ in range(3)
    ]
    steps, stamps, values = log(api, f"{API}/runs/{run_id}/batch", blocks)
    for params in ({}, {"x0": T0 + 100, "x1": T0 + 250.5}):
        expected = whole_array(steps, stamps, values, params.get("x0"), params.get("x1"), 30)
        assert_same(reduced(api, run_id, points=30, **params), expected)
    figure = api.get("/charts/metric", params={"key": "loss", "run": run_id}).json()
    assert figure["layout"]["xaxis"]["type"] == "date"


def test_a_chart_never_holds_a_whole_history(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = new_run(api)
    steps, stamps, values = log(
        api, f"{API}/runs/{run_id}/batch", overlapping_blocks(np.random.default_rng(9), 6, 400)
    )
    monkeypatch.setattr(series_store, "STREAM_CHUNK", 100)
    pages: list[int] = []
    read_page = series_store.read_page

    def counted(*args: Any, **kwargs: Any) -> series_store.Page:
        page = read_page(*args, **kwargs)
        pages.append(sum(len(p) for p in page.parts))
        return page

    def whole(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a chart read a whole history")

    monkeypatch.setattr(series_store, "read_page", counted)
    monkeypatch.setattr(series_store, "read_history", whole)
    assert_same(reduced(api, run_id, points=60), whole_array(steps, stamps, values, None, None, 60))
    assert max(pages) <= 100
    assert sum(pages) == 2 * len(steps), "two walks through the history"


def test_a_range_edge_that_is_not_a_number_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api)
    log(api, f"{API}/runs/{run_id}/batch", overlapping_blocks(np.random.default_rng(1), 1, 50))
    resp = api.get(
        f"{API}/series/urn:modelyard:run:{run_id}/reduced", params={"key": "loss", "x0": "nan"}
    )
    assert resp.status_code == 400, resp.text
    assert "NaN" in resp.text
