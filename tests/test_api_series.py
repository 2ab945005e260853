"""REST API of series of any entity: POST /series/{urn}/batch (rows, columns, Arrow) and the
reads (history, a step or time range, a reduced range for charts, latest values). Expected
values are computed here with numpy from the data each test sends. Runs unchanged on SQLite
and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from modelyard.metadata import tables as t
from tests.helpers import assert_error, new_run

API = "/api/v1"
ARROW = "application/vnd.apache.arrow.stream"
T0 = 1_700_000_000_000
DECODE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def new_dataset(api: httpx.Client, name: str = "clicks") -> str:
    """A dataset entity (consumed by a run); returns its URN."""
    resp = api.post(f"{API}/runs/{new_run(api)}/inputs", json={"datasets": [{"name": name}]})
    assert resp.status_code == 200, resp.text
    urn: str = resp.json()[0]
    return urn


def send(api: httpx.Client, urn: str, **body: Any) -> httpx.Response:
    return api.post(f"{API}/series/{urn}/batch", json=body)


def record(api: httpx.Client, urn: str, **body: Any) -> int:
    resp = send(api, urn, **body)
    assert resp.status_code == 201, resp.text
    recorded: int = resp.json()["recorded"]
    return recorded


def history(api: httpx.Client, urn: str, key: str, **params: Any) -> dict[str, Any]:
    resp = api.get(f"{API}/series/{urn}/history", params={"key": key, **params})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    body["values"] = [DECODE.get(v, v) for v in body["values"]]
    return body


def same_floats(got: list[float], expected: np.ndarray[Any, Any]) -> bool:
    return bool(np.array_equal(np.asarray(got, dtype=np.float64), expected, equal_nan=True))


@pytest.fixture
def urn(api: httpx.Client) -> str:
    return new_dataset(api)


def test_rows_columns_and_arrow_read_back_exactly(api: httpx.Client, urn: str) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=3000)
    values[[5, 17, 2999]] = [math.nan, math.inf, -math.inf]
    steps = np.arange(3000)
    stamps = T0 + steps * 7
    wire = [v if math.isfinite(v) else {math.inf: "Infinity", -math.inf: "-Infinity"}.get(v, "NaN")
            for v in values.tolist()]  # fmt: skip
    rows = [
        {"key": "latency", "value": wire[i], "step": i, "timestamp": int(stamps[i])}
        for i in range(1000)
    ]
    assert record(api, urn, metrics=rows) == 1000
    cols = {"key": "latency", "value": wire[1000:2000], "step": list(range(1000, 2000)),
            "timestamp": stamps[1000:2000].tolist()}  # fmt: skip
    assert record(api, urn, columns=cols) == 1000
    table = pa.table({"key": ["latency"] * 1000, "value": values[2000:], "step": steps[2000:],
                      "timestamp": stamps[2000:]})  # fmt: skip
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    resp = api.post(
        f"{API}/series/{urn}/batch",
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": ARROW},
    )
    assert resp.status_code == 201, resp.text
    body = history(api, urn, "latency")
    assert body["key"] == "latency"
    assert body["steps"] == steps.tolist()
    assert body["timestamps"] == stamps.tolist()
    assert same_floats(body["values"], values)
    resp = api.get(f"{API}/series/{urn}/history", params={"key": "latency", "format": "arrow"})
    assert resp.headers["content-type"] == ARROW
    got = pa.ipc.open_stream(resp.content).read_all()
    assert got.column("step").to_pylist() == steps.tolist()
    assert np.array_equal(got.column("value").to_numpy(), values, equal_nan=True)


def test_step_and_time_ranges_hold_exactly_the_points_inside(api: httpx.Client, urn: str) -> None:
    rng = np.random.default_rng(2)
    steps = rng.integers(0, 500, 2000)
    stamps = T0 + rng.integers(0, 10**6, 2000)
    values = rng.normal(size=2000)
    for at in range(0, 2000, 400):  # five blocks with overlapping steps and times
        part = slice(at, at + 400)
        record(api, urn, columns={"key": "q", "value": values[part].tolist(),
               "step": steps[part].tolist(), "timestamp": stamps[part].tolist()})  # fmt: skip
    order = np.lexsort((stamps, steps))
    for lo, hi in ((100, 200), (0, 0), (499, 10**9), (-5, 3)):
        inside = order[(steps[order] >= lo) & (steps[order] <= hi)]
        body = history(api, urn, "q", start=lo, end=hi)
        assert body["steps"] == steps[inside].tolist()
        assert body["values"] == values[inside].tolist()
    lo, hi = T0 + 250_000, T0 + 260_000
    inside = order[(stamps[order] >= lo) & (stamps[order] <= hi)]
    body = history(api, urn, "q", axis="time", start=lo, end=hi)
    assert body["timestamps"] == stamps[inside].tolist()
    assert body["values"] == values[inside].tolist()
    assert history(api, urn, "q", start=10**6)["steps"] == []
    resp = api.get(f"{API}/series/{urn}/history", params={"key": "q", "start": 5, "end": 1})
    assert "after" in assert_error(resp, 400)


def test_reduced_range_keeps_every_extreme(api: httpx.Client, urn: str) -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    values = np.cumsum(rng.normal(size=n))
    values[[123, 77_777]] = [1e6, -1e6]  # spikes a chart must show
    values[500] = math.nan
    wire: list[Any] = values.tolist()
    wire[500] = "NaN"
    record(api, urn, columns={"key": "drift", "value": wire, "step": list(range(n)),
           "timestamp": [T0] * n})  # fmt: skip
    resp = api.get(f"{API}/series/{urn}/reduced", params={"key": "drift", "points": 300})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["x_kind"] == "step"
    assert body["total"] == n
    assert body["nan"] == 1
    assert body["reduced"] is True
    assert len(body["x"]) <= 301
    assert body["x"] == sorted(body["x"])
    assert body["y"] == values[body["x"]].tolist()  # drawn points are real points
    assert {0, 123, 77_777, n - 1} <= set(body["x"])
    finite = np.isfinite(values)
    assert max(body["y"]) == values[finite].max()
    assert min(body["y"]) == values[finite].min()
    zoom = api.get(
        f"{API}/series/{urn}/reduced", params={"key": "drift", "x0": 1000, "x1": 1099}
    ).json()
    assert zoom["x"] == list(range(999, 1101))  # the range and one point beyond each edge
    assert zoom["reduced"] is False


def test_reduced_series_logged_at_one_step_runs_along_time(api: httpx.Client, urn: str) -> None:
    stamps = [T0 + 1000 * i for i in (3, 1, 2, 0)]
    record(api, urn, columns={"key": "rps", "value": [3.0, 1.0, 2.0, 0.0], "timestamp": stamps})
    body = api.get(f"{API}/series/{urn}/reduced", params={"key": "rps"}).json()
    assert body["x_kind"] == "time"
    assert body["x"] == sorted(stamps)
    assert body["y"] == [0.0, 1.0, 2.0, 3.0]


def test_latest_values_follow_the_highest_step_then_the_latest_time(
    api: httpx.Client, urn: str
) -> None:
    assert api.get(f"{API}/series/{urn}/latest").json() == {}
    record(api, urn, metrics=[
        {"key": "p99", "value": 9.0, "step": 2, "timestamp": T0},
        {"key": "p99", "value": 7.0, "step": 1, "timestamp": T0 + 50},
        {"key": "err", "value": "NaN", "step": 0, "timestamp": T0},
    ])  # fmt: skip
    record(api, urn, metrics=[{"key": "p99", "value": 8.0, "step": 2, "timestamp": T0 + 1}])
    record(api, urn, metrics=[{"key": "p99", "value": 1.0, "step": 1, "timestamp": T0 + 99}])
    latest = api.get(f"{API}/series/{urn}/latest").json()
    assert latest == {
        "err": {"step": 0, "timestamp": T0, "value": "NaN"},
        "p99": {"step": 2, "timestamp": T0 + 1, "value": 8.0},
    }
    only = api.get(f"{API}/series/{urn}/latest", params={"key": ["err", "nope"]}).json()
    assert set(only) == {"err"}


def test_series_of_entities_are_kept_apart(api: httpx.Client) -> None:
    a, b = new_dataset(api, "a"), new_dataset(api, "b")
    record(api, a, columns={"key": "rows", "value": [1.0, 2.0]})
    record(api, b, columns={"key": "rows", "value": [5.0]})
    assert history(api, a, "rows")["values"] == [1.0, 2.0]
    assert history(api, b, "rows")["values"] == [5.0]


def test_a_runs_metrics_read_through_its_urn(api: httpx.Client) -> None:
    run_id = new_run(api)
    points = {"key": "loss", "value": [0.5, 0.25], "step": [0, 1]}
    assert api.post(f"{API}/runs/{run_id}/batch", json={"columns": points}).status_code == 204
    urn = f"urn:modelyard:run:{run_id}"
    mine = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": "loss"}).json()
    assert history(api, urn, "loss") == mine
    assert api.get(f"{API}/series/{urn}/latest").json()["loss"]["value"] == 0.25
    # a run's metrics are logged through the run, which checks that it is still running
    assert "runs/{run_id}/batch" in assert_error(send(api, urn, metrics=[]), 400)


def test_unknown_entities_and_series_are_404(api: httpx.Client, urn: str) -> None:
    ghost = "urn:modelyard:deployment:ghost"
    assert "does not exist" in assert_error(
        send(api, ghost, columns={"key": "x", "value": [1]}), 404
    )
    for path in ("history", "reduced", "latest"):
        resp = api.get(f"{API}/series/{ghost}/{path}", params={"key": "x"})
        assert "does not exist" in assert_error(resp, 404)
    record(api, urn, columns={"key": "y", "value": [1.0]})
    record(api, new_dataset(api, "other"), columns={"key": "x", "value": [1.0]})
    for params in ({}, {"start": 0, "end": 10}):
        resp = api.get(f"{API}/series/{urn}/history", params={"key": "x", **params})
        assert "not logged" in assert_error(resp, 404)
    resp = api.get(f"{API}/series/urn:modelyard:run:{'0' * 32}/history", params={"key": "x"})
    assert_error(resp, 404)
    assert_error(api.get(f"{API}/series/not-a-urn/latest"), 400)
    assert api.get(f"{API}/timeseries", params={"urn": urn, "name": "x"}).status_code == 404


@pytest.mark.parametrize("name", ["a/b", "a b", "é", "a%b"])
def test_an_entity_whose_urn_holds_escapes_is_reached_by_encoding_the_urn_in_the_path(
    api: httpx.Client, name: str
) -> None:
    urn = new_dataset(api, name)
    # The URN as is in the path: the server receives it decoded, so it names no entity.
    message = assert_error(send(api, urn, columns={"key": "x", "value": [1.0]}), 400)
    assert quote(urn, safe=":") in message
    for path in ("history", "reduced", "latest"):
        resp = api.get(f"{API}/series/{urn}/{path}", params={"key": "x"})
        assert quote(urn, safe=":") in assert_error(resp, 400)
    assert record(api, quote(urn, safe=":"), columns={"key": "x", "value": [1.0]}) == 1
    assert history(api, quote(urn, safe=":"), "x")["values"] == [1.0]


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "x", "value": 1.0}, {"key": "x", "value": "high"}]},
        {"columns": {"key": "x", "value": [1.0, 2.0], "step": [1]}},
        {"columns": {"key": "x", "value": [1.0], "colour": ["red"]}},
        {"columns": {"key": "", "value": [1.0]}},
        {"metrics": [{"key": "x", "value": 1.0, "timestamp": -1}]},
        {"columns": {"key": "x", "value": [1.0], "step": [2**63]}},
        {"params": {"a": "b"}},
    ],
)
def test_bad_batches_are_refused_and_change_nothing(
    api: httpx.Client, app: FastAPI, urn: str, body: dict[str, Any]
) -> None:
    assert_error(send(api, urn, **body), (400, 422))
    assert api.get(f"{API}/series/{urn}/latest").json() == {}
    with app.state.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.series_block)).scalar_one() == 0


def test_bad_arrow_and_oversized_batches_are_refused(
    api: httpx.Client, app_with: Any, urn: str
) -> None:
    resp = api.post(f"{API}/series/{urn}/batch", content=b"nope", headers={"content-type": ARROW})
    assert "Arrow" in assert_error(resp, 400)
    small = app_with(max_batch_points=10)
    from tests.conftest import in_process_client

    with in_process_client(small) as other:
        assert_error(send(other, urn, columns={"key": "x", "value": [1.0] * 11}), 413)
        assert other.get(f"{API}/series/{urn}/latest").json() == {}


def test_many_tiny_batches_are_compacted_in_order(api: httpx.Client, app: FastAPI) -> None:
    urn = new_dataset(api)
    sent = []
    for i in range(100):
        record(api, urn, columns={"key": "x", "value": [float(i)], "timestamp": [T0]})
        sent.append(float(i))
    with app.state.store.read() as conn:
        blocks = conn.execute(select(func.count()).select_from(t.series_block)).scalar_one()
    assert blocks < 100 / 10
    assert history(api, urn, "x")["values"] == sent  # equal step and time: arrival order


def test_a_batch_sent_again_with_its_idempotency_key_is_recorded_once(
    api: httpx.Client, urn: str
) -> None:
    body = {"columns": {"key": "x", "value": [1.0, 2.0]}}
    url = f"{API}/series/{urn}/batch"
    first = api.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    again = api.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    assert first.json() == {"recorded": 2}
    assert again.json() == {"recorded": 0}
    assert api.post(url, json=body, headers={"Idempotency-Key": "k-2"}).json() == {"recorded": 2}
    assert history(api, urn, "x")["values"] == [1.0, 2.0, 1.0, 2.0]
    other = new_dataset(api, "other")  # keys are per entity
    assert api.post(
        f"{API}/series/{other}/batch", json=body, headers={"Idempotency-Key": "k-1"}
    ).json() == {"recorded": 2}
    assert_error(api.post(url, json=body, headers={"Idempotency-Key": "no spaces"}), 422)
    assert history(api, urn, "x")["values"] == [1.0, 2.0, 1.0, 2.0]
