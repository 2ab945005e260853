"""Runs whose client died: heartbeats, the sweep that marks silent runs lost, their return
when the client is heard from again, and how the portal shows them. Runs unchanged on SQLite
and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from modelyard.metadata import tables as t
from modelyard.metadata.engine import make_engine, upgrade
from modelyard.metadata.store import Store
from modelyard.metadata.urn import run_urn
from modelyard.services.liveness import SWEEP_ACTOR, sweep_interval, sweep_lost_runs
from modelyard.times import utc_text
from tests.helpers import API, assert_error, get_page, new_run
from tests.test_api_metrics import get_run, now_ms
from tests.test_events import lifespan
from tests.test_web_pages import text_of

MINUTE_MS = 60_000


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.store
    return store


def run_changes(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    """The run's run_state changes, oldest first."""
    resp = api.get(f"{API}/changes", params={"urn": run_urn(run_id)})
    assert resp.status_code == 200, resp.text
    return [c for c in reversed(resp.json()) if c["aspect"] == "run_state"]


def run_state_events(app: FastAPI, run_id: str) -> list[tuple[int, str]]:
    """(version, actor) of the outbox events of the run's run_state, in order."""
    with store_of(app).read() as conn:
        rows = conn.execute(
            select(t.event.c.version, t.event.c.actor)
            .where(t.event.c.urn == run_urn(run_id), t.event.c.aspect == "run_state")
            .order_by(t.event.c.id)
        ).all()
    return [(r.version, r.actor) for r in rows]


def make_lost(app: FastAPI, *run_ids: str) -> None:
    """Age the runs' last heartbeat by an hour, then sweep with a 5-minute lost-after."""
    with store_of(app).engine.begin() as conn:
        conn.execute(
            update(t.run)
            .where(t.run.c.id.in_(run_ids))
            .values(last_heartbeat=t.run.c.last_heartbeat - 60 * MINUTE_MS)
        )
    assert sweep_lost_runs(store_of(app), lost_after_ms=5 * MINUTE_MS) == len(run_ids)


# --- heartbeats


def test_a_new_run_was_heard_from_when_it_was_created(api: httpx.Client) -> None:
    before = now_ms()
    run = get_run(api, new_run(api, start_time=before - 10 * MINUTE_MS))
    assert run["status"] == "running"
    assert before <= run["last_heartbeat"] <= now_ms()


@pytest.mark.parametrize("body", [None, {}], ids=["no-body", "empty-object"])
def test_a_heartbeat_answers_the_run_and_records_when(
    api: httpx.Client, body: dict[str, Any] | None
) -> None:
    rid = new_run(api)
    created = get_run(api, rid)["last_heartbeat"]
    time.sleep(0.002)
    resp = api.post(f"{API}/runs/{rid}/heartbeat", json=body)
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert run["run_id"] == rid
    assert run["status"] == "running"
    assert run["last_heartbeat"] > created
    assert get_run(api, rid) == run
    # Only the status is versioned: a heartbeat on a running run adds no change.
    assert len(run_changes(api, rid)) == 1


def test_a_heartbeat_with_content_is_refused(api: httpx.Client) -> None:
    rid = new_run(api)
    before = get_run(api, rid)
    message = assert_error(api.post(f"{API}/runs/{rid}/heartbeat", json={"status": "x"}), 422)
    assert "status" in message
    assert get_run(api, rid) == before


def test_a_heartbeat_for_an_unknown_run_is_a_404(api: httpx.Client) -> None:
    resp = api.post(f"{API}/runs/{'0' * 32}/heartbeat")
    assert "does not exist" in assert_error(resp, 404, "NOT_FOUND")


