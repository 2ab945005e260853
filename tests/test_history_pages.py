"""History reads come in pages: GET /runs/{id}/metric-history and /series/{urn}/history take
start, end, limit and page_token; every page but the last names the next one, nothing is cut
silently, a limit beyond a page's maximum is refused. Expected points are computed here with
numpy from the batches each test sends. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from modelyard.floats import encode_float
from modelyard.sdk.client import Client
from modelyard.services import series_store
from tests.helpers import assert_error, new_run

API = "/api/v1"
ARROW = "application/vnd.apache.arrow.stream"
NEXT = "modelyard-next-page-token"
T0 = 1_700_000_000_000
DECODE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]


def log_blocks(api: httpx.Client, url: str, blocks: list[Arrays], status: int) -> Arrays:
    """Send each (steps, stamps, values) as one batch; returns every point in history order
    (step, then time, then the order they were sent in)."""
    for steps, stamps, values in blocks:
        columns = {
            "key": "loss",
            "value": [encode_float(v) for v in values.tolist()],
            "step": steps.tolist(),
            "timestamp": stamps.tolist(),
        }
        resp = api.post(url, json={"columns": columns})
        assert resp.status_code == status, resp.text
    steps, stamps, values = (np.concatenate([b[i] for b in blocks]) for i in range(3))
    order = np.lexsort((stamps, steps))  # stable: ties keep the order they were sent in
    return steps[order], stamps[order], values[order]


def messy_blocks(n_blocks: int = 6, size: int = 500, seed: int = 0) -> list[Arrays]:
    """Batches whose steps overlap, with many points at one step and time in several
    batches, and some NaN and infinities."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_blocks):
        steps = rng.integers(0, 300, size)
        stamps = T0 + rng.integers(0, 3, size)
        values = rng.normal(size=size)
        values[rng.integers(0, size, 5)] = [math.nan, math.inf, -math.inf, math.nan, 0.0]
        out.append((steps, stamps, values))
    return out


def read_page(api: httpx.Client, url: str, fmt: str, **params: Any) -> tuple[Arrays, str | None]:
    resp = api.get(url, params={"format": fmt, **params})
    assert resp.status_code == 200, resp.text
    token = resp.headers.get(NEXT)
    if fmt == "arrow":
        assert resp.headers["content-type"] == ARROW
        table = pa.ipc.open_stream(resp.content).read_all()
        assert table.schema == series_store.ARROW_SCHEMA
        cols = tuple(table.column(c).to_numpy() for c in ("step", "timestamp", "value"))
        return (cols[0], cols[1], cols[2]), token
    body = resp.json()
    assert body["next_page_token"] == token, "the body and the header name the same next page"
    values = np.array([DECODE.get(v, v) for v in body["values"]], dtype=np.float64)
    return (np.array(body["steps"]), np.array(body["timestamps"]), values), token


def read_all(api: httpx.Client, url: str, fmt: str, **params: Any) -> tuple[Arrays, int]:
    """Every page, following the tokens; returns the points and how many pages it took."""
    pages = []
    token = None
    while True:
        extra = {} if token is None else {"page_token": token}
        page, token = read_page(api, url, fmt, **params, **extra)
        pages.append(page)
        if token is None:
            break
        assert len(page[0]) == params["limit"], "only the last page may be short"
        assert len(pages) < 1000, "the pages never end"
    joined = tuple(np.concatenate([p[i] for p in pages]) for i in range(3))
    return (joined[0], joined[1], joined[2]), len(pages)


def assert_same(got: Arrays, expected: Arrays) -> None:
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])  # NaN equals NaN here


