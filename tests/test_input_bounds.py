"""Bounds that keep one request from breaking things for everyone: times past the year 9999,
file names longer than a file system takes, prediction files that are not text."""

from __future__ import annotations

import httpx
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
