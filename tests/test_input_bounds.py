"""Bounds that keep one request from breaking things for everyone: times past the year 9999,
file names longer than a file system takes, prediction files that are not text."""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from modelyard.limits import MAX_MILLIS
from modelyard.metadata import tables as t
from modelyard.times import utc_text
from tests.helpers import API, assert_error, get_page, new_run


def test_run_times_run_to_the_end_of_the_year_9999(api: httpx.Client) -> None:
    last = new_run(api, "times", start_time=MAX_MILLIS)
    assert api.get(f"{API}/runs/{last}").json()["start_time"] == MAX_MILLIS
    assert utc_text(MAX_MILLIS, "%Y-%m-%d %H:%M:%S") == "9999-12-31 23:59:59"
    for field in ("start_time", "end_time"):
        body = {"project": "times", field: MAX_MILLIS + 1}
        message = assert_error(api.post(f"{API}/runs", json=body), 422, "INVALID_INPUT")
        assert field in message
    ended = api.patch(f"{API}/runs/{last}", json={"status": "finished", "end_time": 2**53})
    assert_error(ended, 422, "INVALID_INPUT")
    runs = api.post(f"{API}/runs/search", json={"project": "times"}).json()["runs"]
    assert [r["run_id"] for r in runs] == [last]  # the refused ones made nothing
    assert runs[0]["status"] == "running"


def test_pages_show_a_time_no_calendar_has(api: httpx.Client, app: FastAPI) -> None:
    """A store written before times were checked may hold one: the pages still answer."""
    run_id = new_run(api, "old-store", name="far-future")
    with app.state.store.engine.begin() as conn:
        conn.execute(
            update(t.run).where(t.run.c.id == run_id).values(start_time=2**53, end_time=2**53)
        )
    for path in ("/", "/projects/old-store", f"/runs/{run_id}"):
        page = get_page(api, path)
        assert "far-future" in page
    assert f"{2**53:,} ms" in get_page(api, f"/runs/{run_id}")


@pytest.mark.stores("local", "s3")
def test_an_artifact_path_part_is_at_most_255_bytes(api: httpx.Client) -> None:
    run_id = new_run(api, "names")
    ok = "a" * 251 + ".txt"
    assert api.put(f"{API}/runs/{run_id}/artifacts/dir/{ok}", content=b"x").status_code == 201
    for too_long in ("a" * 252 + ".txt", "é" * 128, "dir/" + "b" * 256 + "/c.txt"):
        resp = api.put(f"{API}/runs/{run_id}/artifacts/{too_long}", content=b"x")
        assert "255 bytes" in assert_error(resp, 400, "INVALID_INPUT")
    paths = [a["path"] for a in api.get(f"{API}/runs/{run_id}/artifacts").json()]
    assert paths == [f"dir/{ok}"]


def test_a_csv_of_predictions_that_is_not_utf8_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api, "bytes")
    body = b"y_true,y_score\n\xff\xfe,0.1\n1,0.9\n"
    resp = api.post(
        f"{API}/runs/{run_id}/evaluations",
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert "UTF-8" in assert_error(resp, 400, "INVALID_INPUT")
    assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/runs", {"project": "a\x00b"}),
        ("/runs", {"project": "p", "name": "x\x00"}),
        ("/runs", {"project": "p", "tags": {"team": "v\x00"}}),
        ("/runs", {"project": "p", "params": {"k\x00": "v"}}),
        ("/projects", {"name": "n\x00"}),
    ],
)
def test_nul_in_a_json_body_is_refused_on_every_database(
    api: httpx.Client, path: str, body: dict[str, object]
) -> None:
    """PostgreSQL cannot store a NUL character; SQLite would store look-alike text: both refuse."""
    message = assert_error(api.post(f"{API}{path}", json=body), 400, "INVALID_INPUT")
    assert "NUL" in message
    assert api.get(f"{API}/projects").json() == []


def test_nul_in_a_batch_is_refused_and_nothing_of_it_is_kept(api: httpx.Client) -> None:
    run_id = new_run(api, "batches")
    url = f"{API}/runs/{run_id}/batch"
    for body in (
        {"metrics": [{"key": "loss", "value": 1.0}, {"key": "l\x00ss", "value": 2.0}]},
        {"columns": {"key": ["loss", "x\x00"], "value": [1.0, 2.0]}},
        {"metrics": [{"key": "loss", "value": 1.0}], "tags": {"t": "\x00"}},
    ):
        assert "NUL" in assert_error(api.post(url, json=body), 400, "INVALID_INPUT")
    table = pa.table({"key": ["loss", "bad\x00key"], "value": [1.0, 2.0]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = api.post(
        url,
        content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert "NUL" in assert_error(arrow, 400, "INVALID_INPUT")
    run = api.get(f"{API}/runs/{run_id}").json()
    assert run["metrics"] == {}
    assert run["tags"] == {}


def test_the_text_backslash_u0000_is_not_a_nul(api: httpx.Client) -> None:
    run_id = new_run(api, "text", tags={"escape": "\\u0000 and \\\\u0000"})
    assert api.get(f"{API}/runs/{run_id}").json()["tags"]["escape"] == "\\u0000 and \\\\u0000"


def test_nul_in_an_address_is_refused_in_the_shape_of_its_family(api: httpx.Client) -> None:
    new_run(api, "addr")
    assert "NUL" in assert_error(api.get(f"{API}/runs/ab%00cd"), 400, "INVALID_INPUT")
    assert "NUL" in assert_error(api.get(f"{API}/changes?actor=a%00"), 400, "INVALID_INPUT")
    page = api.get("/projects/ad%00dr")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "NUL" in page.text