@pytest.fixture
def run_url(api: httpx.Client) -> str:
    return f"{API}/runs/{new_run(api)}"


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_pages_hold_every_point_once_in_history_order(
    api: httpx.Client, run_url: str, fmt: str
) -> None:
    expected = log_blocks(api, f"{run_url}/batch", messy_blocks(), 204)
    got, pages = read_all(api, f"{run_url}/metric-history", fmt, key="loss", limit=250)
    assert pages == 12, "3000 points in pages of 250, and no empty page after the last"
    assert_same(got, expected)
    got, pages = read_all(api, f"{run_url}/metric-history", fmt, key="loss", limit=97)
    assert pages == 31
    assert_same(got, expected)


@pytest.mark.parametrize("group", [1, 65_536], ids=["block-by-block", "blocks-together"])
def test_a_page_cut_among_equal_points_goes_on_with_the_next_of_them(
    api: httpx.Client, run_url: str, group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_store, "_GROUP_POINTS", group)  # blocks read in one query
    # 900 points at one step and one time, sent in three batches: only arrival orders them
    blocks = [
        (np.zeros(300, dtype=np.int64), np.full(300, T0), np.arange(300) + 1000.0 * i)
        for i in range(3)
    ]
    expected = log_blocks(api, f"{run_url}/batch", blocks, 204)
    for limit in (13, 299, 300, 301, 899, 900):
        got, _ = read_all(api, f"{run_url}/metric-history", "arrow", key="loss", limit=limit)
        assert_same(got, expected)


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_a_step_range_in_pages_holds_exactly_the_points_inside(
    api: httpx.Client, run_url: str, fmt: str
) -> None:
    steps, stamps, values = log_blocks(api, f"{run_url}/batch", messy_blocks(seed=1), 204)
    url = f"{run_url}/metric-history"
    for lo, hi in ((50, 120), (0, 0), (299, 10**9), (-5, 3)):
        inside = (steps >= lo) & (steps <= hi)
        got, _ = read_all(api, url, fmt, key="loss", start=lo, end=hi, limit=64)
        assert_same(got, (steps[inside], stamps[inside], values[inside]))
    got, pages = read_all(api, url, fmt, key="loss", start=10**6, limit=10)
    assert pages == 1
    assert len(got[0]) == 0


def test_a_series_time_range_in_pages(api: httpx.Client) -> None:
    resp = api.post(f"{API}/runs/{new_run(api)}/inputs", json={"datasets": [{"name": "d"}]})
    urn = resp.json()[0]
    rng = np.random.default_rng(2)
    blocks = [(np.zeros(400, dtype=np.int64), T0 + rng.integers(0, 10**6, 400),
               rng.normal(size=400)) for _ in range(5)]  # fmt: skip
    steps, stamps, values = log_blocks(api, f"{API}/series/{urn}/batch", blocks, 201)
    url = f"{API}/series/{urn}/history"
    got, pages = read_all(api, url, "json", key="loss", limit=128)
    assert pages == 16
    assert_same(got, (steps, stamps, values))
    lo, hi = T0 + 250_000, T0 + 500_000
    inside = (stamps >= lo) & (stamps <= hi)
    got, _ = read_all(api, url, "arrow", key="loss", axis="time", start=lo, end=hi, limit=50)
    assert_same(got, (steps[inside], stamps[inside], values[inside]))


def test_the_link_header_names_the_next_page(api: httpx.Client, run_url: str) -> None:
    steps, _, _ = log_blocks(api, f"{run_url}/batch", messy_blocks(n_blocks=1), 204)
    resp = api.get(f"{run_url}/metric-history", params={"key": "loss", "limit": 300})
    following = api.get(resp.links["next"]["url"])
    assert following.status_code == 200, following.text
    assert following.json()["steps"] == steps[300:].tolist()
    assert following.json()["next_page_token"] is None
    assert "link" not in following.headers
    assert NEXT not in following.headers


