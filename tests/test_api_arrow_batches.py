"""Metric batches sent as Arrow IPC streams: same results as JSON, same refusals."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI

from tests.conftest import in_process_client
from tests.helpers import new_run

ARROW = "application/vnd.apache.arrow.stream"


def arrow_body(**columns: pa.Array) -> bytes:
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def post(api: httpx.Client, run_id: str, body: bytes, **headers: str) -> httpx.Response:
    return api.post(
        f"/api/v1/runs/{run_id}/batch", content=body, headers={"content-type": ARROW, **headers}
    )


def history(api: httpx.Client, run_id: str, key: str) -> pa.Table:
    resp = api.get(f"/api/v1/runs/{run_id}/metric-history", params={"key": key, "format": "arrow"})
    assert resp.status_code == 200, resp.text
    return pa.ipc.open_stream(resp.content).read_all()


def test_arrow_batch_round_trips_exactly(api: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    keys = rng.choice(["loss", "acc", "lr"], n)
    steps = rng.integers(-(2**40), 2**40, n)
    stamps = rng.integers(0, 2**41, n)
    values = rng.normal(size=n)
    values[:3] = [math.nan, math.inf, -math.inf]
    run_id = new_run(api, "arrow")
    body = arrow_body(
        key=pa.array(keys).dictionary_encode(),
        value=pa.array(values),
        step=pa.array(steps),
        timestamp=pa.array(stamps),
    )
    assert post(api, run_id, body).status_code == 204
    for key in ("loss", "acc", "lr"):
        mine = keys == key
        order = np.lexsort((stamps[mine], steps[mine]))
        got = history(api, run_id, key)
        assert got.column("step").to_numpy().tolist() == steps[mine][order].tolist()
        assert got.column("timestamp").to_numpy().tolist() == stamps[mine][order].tolist()
        np.testing.assert_array_equal(got.column("value").to_numpy(), values[mine][order])


def test_arrow_defaults_and_idempotency_key(api: httpx.Client) -> None:
    run_id = new_run(api, "arrow")
    body = arrow_body(key=pa.array(["m", "m"]), value=pa.array([1, 2], pa.int32()))
    for _ in range(2):
        assert post(api, run_id, body, **{"Idempotency-Key": "k1"}).status_code == 204
    got = history(api, run_id, "m")
    assert got.column("value").to_pylist() == [1.0, 2.0]
    assert got.column("step").to_pylist() == [0, 0]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"key": pa.array(["a"])}, "columns key and value"),
        ({"key": pa.array(["a"]), "value": pa.array([1.0]), "extra": pa.array([1])}, "columns"),
        ({"key": pa.array([1]), "value": pa.array([1.0])}, "'key'"),
        ({"key": pa.array(["a"]), "value": pa.array(["x"])}, "'value'"),
        ({"key": pa.array(["a"]), "value": pa.array([1.0]), "step": pa.array([1.5])}, "'step'"),
        ({"key": pa.array(["a", None]), "value": pa.array([1.0, 2.0])}, "null"),
        ({"key": pa.array([""]), "value": pa.array([1.0])}, "key #0"),
        (
            {"key": pa.array(["a"]), "value": pa.array([1.0]), "timestamp": pa.array([-1])},
            "timestamps",
        ),
        (
            {
                "key": pa.array(["a"]),
                "value": pa.array([1.0]),
                "step": pa.array([2**64 - 1], pa.uint64()),
            },
            "64 bits",
        ),
    ],
)
def test_bad_arrow_batches_are_refused_and_store_nothing(
    api: httpx.Client, columns: dict[str, pa.Array], message: str
) -> None:
    run_id = new_run(api, "arrow")
    resp = post(api, run_id, arrow_body(**columns))
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]
    assert api.get(f"/api/v1/runs/{run_id}").json()["metrics"] == {}


def test_a_body_that_is_not_arrow_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api, "arrow")
    resp = post(api, run_id, b"not arrow at all")
    assert resp.status_code == 400
    assert "Arrow IPC stream" in resp.json()["error"]["message"]


def test_an_arrow_batch_over_the_point_limit_is_413(app_with: Callable[..., FastAPI]) -> None:
    with in_process_client(app_with(max_batch_points=5)) as api:
        run_id = new_run(api, "arrow")
        body = arrow_body(key=pa.array(["m"] * 6), value=pa.array([1.0] * 6))
        resp = post(api, run_id, body)
        assert resp.status_code == 413
        assert "limit is 5" in resp.json()["error"]["message"]
        assert api.get(f"/api/v1/runs/{run_id}").json()["metrics"] == {}