@pytest.mark.parametrize("status", ["finished", "failed", "killed"])
def test_a_heartbeat_for_an_ended_run_is_a_409_and_changes_nothing(
    api: httpx.Client, status: str
) -> None:
    rid = new_run(api)
    assert api.patch(f"{API}/runs/{rid}", json={"status": status}).status_code == 200
    before, changes = get_run(api, rid), run_changes(api, rid)
    message = assert_error(api.post(f"{API}/runs/{rid}/heartbeat"), 409)
    assert "has ended" in message
    assert status in message
    assert get_run(api, rid) == before
    assert run_changes(api, rid) == changes


# --- the sweep


def test_the_sweep_marks_a_silent_running_run_lost(api: httpx.Client, app: FastAPI) -> None:
    silent, ended = new_run(api, name="silent"), new_run(api, name="ended")
    assert api.patch(f"{API}/runs/{ended}", json={"status": "finished"}).status_code == 200
    heard = get_run(api, silent)["last_heartbeat"]
    store = store_of(app)
    # Not yet: heard from less than lost-after ago.
    assert sweep_lost_runs(store, lost_after_ms=MINUTE_MS, now=heard + MINUTE_MS - 1) == 0
    assert get_run(api, silent)["status"] == "running"
    assert sweep_lost_runs(store, lost_after_ms=MINUTE_MS, now=heard + MINUTE_MS + 1) == 1
    run = get_run(api, silent)
    assert run["status"] == "lost"
    assert run["last_heartbeat"] == heard
    assert run["end_time"] is None
    assert get_run(api, ended)["status"] == "finished"
    last = run_changes(api, silent)[-1]
    assert (last["version"], last["actor"]) == (2, SWEEP_ACTOR)
    assert run_state_events(app, silent)[-1] == (2, SWEEP_ACTOR)
    # A second sweep finds nothing more to do.
    assert sweep_lost_runs(store, lost_after_ms=MINUTE_MS, now=heard + 2 * MINUTE_MS) == 0
    assert len(run_changes(api, silent)) == 2