@pytest.mark.parametrize(
    ("fmt", "limit", "most"),
    [("json", 100_001, 100_000), ("json", 1_000_000, 100_000), ("arrow", 1_000_001, 1_000_000),
     ("arrow", 0, 1_000_000), ("json", -1, 100_000)],
)  # fmt: skip
def test_a_limit_beyond_the_maximum_is_refused_not_cut(
    api: httpx.Client, run_url: str, fmt: str, limit: int, most: int
) -> None:
    log_blocks(api, f"{run_url}/batch", messy_blocks(n_blocks=1), 204)
    for url in (f"{run_url}/metric-history", f"{API}/series/urn:modelyard:run:x/history"):
        resp = api.get(url, params={"key": "loss", "format": fmt, "limit": limit})
        message = assert_error(resp, 400)
        assert f"between 1 and {most} points" in message
        assert "next_page_token" in message


def test_the_largest_page_is_allowed(api: httpx.Client, run_url: str) -> None:
    log_blocks(api, f"{run_url}/batch", messy_blocks(n_blocks=1), 204)
    url = f"{run_url}/metric-history"
    for fmt, most in (("json", 100_000), ("arrow", 1_000_000)):
        page, token = read_page(api, url, fmt, key="loss", limit=most)
        assert len(page[0]) == 500
        assert token is None


def test_a_page_token_not_from_a_page_is_refused(api: httpx.Client, run_url: str) -> None:
    log_blocks(api, f"{run_url}/batch", messy_blocks(n_blocks=1), 204)
    for token in ("abc", "1.2.3", "1.2.3.4.5", "1.2.3.x"):
        resp = api.get(f"{run_url}/metric-history", params={"key": "loss", "page_token": token})
        assert "page_token" in assert_error(resp, 400)


def test_an_arrow_page_is_streamed_in_record_batches(
    api: httpx.Client, run_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = log_blocks(api, f"{run_url}/batch", messy_blocks(n_blocks=2), 204)
    monkeypatch.setattr(series_store, "ARROW_BATCH", 128)
    resp = api.get(f"{run_url}/metric-history", params={"key": "loss", "format": "arrow"})
    batches = list(pa.ipc.open_stream(resp.content))
    assert [b.num_rows for b in batches] == [128] * 7 + [104]
    table = pa.Table.from_batches(batches)
    got = tuple(table.column(c).to_numpy() for c in ("step", "timestamp", "value"))
    assert_same((got[0], got[1], got[2]), expected)


def test_a_page_reads_only_the_blocks_it_needs(
    api: httpx.Client, run_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a history logged in step order, a page near the start reads a page's worth of
    blocks, not the whole history: memory stays about one page whatever the length."""
    blocks = [(np.arange(i * 250, (i + 1) * 250), T0 + np.arange(250), np.ones(250))
              for i in range(20)]  # fmt: skip
    log_blocks(api, f"{run_url}/batch", blocks, 204)
    monkeypatch.setattr(series_store, "_GROUP_POINTS", 1)  # one block per query
    decoded: list[int] = []
    wanted = series_store._wanted
    monkeypatch.setattr(
        series_store,
        "_wanted",
        lambda rows, *a: decoded.extend(r.id for r in rows) or wanted(rows, *a),
    )
    page, token = read_page(api, f"{run_url}/metric-history", "arrow", key="loss", limit=300)
    assert page[0].tolist() == list(range(300))
    assert len(decoded) == 2
    decoded.clear()
    page, token = read_page(
        api, f"{run_url}/metric-history", "arrow", key="loss", limit=300, page_token=token
    )
    assert page[0].tolist() == list(range(300, 600))
    assert len(decoded) <= 3


def test_the_sdk_follows_the_pages(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(series_store.MAX_PAGE, "arrow", 100)
    run = client.start_run("pages")
    steps, _, values = messy_blocks(n_blocks=1, size=1050)[0]
    for s, v in zip(steps.tolist(), values.tolist(), strict=True):
        run.log_metric("loss", v, step=s)
    run.end()
    order = np.argsort(steps, kind="stable")
    history = client.get_metric_history(run.id, "loss")
    assert history.steps.tolist() == steps[order].tolist()
    np.testing.assert_array_equal(history.values, values[order])
