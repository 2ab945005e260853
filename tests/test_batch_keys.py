"""An Idempotency-Key stands for one batch: the same batch again is a no-op, another batch
under the key is a 409 naming what differs and changes nothing. Runs and entities' series,
JSON and Arrow; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyarrow as pa

from tests.helpers import assert_error, new_run

API = "/api/v1"
ARROW = "application/vnd.apache.arrow.stream"


def send(api: httpx.Client, run_id: str, key: str, **body: Any) -> httpx.Response:
    return api.post(f"{API}/runs/{run_id}/batch", json=body, headers={"Idempotency-Key": key})


def stored(api: httpx.Client, run_id: str, key: str = "loss") -> tuple[list[float], dict[str, Any]]:
    hist = api.get(f"{API}/runs/{run_id}/metric-history", params={"key": key})
    run = api.get(f"{API}/runs/{run_id}").json()
    values = hist.json()["values"] if hist.status_code == 200 else []
    return values, {"params": run["params"], "tags": run["tags"]}


def test_the_same_batch_again_is_a_no_op_even_without_timestamps(api: httpx.Client) -> None:
    run_id = new_run(api)
    body = {"metrics": [{"key": "loss", "value": 0.5, "step": 1}], "params": {"lr": "0.1"}}
    assert send(api, run_id, "b-1", **body).status_code == 204
    time.sleep(0.01)  # a retry arrives later: the server's own timestamps differ
    assert send(api, run_id, "b-1", **body).status_code == 204
    assert stored(api, run_id)[0] == [0.5]


def test_a_key_reused_for_another_batch_is_409_naming_what_differs(api: httpx.Client) -> None:
    run_id = new_run(api)
    body = {
        "metrics": [{"key": "loss", "value": 0.5, "step": 1, "timestamp": 1_000}],
        "params": {"lr": "0.1"},
        "tags": {"stage": "a"},
    }
    assert send(api, run_id, "b-1", **body).status_code == 204
    before = stored(api, run_id)
    cases = [
        ({"metrics": [{"key": "loss", "value": 0.6, "step": 1, "timestamp": 1_000}]}, ["metrics"]),
        ({"metrics": [{"key": "loss", "value": 0.5, "step": 2, "timestamp": 1_000}]}, ["metrics"]),
        ({"tags": {"stage": "b"}}, ["tags"]),
        ({"params": {"lr": "0.1", "depth": "3"}, "tags": {}}, ["params", "tags"]),
    ]
    for change, differ in cases:
        resp = send(api, run_id, "b-1", **{**body, **change})
        message = assert_error(resp, 409, "CONFLICT")
        assert "this Idempotency-Key was used for a different batch" in message
        assert resp.json()["error"]["details"] == differ
        assert stored(api, run_id) == before


def arrow(values: list[float]) -> bytes:
    table = pa.table({"key": pa.array(["loss"] * len(values)), "value": pa.array(values)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_arrow_batches_are_held_to_their_key_too(api: httpx.Client) -> None:
    run_id = new_run(api)
    url = f"{API}/runs/{run_id}/batch"
    headers = {"content-type": ARROW, "Idempotency-Key": "a-1"}
    assert api.post(url, content=arrow([1.0, 2.0]), headers=headers).status_code == 204
    assert api.post(url, content=arrow([1.0, 2.0]), headers=headers).status_code == 204
    resp = api.post(url, content=arrow([1.0, 3.0]), headers=headers)
    assert assert_error(resp, 409, "CONFLICT")
    assert stored(api, run_id)[0] == [1.0, 2.0]


def test_an_entity_series_key_reused_for_another_batch_is_409(api: httpx.Client) -> None:
    resp = api.post(f"{API}/runs/{new_run(api)}/inputs", json={"datasets": [{"name": "clicks"}]})
    assert resp.status_code == 200, resp.text
    urn = resp.json()[0]
    url = f"{API}/series/{urn}/batch"
    key = {"Idempotency-Key": "s-1"}
    body = {"columns": {"key": "x", "value": [1.0, 2.0]}}
    assert api.post(url, json=body, headers=key).json() == {"recorded": 2}
    assert api.post(url, json=body, headers=key).json() == {"recorded": 0}
    other = {"columns": {"key": "x", "value": [1.0, 2.5]}}
    resp = api.post(url, json=other, headers=key)
    assert "different batch" in assert_error(resp, 409, "CONFLICT")
    assert resp.json()["error"]["details"] == ["metrics"]
    hist = api.get(f"{API}/series/{urn}/history", params={"key": "x"}).json()
    assert hist["values"] == [1.0, 2.0]
