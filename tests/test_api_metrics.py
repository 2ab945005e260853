"""REST API of metrics: POST /runs/{id}/batch (rows and columns, with params and tags) and
GET /runs/{id}/metric-history (JSON and Arrow). Expected values are computed here, with
numpy, from the data each test generates. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from modelyard.metadata import tables as t
from tests.conftest import in_process_client
from tests.helpers import assert_error, new_run

API = "/api/v1"
T0 = 1_700_000_000_000  # a timestamp in milliseconds
ENCODED = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def get_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    resp = api.get(f"{API}/runs/{run_id}")
    assert resp.status_code == 200, resp.text
    run: dict[str, Any] = resp.json()
    return run


def post_batch(api: httpx.Client, run_id: str, **body: Any) -> httpx.Response:
    return api.post(f"{API}/runs/{run_id}/batch", json=body)


def log(api: httpx.Client, run_id: str, **body: Any) -> None:
    resp = post_batch(api, run_id, **body)
    assert resp.status_code == 204, resp.text
    assert resp.content == b""


def history(api: httpx.Client, run_id: str, key: str) -> dict[str, Any]:
    resp = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": key})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = resp.json()
    assert set(body) == {"key", "steps", "timestamps", "values", "next_page_token"}
    assert body["next_page_token"] is None, "a short history comes in one page"
    assert body["key"] == key
    return body


def history_arrow(api: httpx.Client, run_id: str, key: str) -> pa.Table:
    resp = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": key, "format": "arrow"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(resp.content).read_all()
    assert table.schema.names == ["step", "timestamp", "value"]
    assert table.schema.field("step").type == pa.int64()
    assert table.schema.field("timestamp").type == pa.int64()
    assert table.schema.field("value").type == pa.float64()
    return table


def decode(values: list[float | str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """JSON values back to floats; only the three documented strings are allowed."""
    out = []
    for v in values:
        if isinstance(v, str):
            assert v in ENCODED, v
            out.append(ENCODED[v])
        else:
            out.append(float(v))
    return np.array(out, dtype=np.float64)


def rows(
    key: str,
    values: Any,
    steps: Any,
    stamps: Any,
) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": v, "step": int(s), "timestamp": int(ts)}
        for v, s, ts in zip(values, steps, stamps, strict=True)
    ]


def assert_history(
    api: httpx.Client,
    run_id: str,
    key: str,
    steps: Any,
    stamps: Any,
    values: Any,
) -> None:
    """The stored history, as JSON and as Arrow, is exactly these points in this order."""
    expected_values = np.asarray(values, dtype=np.float64)
    body = history(api, run_id, key)
    assert body["steps"] == [int(s) for s in steps]
    assert body["timestamps"] == [int(ts) for ts in stamps]
    np.testing.assert_array_equal(decode(body["values"]), expected_values)
    table = history_arrow(api, run_id, key)
    assert table.column("step").to_pylist() == [int(s) for s in steps]
    assert table.column("timestamp").to_pylist() == [int(ts) for ts in stamps]
    np.testing.assert_array_equal(table.column("value").to_numpy(), expected_values)


def assert_never_logged(api: httpx.Client, run_id: str, *keys: str) -> None:
    for key in keys:
        resp = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": key})
        assert_error(resp, 404, "NOT_FOUND")
    assert get_run(api, run_id)["metrics"] == {}


# --- logging and reading back


def test_rows_round_trip_exactly(api: httpx.Client) -> None:
    rng = np.random.default_rng(1)
    n = 200
    steps = np.arange(n) * 3
    stamps = T0 + np.arange(n) * 17
    values = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    log(api, run_id := new_run(api), metrics=rows("loss", values.tolist(), steps, stamps))
    assert_history(api, run_id, "loss", steps, stamps, values)
    latest = get_run(api, run_id)["metrics"]
    assert latest == {
        "loss": {"value": values[-1], "step": int(steps[-1]), "timestamp": int(stamps[-1])}
    }


def test_columns_with_one_key_string_and_with_a_key_list(api: httpx.Client) -> None:
    rng = np.random.default_rng(2)
    n = 120
    run_id = new_run(api)
    steps, stamps, values = np.arange(n), T0 + np.arange(n), rng.random(n)
    columns = {
        "key": "acc",
        "value": values.tolist(),
        "step": steps.tolist(),
        "timestamp": stamps.tolist(),
    }
    log(api, run_id, columns=columns)
    assert_history(api, run_id, "acc", steps, stamps, values)

    keys = rng.choice(["a", "b", "c"], n)
    other = rng.random(n)
    columns = {
        "key": keys.tolist(),
        "value": other.tolist(),
        "step": steps.tolist(),
        "timestamp": stamps.tolist(),
    }
    log(api, run_id, columns=columns)
    latest = get_run(api, run_id)["metrics"]
    assert set(latest) == {"acc", "a", "b", "c"}
    for key in "abc":
        mask = keys == key
        assert_history(api, run_id, key, steps[mask], stamps[mask], other[mask])
        last = np.flatnonzero(mask)[-1]
        assert latest[key] == {
            "value": other[last],
            "step": int(steps[last]),
            "timestamp": int(stamps[last]),
        }


def test_rows_and_columns_in_one_batch(api: httpx.Client) -> None:
    run_id = new_run(api)
    log(
        api,
        run_id,
        metrics=[{"key": "loss", "value": 0.5, "step": 1, "timestamp": T0 + 1}],
        columns={"key": "loss", "value": [0.25], "step": [2], "timestamp": [T0 + 2]},
    )
    assert_history(api, run_id, "loss", [1, 2], [T0 + 1, T0 + 2], [0.5, 0.25])


def test_step_and_timestamp_defaults(api: httpx.Client) -> None:
    run_id = new_run(api)
    before = now_ms()
    log(api, run_id, metrics=[{"key": "r", "value": 1.0}])
    log(api, run_id, columns={"key": "c", "value": [2.0, 3.0]})
    after = now_ms()
    for key, n in (("r", 1), ("c", 2)):
        body = history(api, run_id, key)
        assert body["steps"] == [0] * n
        assert all(before <= ts <= after for ts in body["timestamps"]), body


SPECIALS: list[float | str] = [1.5, "NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", -2.0]
SPECIAL_FLOATS = [float(v) for v in SPECIALS]  # Python's own reading of the same strings
SPECIAL_JSON = [1.5, "NaN", "Infinity", "-Infinity", "NaN", "Infinity", "-Infinity", -2.0]


@pytest.mark.parametrize("form", ["rows", "columns"])
def test_nan_and_infinities_round_trip(api: httpx.Client, form: str) -> None:
    run_id = new_run(api)
    n = len(SPECIALS)
    steps, stamps = list(range(n)), [T0 + i for i in range(n)]
    if form == "rows":
        log(api, run_id, metrics=rows("x", SPECIALS, steps, stamps))
    else:
        log(
            api, run_id, columns={"key": "x", "value": SPECIALS, "step": steps, "timestamp": stamps}
        )

    body = history(api, run_id, "x")
    assert body["values"] == SPECIAL_JSON
    assert_history(api, run_id, "x", steps, stamps, SPECIAL_FLOATS)
    arrow = history_arrow(api, run_id, "x").column("value").to_numpy()
    np.testing.assert_array_equal(np.isnan(arrow), np.isnan(SPECIAL_FLOATS))
    np.testing.assert_array_equal(np.isposinf(arrow), np.isposinf(SPECIAL_FLOATS))
    np.testing.assert_array_equal(np.isneginf(arrow), np.isneginf(SPECIAL_FLOATS))


def test_latest_values_can_be_nan_or_infinite(api: httpx.Client) -> None:
    run_id = new_run(api)
    log(
        api,
        run_id,
        metrics=[
            {"key": "n", "value": 1.0, "step": 0, "timestamp": T0},
            {"key": "n", "value": "NaN", "step": 1, "timestamp": T0},
            {"key": "p", "value": "Infinity", "step": 1, "timestamp": T0},
            {"key": "m", "value": "-inf", "step": 1, "timestamp": T0},
        ],
    )
    latest = get_run(api, run_id)["metrics"]
    assert {k: m["value"] for k, m in latest.items()} == {
        "n": "NaN",
        "p": "Infinity",
        "m": "-Infinity",
    }
    # A finite point at a later step replaces a special latest value.
    log(api, run_id, metrics=[{"key": "n", "value": 2.0, "step": 2, "timestamp": T0}])
    assert get_run(api, run_id)["metrics"]["n"] == {"value": 2.0, "step": 2, "timestamp": T0}


def test_history_order_and_latest_with_points_out_of_order(api: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    n = 90
    steps = rng.integers(0, 25, n)
    stamps = T0 + rng.permutation(n) * 7  # distinct, so the order is fully determined
    values = rng.normal(size=n)
    order = np.lexsort((stamps, steps))  # by step, then timestamp
    newest = order[-1]

    # Send in a shuffled order, the newest point in the first of several batches.
    sent = rng.permutation(n)
    sent = np.r_[newest, sent[sent != newest]]
    run_id = new_run(api)
    for i, part in enumerate(np.array_split(sent, 5)):
        if i % 2:
            log(api, run_id, metrics=rows("loss", values[part].tolist(), steps[part], stamps[part]))
        else:
            columns = {
                "key": "loss",
                "value": values[part].tolist(),
                "step": steps[part].tolist(),
                "timestamp": stamps[part].tolist(),
            }
            log(api, run_id, columns=columns)

    assert_history(api, run_id, "loss", steps[order], stamps[order], values[order])
    assert get_run(api, run_id)["metrics"]["loss"] == {
        "value": values[newest],
        "step": int(steps[newest]),
        "timestamp": int(stamps[newest]),
    }


def test_latest_is_highest_step_then_latest_timestamp(api: httpx.Client) -> None:
    run_id = new_run(api)

    def point(value: float, step: int, ts: int) -> None:
        log(api, run_id, metrics=[{"key": "m", "value": value, "step": step, "timestamp": ts}])

    def latest() -> dict[str, Any]:
        m: dict[str, Any] = get_run(api, run_id)["metrics"]["m"]
        return m

    point(1.0, 5, T0 + 100)
    point(2.0, 3, T0 + 200)  # a lower step does not win, however late
    assert latest() == {"value": 1.0, "step": 5, "timestamp": T0 + 100}
    point(3.0, 5, T0 + 50)  # the same step but earlier does not win
    assert latest() == {"value": 1.0, "step": 5, "timestamp": T0 + 100}
    point(4.0, 5, T0 + 150)  # the same step and later wins
    assert latest() == {"value": 4.0, "step": 5, "timestamp": T0 + 150}
    point(5.0, 6, T0)  # a higher step wins, however early
    assert latest() == {"value": 5.0, "step": 6, "timestamp": T0}
    assert_history(
        api,
        run_id,
        "m",
        [3, 5, 5, 5, 6],
        [T0 + 200, T0 + 50, T0 + 100, T0 + 150, T0],
        [2.0, 3.0, 1.0, 4.0, 5.0],
    )


def test_a_batch_retried_with_its_idempotency_key_is_stored_once(api: httpx.Client) -> None:
    run_id = new_run(api)
    points = [
        {"key": "loss", "value": 0.5, "step": 1, "timestamp": T0},
        {"key": "loss", "value": "NaN", "step": 2, "timestamp": T0},
        {"key": "acc", "value": "Infinity", "step": 3, "timestamp": T0},
    ]
    for _ in range(3):  # the first attempt and two retries of one batch
        r = api.post(
            f"/api/v1/runs/{run_id}/batch",
            json={"metrics": points},
            headers={"Idempotency-Key": "batch-1"},
        )
        assert r.status_code == 204, r.text
    assert_history(api, run_id, "loss", [1, 2], [T0, T0], [0.5, math.nan])
    assert_history(api, run_id, "acc", [3], [T0], [math.inf])
    # Another key is another batch, even with the same points.
    r = api.post(
        f"/api/v1/runs/{run_id}/batch",
        json={"metrics": points[:1]},
        headers={"Idempotency-Key": "batch-2"},
    )
    assert r.status_code == 204
    assert_history(api, run_id, "loss", [1, 1, 2], [T0, T0, T0], [0.5, 0.5, math.nan])


def test_a_bad_idempotency_key_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api)
    for bad in ("x" * 65, "has space", ""):
        r = api.post(
            f"/api/v1/runs/{run_id}/batch",
            headers={"Idempotency-Key": bad},
            json={"metrics": [{"key": "loss", "value": 1.0}]},
        )
        assert r.status_code == 422, (bad, r.text)
        assert "idempotency" in r.json()["error"]["message"].lower()
    assert "loss" not in get_run(api, run_id)["metrics"]


def test_another_value_at_the_same_step_is_another_point(api: httpx.Client) -> None:
    run_id = new_run(api)
    log(api, run_id, metrics=[{"key": "loss", "value": 0.5, "step": 1, "timestamp": T0}])
    log(api, run_id, metrics=[{"key": "loss", "value": 0.4, "step": 1, "timestamp": T0 + 1}])
    log(api, run_id, metrics=[{"key": "loss", "value": 0.3, "step": 1, "timestamp": T0 + 1}])
    body = history(api, run_id, "loss")
    assert body["steps"] == [1, 1, 1]
    assert body["timestamps"] == [T0, T0 + 1, T0 + 1]
    assert body["values"][0] == 0.5
    # Two points share step and timestamp: both are kept, in either order.
    assert sorted(body["values"][1:]) == [0.3, 0.4]


def test_large_steps_round_trip_exactly(api: httpx.Client) -> None:
    steps = [-(2**62), 0, 2**53 - 1, 2**53, 2**53 + 1, 2**62 - 1, 2**62]
    stamps = [T0, T0, T0, T0, T0, 2**53 - 1, 2**53]
    values = np.linspace(0.0, 1.0, len(steps))
    run_id = new_run(api)
    log(api, run_id, metrics=rows("big", values.tolist(), steps, stamps))
    log(
        api,
        run_id,
        columns={"key": "big-c", "value": values.tolist(), "step": steps, "timestamp": stamps},
    )
    for key in ("big", "big-c"):
        assert_history(api, run_id, key, steps, stamps, values)
        assert get_run(api, run_id)["metrics"][key] == {
            "value": 1.0,
            "step": 2**62,
            "timestamp": 2**53,
        }


def test_many_points_in_one_batch_match_numpy(api: httpx.Client) -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    steps = np.arange(n)
    stamps = T0 + steps * 10
    values = np.cumsum(rng.normal(size=n))
    run_id = new_run(api)
    log(
        api,
        run_id,
        columns={
            "key": "walk",
            "value": values.tolist(),
            "step": steps.tolist(),
            "timestamp": stamps.tolist(),
        },
    )
    table = history_arrow(api, run_id, "walk")
    got = table.column("value").to_numpy()
    np.testing.assert_array_equal(got, values)
    assert table.column("step").to_pylist() == steps.tolist()


# --- limits, atomicity and bad input


@pytest.fixture
def small_api(app_with: Callable[..., FastAPI]) -> Iterator[httpx.Client]:
    """An API whose batches hold at most 5 metric points."""
    with in_process_client(app_with(max_batch_points=5)) as client:
        yield client


def _points(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"key": "m", "value": float(i), "step": i, "timestamp": T0 + i}
        for i in range(start, start + n)
    ]


def _columns(n: int, start: int = 0) -> dict[str, Any]:
    idx = list(range(start, start + n))
    return {
        "key": "m",
        "value": [float(i) for i in idx],
        "step": idx,
        "timestamp": [T0 + i for i in idx],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": _points(6)},
        {"columns": _columns(6)},
        {"metrics": _points(3), "columns": _columns(3, start=3)},
        {"metrics": _points(6), "params": {"a": "1"}, "tags": {"t": "1"}},
    ],
    ids=["rows", "columns", "rows+columns", "with-params"],
)
def test_batch_over_the_point_limit_is_413_and_stores_nothing(
    small_api: httpx.Client, body: dict[str, Any]
) -> None:
    run_id = new_run(small_api)
    message = assert_error(
        small_api.post(f"{API}/runs/{run_id}/batch", json=body), 413, "PAYLOAD_TOO_LARGE"
    )
    assert "5" in message
    assert_never_logged(small_api, run_id, "m")
    run = get_run(small_api, run_id)
    assert run["params"] == {}
    assert run["tags"] == {}

    # At the limit exactly, the batch is taken whole.
    resp = small_api.post(f"{API}/runs/{run_id}/batch", json={"metrics": _points(5)})
    assert resp.status_code == 204, resp.text
    assert history(small_api, run_id, "m")["steps"] == list(range(5))


def test_a_value_column_that_is_a_string_is_bad_input_not_too_large(
    small_api: httpx.Client,
) -> None:
    run_id = new_run(small_api)
    resp = small_api.post(
        f"{API}/runs/{run_id}/batch", json={"columns": {"key": "m", "value": "1.0,2.0,3.0"}}
    )
    assert "value" in assert_error(resp, 400, "INVALID_INPUT")
    assert_never_logged(small_api, run_id, "m")


def _good() -> list[dict[str, Any]]:
    return [{"key": "m", "value": 0.1 * i, "step": i, "timestamp": T0 + i} for i in range(1, 6)]


def _row(**changes: Any) -> dict[str, Any]:
    return {
        "metrics": [*_good(), {"key": "m", "value": 9.0, "step": 9, "timestamp": T0, **changes}]
    }


def _col(**changes: Any) -> dict[str, Any]:
    cols: dict[str, Any] = {
        "key": "m",
        "value": [1.0, 2.0, 3.0],
        "step": [10, 11, 12],
        "timestamp": [T0, T0, T0],
    }
    for name, last in changes.items():
        if isinstance(cols[name], list):
            cols[name] = [*cols[name][:-1], last]
        else:
            cols[name] = [cols[name]] * 2 + [last]
    return {"metrics": _good(), "columns": cols}


BAD_BATCHES: dict[str, dict[str, Any]] = {
    "rows: value abc": _row(value="abc"),
    "rows: value dict": _row(value={"v": 1}),
    "rows: value null": _row(value=None),
    "rows: value bool": _row(value=True),
    "rows: value numeric string": _row(value="1.5"),
    "rows: value beyond float": _row(value=10**400),
    "rows: step float": _row(step=1.5),
    "rows: step whole float": _row(step=2.0),
    "rows: step bool": _row(step=True),
    "rows: step string": _row(step="3"),
    "rows: step beyond int64": _row(step=2**63),
    "rows: timestamp negative": _row(timestamp=-1),
    "rows: timestamp bool": _row(timestamp=True),
    "rows: key too long": _row(key="k" * 251),
    "rows: key empty": _row(key=""),
    "rows: unknown field": _row(unit="s"),
    "columns: value abc": _col(value="abc"),
    "columns: value dict": _col(value={"v": 1}),
    "columns: value null": _col(value=None),
    "columns: value bool": _col(value=True),
    "columns: value numeric string": _col(value="1.5"),
    "columns: value beyond float": _col(value=10**400),
    "columns: step float": _col(step=1.5),
    "columns: step whole float": _col(step=2.0),
    "columns: step bool": _col(step=True),
    "columns: step beyond int64": _col(step=2**63),
    "columns: timestamp negative": _col(timestamp=-1),
    "columns: timestamp float": _col(timestamp=1.5),
    "columns: key too long": _col(key="k" * 251),
    "columns: key dict": _col(key={"k": 1}),
    "columns: key number": _col(key=7),
    "columns: one key too long": {"columns": {"key": "k" * 251, "value": [1.0]}},
    "columns: lengths differ": {"columns": {"key": "m", "value": [1.0, 2.0], "step": [1]}},
    "columns: value not a list": {"columns": {"key": "m", "value": "1.0"}},
    "columns: no value": {"columns": {"key": "m", "step": [1]}},
    "columns: unknown column": {"columns": {"key": "m", "value": [1.0], "unit": ["s"]}},
    "metrics not a list": {"metrics": {"key": "m", "value": 1.0}},
}


@pytest.mark.parametrize("body", BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_one_bad_point_refuses_the_whole_batch(api: httpx.Client, body: dict[str, Any]) -> None:
    run_id = new_run(api, params={"kept": "1"})
    log(api, run_id, metrics=[{"key": "m", "value": -1.0, "step": 0, "timestamp": T0}])
    before = get_run(api, run_id)

    resp = post_batch(api, run_id, **body, params={"new": "p"}, tags={"new": "t"})
    assert_error(resp, (400, 422), "INVALID_INPUT")
    assert get_run(api, run_id) == before
    assert_history(api, run_id, "m", [0], [T0], [-1.0])


def test_params_tags_and_metrics_land_together(api: httpx.Client) -> None:
    run_id = new_run(api)
    log(
        api,
        run_id,
        params={"lr": "0.1"},
        tags={"team": "a"},
        metrics=[{"key": "loss", "value": 0.5, "step": 1, "timestamp": T0}],
    )
    run = get_run(api, run_id)
    assert run["params"] == {"lr": "0.1"}
    assert run["tags"] == {"team": "a"}
    assert run["metrics"] == {"loss": {"value": 0.5, "step": 1, "timestamp": T0}}


def test_a_conflicting_param_fails_the_whole_batch(api: httpx.Client) -> None:
    run_id = new_run(api, params={"lr": "0.1"}, tags={"team": "a"})
    before = get_run(api, run_id)
    resp = post_batch(
        api,
        run_id,
        params={"lr": "0.2", "depth": "6"},
        tags={"team": "b", "new": "x"},
        metrics=_points(3),
        columns={"key": "other", "value": [1.0, 2.0]},
    )
    assert "lr" in assert_error(resp, 409, "CONFLICT")
    assert get_run(api, run_id) == before
    assert_never_logged(api, run_id, "m", "other")

    # The same batch without the clash goes through, whole.
    log(api, run_id, params={"lr": "0.1", "depth": "6"}, tags={"new": "x"}, metrics=_points(3))
    run = get_run(api, run_id)
    assert run["params"] == {"lr": "0.1", "depth": "6"}
    assert run["tags"] == {"team": "a", "new": "x"}
    assert history(api, run_id, "m")["steps"] == [0, 1, 2]


def test_metrics_on_an_ended_run_are_refused_and_not_stored(api: httpx.Client) -> None:
    run_id = new_run(api)
    resp = api.patch(f"{API}/runs/{run_id}", json={"status": "finished"})
    assert resp.status_code == 200, resp.text
    before = get_run(api, run_id)
    for body in (
        {"metrics": _points(2)},
        {"columns": _columns(2)},
        {"metrics": _points(1), "tags": {"t": "1"}},
    ):
        message = assert_error(post_batch(api, run_id, **body), 409, "INVALID_STATE")
        assert "finished" in message
    assert get_run(api, run_id) == before
    assert_never_logged(api, run_id, "m")


def test_batch_to_an_unknown_run_is_404(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    resp = post_batch(api, run_id, metrics=_points(1))
    assert run_id in assert_error(resp, 404, "NOT_FOUND")


def test_metric_history_of_unknown_key_or_run_is_404(api: httpx.Client) -> None:
    run_id, other = new_run(api), new_run(api)
    log(api, run_id, metrics=_points(2))
    log(api, other, metrics=[{"key": "only-other", "value": 1.0, "step": 0, "timestamp": T0}])
    url = f"{API}/runs/{run_id}/metric-history"
    for fmt in ("json", "arrow"):
        for key in ("never", "only-other"):
            message = assert_error(api.get(url, params={"key": key, "format": fmt}), 404)
            assert key in message
        unknown = uuid.uuid4().hex
        resp = api.get(f"{API}/runs/{unknown}/metric-history", params={"key": "m", "format": fmt})
        assert unknown in assert_error(resp, 404, "NOT_FOUND")
    assert_error(api.get(url), 422, "INVALID_INPUT")
    assert_error(api.get(url, params={"key": "m", "format": "csv"}), 422, "INVALID_INPUT")


def test_many_tiny_batches_are_compacted_and_keep_their_order(api: httpx.Client, app: Any) -> None:
    run_id = new_run(api)
    rng = np.random.default_rng(9)
    sent: list[tuple[int, int, float]] = []
    for _ in range(200):
        points = [
            # steps repeat across batches with the same timestamp: only arrival orders them
            {"key": "loss", "value": float(rng.normal()), "step": int(s), "timestamp": 1000}
            for s in rng.integers(0, 40, 3)
        ]
        resp = api.post(f"{API}/runs/{run_id}/batch", json={"metrics": points})
        assert resp.status_code == 204, resp.text
        sent += [(p["step"], p["timestamp"], p["value"]) for p in points]
    with app.state.store.read() as conn:
        blocks = conn.execute(select(func.count()).select_from(t.series_block)).scalar_one()
    assert blocks < 200 / 10  # not one block per batch
    expected = sorted(sent, key=lambda p: (p[0], p[1]))  # stable: arrival order among ties
    hist = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": "loss"}).json()
    assert hist["steps"] == [p[0] for p in expected]
    assert hist["values"] == [p[2] for p in expected]
