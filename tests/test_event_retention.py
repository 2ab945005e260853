"""Settled events leave the outbox a retention period after they were delivered or given up,
a bounded batch at a time; pending and retrying ones stay whatever their age, so delivery
order per entity holds, and concurrent dispatchers prune side by side."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from modelyard.app import create_app
from modelyard.metadata import outbox
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.services.dispatcher import PRUNE_EVERY_MS, Dispatcher, backoff_ms
from modelyard.settings import Settings
from tests.conftest import PG_URL
from tests.helpers import API
from tests.test_events import Clock, Failing, Recorder, dispatcher_for, outbox_rows, project_urn

HOUR_MS = 3_600_000


def add_settled(store: Store, count: int, *, settled_at: int, status: str = "delivered") -> None:
    """``count`` events of their own entities, settled (delivered or given up) at ``settled_at``."""
    rows = [
        {
            **outbox.outbox_row(
                urn=f"urn:modelyard:project:{90_000 + i}",
                entity_type="project",
                aspect="tags",
                kind="updated",
                actor="local",
                created_at=settled_at,
                version=1,
            ),
            "status": status,
            "attempts": 1,
            "delivered_at": settled_at if status == "delivered" else None,
            "settled_at": settled_at,
        }
        for i in range(count)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(t.event), rows)


def event_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.event)).scalar_one())


def test_events_settled_longer_ago_than_the_retention_are_removed_and_newer_kept(
    api: httpx.Client, app: FastAPI
) -> None:
    store: Store = app.state.store
    clock = Clock()
    dispatcher = dispatcher_for(app, clock, retention_hours=2)
    api.post(f"{API}/projects", json={"name": "old"}).raise_for_status()
    dispatcher.drain()
    clock.now += HOUR_MS
    api.post(f"{API}/projects", json={"name": "new"}).raise_for_status()
    dispatcher.drain()
    old, new = project_urn(api, "old"), project_urn(api, "new")

    clock.now += HOUR_MS  # the first is settled exactly two hours ago: not older than that
    assert dispatcher.prune() == 0
    clock.now += 1
    assert dispatcher.prune() == 1
    assert [(e["urn"], e["status"]) for e in outbox_rows(store)] == [(new, "delivered")]
    assert dispatcher.health()["pruned"] == 1
    with store.read() as conn:  # the history stays in the change log
        logged = set(conn.execute(select(t.change_log.c.urn)).scalars())
    assert {old, new} <= logged


def test_pending_and_retrying_events_stay_whatever_their_age_and_order_holds(
    api: httpx.Client, app: FastAPI
) -> None:
    recorder = Recorder()
    app.state.plugins.manager.register(recorder)
    store: Store = app.state.store
    clock = Clock()
    dispatcher = dispatcher_for(app, clock, retention_hours=1)
    api.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    dispatcher.drain()  # a's first event is delivered ...
    urn = project_urn(api, "a")
    failing = Failing(urn)
    app.state.plugins.manager.register(failing)
    for text in ("second", "third"):
        api.patch(f"{API}/projects/a", json={"description": text}).raise_for_status()
    clock.now += 1_000 * HOUR_MS
    dispatcher.drain()  # ... its second fails and waits for a retry, its third waits behind
    first, second, third = (e["id"] for e in outbox_rows(store))

    clock.now += 1_000 * HOUR_MS
    assert dispatcher.prune() == 1
    rows = outbox_rows(store)
    assert [(e["id"], e["status"], e["attempts"]) for e in rows] == [
        (second, "pending", 1),
        (third, "pending", 0),
    ]
    assert first not in {e["id"] for e in rows}
    # With the delivered event gone, the third still waits for the second ...
    seen = len(recorder.events)
    clock.now += backoff_ms(1)
    dispatcher.drain()
    assert [e.id for e in recorder.events[seen:]] == [second]  # failed again, third held back
    # ... and follows it once it goes through.
    failing.failing = False
    clock.now += backoff_ms(2)
    dispatcher.drain()
    assert [e.id for e in recorder.events[seen:]] == [second, second, third]
    assert {e["status"] for e in outbox_rows(store)} == {"delivered"}


def test_given_up_events_are_counted_as_failed_until_their_retention_ends(
    api: httpx.Client, app: FastAPI
) -> None:
    api.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    app.state.plugins.manager.register(Failing(project_urn(api, "a")))
    clock = Clock()
    dispatcher = dispatcher_for(app, clock, max_attempts=1, retention_hours=24)
    dispatcher.drain()
    (row,) = outbox_rows(app.state.store)
    assert (row["status"], row["settled_at"]) == ("failed", clock.now)

    clock.now += 24 * HOUR_MS
    assert dispatcher.prune() == 0
    assert api.get("/healthz").json()["events"]["failed"] == 1
    clock.now += 1
    assert dispatcher.prune() == 1
    assert api.get("/healthz").json()["events"]["failed"] == 0
    assert outbox_rows(app.state.store) == []


def test_a_retention_of_zero_keeps_every_event(app: FastAPI) -> None:
    store: Store = app.state.store
    add_settled(store, 3, settled_at=0)
    add_settled(store, 2, settled_at=0, status="failed")
    clock = Clock()
    clock.now = 10 * 365 * 24 * HOUR_MS
    dispatcher = dispatcher_for(app, clock, retention_hours=0)
    assert (dispatcher.prune(), dispatcher.maybe_prune()) == (0, 0)
    assert event_count(store) == 5


def test_each_batch_removes_at_most_its_limit(app: FastAPI) -> None:
    store: Store = app.state.store
    add_settled(store, 2_000, settled_at=0)
    add_settled(store, 500, settled_at=0, status="failed")
    clock = Clock()
    clock.now = 1_000 * HOUR_MS
    one_batch = dispatcher_for(app, clock, prune_batch=1_000, prune_batches=1)
    assert [one_batch.prune() for _ in range(4)] == [1_000, 1_000, 500, 0]
    assert event_count(store) == 0

    add_settled(store, 2_500, settled_at=0)
    two_batches = dispatcher_for(app, clock, prune_batch=1_000, prune_batches=2)
    assert two_batches.prune() == 2_000
    assert event_count(store) == 500


def test_a_pass_runs_at_most_once_a_minute(app: FastAPI) -> None:
    store: Store = app.state.store
    clock = Clock()
    clock.now = 1_000 * HOUR_MS
    dispatcher = dispatcher_for(app, clock)
    add_settled(store, 3, settled_at=0)
    assert dispatcher.maybe_prune() == 3
    add_settled(store, 2, settled_at=0)
    clock.now += PRUNE_EVERY_MS - 1
    assert dispatcher.maybe_prune() == 0
    clock.now += 1
    assert dispatcher.maybe_prune() == 2
    assert event_count(store) == 0


def test_the_running_dispatcher_prunes_with_the_configured_retention(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_EVENT_RETENTION_HOURS", "1.5")
    assert Settings().event_retention_hours == 1.5
    application = create_app(settings.model_copy(update={"event_retention_hours": 1.5}))
    dispatcher: Dispatcher = application.state.dispatcher
    try:
        assert dispatcher.retention_ms == 90 * 60_000
        store: Store = application.state.store
        now = time.time_ns() // 1_000_000
        add_settled(store, 4, settled_at=now - 2 * HOUR_MS)
        add_settled(store, 1, settled_at=now - HOUR_MS)
        dispatcher.poll_interval = 0.01
        dispatcher.start()
        try:
            deadline = time.monotonic() + 10
            while event_count(store) > 1:
                assert time.monotonic() < deadline, "old events were not removed"
                time.sleep(0.02)
        finally:
            dispatcher.stop()
        assert dispatcher.health()["pruned"] == 4
    finally:
        application.state.store.engine.dispose()


def test_a_negative_retention_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_EVENT_RETENTION_HOURS", "-1")
    with pytest.raises(ValueError, match="event_retention_hours"):
        Settings()


@pytest.fixture
def apps(app: FastAPI, settings: Settings) -> Iterator[list[FastAPI]]:
    """This app and another server process's app on the same database."""
    other = create_app(settings.model_copy(update={"data_dir": settings.data_dir / "2"}))
    yield [app, other]
    other.state.store.engine.dispose()