def test_a_sweep_marks_many_runs_lost_in_batches(
    api: httpx.Client, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelyard.services.liveness.SWEEP_BATCH", 2)
    ids = [new_run(api, name=f"r{i}") for i in range(5)]
    make_lost(app, *ids)
    assert {get_run(api, rid)["status"] for rid in ids} == {"lost"}


def test_the_sweep_interval_follows_lost_after() -> None:
    assert sweep_interval(300) == 60
    assert sweep_interval(20) == 5


def test_the_server_marks_silent_runs_lost_on_its_own(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(run_lost_after_seconds=0.2)
    with lifespan(app) as http:
        rid = new_run(http)
        deadline = time.monotonic() + 20
        while get_run(http, rid)["status"] != "lost":
            assert time.monotonic() < deadline, "the run was never marked lost"
            time.sleep(0.05)
        run = http.post(f"{API}/runs/{rid}/heartbeat").json()
        assert run["status"] == "running"


def test_lost_after_zero_never_marks_runs_lost(app_with: Callable[..., FastAPI]) -> None:
    app = app_with(run_lost_after_seconds=0)
    with lifespan(app) as http:
        rid = new_run(http)
        assert app.state.lost_run_sweeper._thread is None
        assert get_run(http, rid)["status"] == "running"


# --- coming back


def test_a_heartbeat_brings_a_lost_run_back(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api)
    make_lost(app, rid)
    before = now_ms()
    resp = api.post(f"{API}/runs/{rid}/heartbeat", json={})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "running"
    assert resp.json()["last_heartbeat"] >= before
    changes = run_changes(api, rid)
    assert [(c["version"], c["actor"]) for c in changes] == [
        (1, "local"),
        (2, SWEEP_ACTOR),
        (3, "local"),
    ]
    assert run_state_events(app, rid) == [(1, "local"), (2, SWEEP_ACTOR), (3, "local")]


WRITES: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "metrics": lambda api, rid: api.post(
        f"{API}/runs/{rid}/batch", json={"metrics": [{"key": "loss", "value": 0.5}]}
    ),
    "params": lambda api, rid: api.post(f"{API}/runs/{rid}/batch", json={"params": {"lr": "1"}}),
    "tags": lambda api, rid: api.post(f"{API}/runs/{rid}/batch", json={"tags": {"k": "v"}}),
    "step": lambda api, rid: api.put(f"{API}/runs/{rid}/steps/train", json={"status": "running"}),
    "status running": lambda api, rid: api.patch(f"{API}/runs/{rid}", json={"status": "running"}),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_write_by_its_client_brings_a_lost_run_back(
    api: httpx.Client, app: FastAPI, write: str
) -> None:
    rid = new_run(api)
    make_lost(app, rid)
    resp = WRITES[write](api, rid)
    assert resp.status_code < 300, resp.text
    run = get_run(api, rid)
    assert run["status"] == "running"
    assert run["last_heartbeat"] >= now_ms() - MINUTE_MS
    assert [c["actor"] for c in run_changes(api, rid)] == ["local", SWEEP_ACTOR, "local"]


def test_a_write_moves_the_last_heartbeat_on_only_when_it_is_a_few_seconds_old(
    api: httpx.Client, app: FastAPI
) -> None:
    rid = new_run(api)
    created = get_run(api, rid)["last_heartbeat"]
    WRITES["metrics"](api, rid).raise_for_status()
    assert get_run(api, rid)["last_heartbeat"] == created  # batches in a stream: left alone
    with store_of(app).engine.begin() as conn:
        conn.execute(update(t.run).where(t.run.c.id == rid).values(last_heartbeat=created - 10_000))
    before = now_ms()
    WRITES["metrics"](api, rid).raise_for_status()
    assert get_run(api, rid)["last_heartbeat"] >= before


def test_a_lost_run_can_still_be_ended(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api)
    make_lost(app, rid)
    resp = api.patch(f"{API}/runs/{rid}", json={"status": "killed"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "killed"
    assert resp.json()["end_time"] is not None
    assert_error(api.post(f"{API}/runs/{rid}/heartbeat"), 409)


def test_a_client_cannot_declare_a_run_lost(api: httpx.Client) -> None:
    rid = new_run(api)
    assert_error(api.patch(f"{API}/runs/{rid}", json={"status": "lost"}), 422)
    assert get_run(api, rid)["status"] == "running"


# --- search and pages


def test_runs_can_be_searched_by_status_lost_and_ordered_by_last_heartbeat(
    api: httpx.Client, app: FastAPI
) -> None:
    lost_a, lost_b, running = new_run(api), new_run(api), new_run(api)
    make_lost(app, lost_a, lost_b)
    resp = api.post(f"{API}/runs/search", json={"filter": "attributes.status = 'lost'"})
    assert resp.status_code == 200, resp.text
    assert {r["run_id"] for r in resp.json()["runs"]} == {lost_a, lost_b}
    resp = api.post(
        f"{API}/runs/search",
        json={"filter": "status = 'running'", "order_by": ["last_heartbeat desc"]},
    )
    assert [r["run_id"] for r in resp.json()["runs"]] == [running]


def test_the_run_page_shows_a_lost_run_and_its_last_heartbeat(
    api: httpx.Client, app: FastAPI
) -> None:
    rid = new_run(api, name="killed-by-oom")
    api.put(f"{API}/runs/{rid}/steps/train", json={"status": "running"}).raise_for_status()
    make_lost(app, rid)
    heard = get_run(api, rid)["last_heartbeat"]
    doc = get_page(api, f"/runs/{rid}")
    state = re.search(r'<span id="run-state".*?</span></span>', doc, re.S)
    assert state
    assert 'data-run-status="lost"' in state.group(0)
    assert "lost — last heartbeat 1 h ago" in text_of(state.group(0))
    assert utc_text(heard) in text_of(state.group(0))
    assert "has not heard from this run's client" in text_of(doc)
    assert re.search(r"Last heartbeat\s*</dt><dd>" + re.escape(utc_text(heard)), doc)
    # The pipeline says the run is lost and keeps looking, since the run may come back.
    pipeline = re.search(r'<section id="pipeline"[^>]*>', doc)
    assert pipeline
    assert 'data-run-status="lost"' in pipeline.group(0)
    assert "hx-trigger" in pipeline.group(0)
    assert "train · its run is lost" in text_of(doc)
    assert re.search(r"Duration\s*</dt><dd>[^<]* to its last heartbeat", doc)
    # Back when its client is heard from; the page (and the fragment it polls) say so.
    api.post(f"{API}/runs/{rid}/heartbeat").raise_for_status()
    fragment = get_page(api, f"/runs/{rid}/pipeline")
    assert 'data-run-status="running"' in fragment
    assert "has not heard" not in fragment


def test_run_tables_mark_lost_runs(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "vision", name="gone-quiet")
    make_lost(app, rid)
    heard = utc_text(get_run(api, rid)["last_heartbeat"])
    for path in ("/projects/vision", "/", "/search?q=gone-quiet"):
        doc = get_page(api, path)
        assert f'class="status status-lost" title="no heartbeat since {heard} UTC"' in doc, path


def test_a_lost_runs_duration_stops_at_its_last_heartbeat(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "vision", name="long-gone", start_time=now_ms() - 180 * MINUTE_MS)
    make_lost(app, rid)  # last heard from an hour ago, two hours after it started
    for path in ("/projects/vision", "/", f"/compare?run={rid}&run={new_run(api, 'vision')}"):
        doc = get_page(api, path)
        rows = [text_of(r) for r in re.findall(r"<tr.*?</tr>", doc, re.S)]
        # Its row in a runs table; in the comparison, the row of durations.
        row = next(r for r in rows if r.startswith("Duration") or ("long-gone" in r and "h " in r))
        assert "2h 00m" in row, (path, row)
        assert "3h 00m" not in row, (path, row)


def test_the_home_page_does_not_list_a_lost_run_as_running(api: httpx.Client, app: FastAPI) -> None:
    lost = new_run(api, "nlp", name="bert-lost")
    new_run(api, "nlp", name="bert-live")
    make_lost(app, lost)
    for doc in (get_page(api, "/"), get_page(api, "/fragments/running")):
        panel = re.search(r'<div id="running".*', doc, re.S)
        assert panel
        running = re.search(r"<h2>Running now</h2>(.*?)</table>", panel.group(0), re.S)
        assert running
        assert "bert-live" in running.group(1)
        assert "bert-lost" not in running.group(1)
        lost_list = re.search(r'<ul class="lost-runs".*?</ul>', panel.group(0), re.S)
        assert lost_list
        assert "bert-lost" in lost_list.group(0)
        assert "bert-live" not in lost_list.group(0)
        assert "last heartbeat 1 h ago" in text_of(lost_list.group(0))


# --- the migration


def test_the_upgrade_takes_each_runs_start_as_its_last_heartbeat(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0009")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO project (id, name, description, created_at, created_by) "
                    "VALUES (1, 'p', '', 1, 'me')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO run (id, project_id, name, status, start_time, created_by) "
                    "VALUES ('a', 1, 'a', 'running', 1000, 'me'), "
                    "('b', 1, 'b', 'finished', 2000, 'me')"
                )
            )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(select(t.run.c.id, t.run.c.last_heartbeat).order_by(t.run.c.id))
            assert [tuple(r) for r in rows] == [("a", 1000), ("b", 2000)]
        store = Store(engine)
        assert sweep_lost_runs(store, lost_after_ms=MINUTE_MS) == 1
        with engine.connect() as conn:
            statuses = conn.execute(select(t.run.c.id, t.run.c.status).order_by(t.run.c.id))
            assert [tuple(r) for r in statuses] == [("a", "lost"), ("b", "finished")]
    finally:
        engine.dispose()