def test_two_dispatchers_pruning_at_once_both_succeed(apps: list[FastAPI]) -> None:
    store: Store = apps[0].state.store
    add_settled(store, 3_000, settled_at=0)
    add_settled(store, 1_000, settled_at=0, status="failed")
    add_settled(store, 300, settled_at=999 * HOUR_MS)  # within the retention
    with store.engine.begin() as conn:  # old but pending, retrying or not
        conn.execute(
            t.event.update()
            .where(t.event.c.id % 10 == 0)
            .values(status="pending", settled_at=None, delivered_at=None)
        )
    pending = [e["id"] for e in outbox_rows(store) if e["status"] == "pending"]
    recent = [e["id"] for e in outbox_rows(store) if e["settled_at"] == 999 * HOUR_MS]
    clock = Clock()
    clock.now = 1_000 * HOUR_MS
    dispatchers = [
        dispatcher_for(a, clock, retention_hours=2, prune_batch=50, prune_batches=1_000)
        for a in apps
    ]
    start = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(which: int) -> None:
        start.wait()
        try:
            results[which] = dispatchers[which].prune()
        except Exception as exc:
            results[which] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 4_300 - len(pending) - len(recent)
    assert sorted(e["id"] for e in outbox_rows(store)) == sorted(pending + recent)


@pytest.mark.skipif(not PG_URL, reason="row locks skipped by a second pruner: PostgreSQL only")
def test_on_postgresql_a_pruner_skips_rows_another_holds_instead_of_waiting(
    app: FastAPI,
) -> None:
    store: Store = app.state.store
    add_settled(store, 300, settled_at=0)
    with store.engine.connect() as first, first.begin():
        assert outbox.prune(first, settled_before=1, limit=100) == 100
        with store.engine.connect() as second, second.begin():
            second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")  # waiting would fail
            assert outbox.prune(second, settled_before=1, limit=150) == 150
    assert event_count(store) == 50
