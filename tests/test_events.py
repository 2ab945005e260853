"""Domain events: written with the change they describe, delivered to ``on_event`` at least
once and in order per entity, retried when a handler fails, and never in a write's way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update

from modelyard.app import create_app
from modelyard.events import DomainEvent
from modelyard.hookspecs import hookimpl
from modelyard.metadata import outbox
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ProjectProperties, Tags
from modelyard.metadata.engine import make_engine, upgrade
from modelyard.metadata.store import Store, Tx
from modelyard.services.dispatcher import Dispatcher, backoff_ms
from modelyard.settings import Settings
from tests.conftest import in_process_client
from tests.helpers import API, new_run

PLUGIN = "tests.sample_plugin"


class Clock:
    """A clock the tests move by hand (milliseconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class Recorder:
    """An ``on_event`` plugin that keeps what it got, in order, from any thread."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.lock = threading.Lock()

    @hookimpl
    def on_event(self, event: DomainEvent) -> None:
        with self.lock:
            self.events.append(event)


class Failing:
    """Raises for the events of ``urn`` while ``failing`` is set."""

    def __init__(self, urn: str) -> None:
        self.urn = urn
        self.failing = True
        self.calls = 0

    @hookimpl
    def on_event(self, event: DomainEvent) -> None:
        if event.urn == self.urn and self.failing:
            self.calls += 1
            raise ConnectionError("the webhook receiver is down")


@pytest.fixture
def recorder(app: FastAPI) -> Recorder:
    found = Recorder()
    app.state.plugins.manager.register(found)
    return found


def dispatcher_for(app: FastAPI, clock: Clock | None = None, **options: Any) -> Dispatcher:
    hook = app.state.plugins.manager.hook.on_event
    return Dispatcher(app.state.store, hook, clock=clock or Clock(), **options)


def outbox_rows(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.event).order_by(t.event.c.id))]


def project_urn(api: httpx.Client, name: str) -> str:
    return f"urn:modelyard:project:{api.get(f'{API}/projects/{name}').json()['id']}"


def test_each_change_is_recorded_as_an_event_beside_its_change_log_row(
    api: httpx.Client, app: FastAPI
) -> None:
    assert api.post(f"{API}/projects", json={"name": "churn"}).status_code == 201
    api.patch(f"{API}/projects/churn", json={"description": "who leaves"}).raise_for_status()
    api.patch(f"{API}/projects/churn", json={"description": "who leaves"}).raise_for_status()
    new_run(api, "churn")

    store: Store = app.state.store
    events = outbox_rows(store)
    with store.read() as conn:
        changes = conn.execute(select(t.change_log).order_by(t.change_log.c.id)).all()
    # One event per change, the same facts, in the same order; an identical write is neither.
    fields = ("urn", "aspect", "version", "actor", "created_at")
    assert [tuple(e[f] for f in fields) for e in events] == [
        tuple(getattr(c, f) for f in fields) for c in changes
    ]
    urn = project_urn(api, "churn")
    mine = [(e["aspect"], e["kind"], e["version"]) for e in events if e["urn"] == urn]
    assert mine == [("project_properties", "created", 1), ("project_properties", "updated", 2)]
    assert {e["status"] for e in events} == {"pending"}
    assert {e["actor"] for e in events} == {"local"}
    assert {e["entity_type"] for e in events} >= {"project", "run"}


def test_a_transaction_that_fails_leaves_no_event(app: FastAPI) -> None:
    store: Store = app.state.store

    def work(tx: Tx) -> None:
        tx.ensure_entity("urn:modelyard:project:77")
        tx.put_aspect("urn:modelyard:project:77", ProjectProperties(project_id=77, name="gone"))
        raise RuntimeError("the action fails after writing")

    with pytest.raises(RuntimeError):
        store.transact(work, actor="local")
    assert outbox_rows(store) == []


def test_events_reach_on_event_once_each_in_order_per_entity(
    api: httpx.Client, app: FastAPI, recorder: Recorder
) -> None:
    for i in range(3):
        api.post(f"{API}/projects", json={"name": f"p{i}"}).raise_for_status()
    for round_ in range(4):
        for i in range(3):
            body = {"description": f"round {round_}"}
            api.patch(f"{API}/projects/p{i}", json=body).raise_for_status()
    dispatcher = dispatcher_for(app)
    dispatcher.drain()

    written = outbox_rows(app.state.store)
    assert len(written) == 15
    assert [e.id for e in recorder.events] == [e["id"] for e in written]  # each once, in order
    assert {e["status"] for e in written} == {"delivered"}
    got = recorder.events[-1]
    row = written[-1]
    assert (got.urn, got.aspect, got.kind, got.actor, got.version, got.created_at) == (
        row["urn"], row["aspect"], "updated", "local", 5, row["created_at"],
    )  # fmt: skip
    health = api.get("/healthz").json()["events"]
    assert health["pending"] == 0
    # This app's own dispatcher delivered nothing; the one above did.
    assert (health["delivered"], dispatcher.delivered) == (0, 15)


def test_a_failing_handler_is_retried_with_backoff_and_holds_back_only_its_entity(
    api: httpx.Client, app: FastAPI, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("a", "b"):
        api.post(f"{API}/projects", json={"name": name}).raise_for_status()
    api.patch(f"{API}/projects/a", json={"description": "second"}).raise_for_status()
    api.patch(f"{API}/projects/b", json={"description": "second"}).raise_for_status()
    urn_a, urn_b = project_urn(api, "a"), project_urn(api, "b")
    failing = Failing(urn_a)
    app.state.plugins.manager.register(failing)
    clock = Clock()
    dispatcher = dispatcher_for(app, clock)

    dispatcher.drain()
    # b went through; a's first event failed and its second waits behind it.
    assert [e.urn for e in recorder.events] == [urn_a, urn_b, urn_b]
    assert "the webhook receiver is down" in caplog.text
    health = dispatcher.health()
    assert (health["pending"], health["retrying"], health["handler_errors"]) == (2, 1, 1)
    first_a = next(e for e in outbox_rows(app.state.store) if e["urn"] == urn_a)
    assert first_a["attempts"] == 1
    assert "ConnectionError: the webhook receiver is down" in first_a["last_error"]
    assert api.get("/healthz").json()["events"]["retrying"] == 1

    clock.now += backoff_ms(1) - 1  # not yet due
    dispatcher.drain()
    assert failing.calls == 1
    clock.now += 1
    dispatcher.drain()  # due: fails again, now waits twice as long
    assert failing.calls == 2
    clock.now += backoff_ms(2)
    failing.failing = False
    dispatcher.drain()
    a_events = [e.id for e in recorder.events if e.urn == urn_a]
    # The first event was seen by the recorder on every attempt (at least once), and the
    # second only after the first got through.
    assert a_events[-1] > a_events[-2] == a_events[0]
    assert dispatcher.health()["pending"] == 0


def test_an_event_is_given_up_after_the_last_attempt(
    api: httpx.Client, app: FastAPI, recorder: Recorder
) -> None:
    api.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    api.patch(f"{API}/projects/a", json={"description": "second"}).raise_for_status()
    urn = project_urn(api, "a")
    app.state.plugins.manager.register(Failing(urn))
    clock = Clock()
    dispatcher = dispatcher_for(app, clock, max_attempts=2)
    dispatcher.drain()
    clock.now += backoff_ms(1)
    dispatcher.drain()  # second and last attempt: given up; the next event may go
    clock.now += backoff_ms(2)
    dispatcher.drain()
    statuses = [e["status"] for e in outbox_rows(app.state.store)]
    assert statuses == ["failed", "failed"]  # the second failed on its own
    assert api.get("/healthz").json()["events"]["failed"] == 2


class Hanging:
    """Blocks in every call until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def on_event(self, event: DomainEvent) -> None:
        self.entered.set()
        self.release.wait(30)


def test_a_hanging_handler_never_holds_up_a_write(app: FastAPI, api: httpx.Client) -> None:
    hanging = Hanging()
    app.state.plugins.manager.register(hanging)
    dispatcher = dispatcher_for(app, poll_interval=0.01, handler_timeout=20)
    dispatcher.clock = lambda: time.time_ns() // 1_000_000
    dispatcher.start()
    try:
        api.post(f"{API}/projects", json={"name": "first"}).raise_for_status()
        assert hanging.entered.wait(10)
        slowest = 0.0
        for i in range(10):  # while the dispatcher is stuck in the handler
            started = time.perf_counter()
            api.post(f"{API}/projects", json={"name": f"p{i}"}).raise_for_status()
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 2
        assert dispatcher.health()["pending"] == 11
    finally:
        hanging.release.set()
        dispatcher.stop()


def test_a_handler_that_takes_too_long_counts_as_a_failed_attempt(
    app: FastAPI, api: httpx.Client
) -> None:
    hanging = Hanging()
    app.state.plugins.manager.register(hanging)
    api.post(f"{API}/projects", json={"name": "first"}).raise_for_status()
    dispatcher = dispatcher_for(app, handler_timeout=0.2)
    try:
        started = time.perf_counter()
        dispatcher.drain()
        assert time.perf_counter() - started < 5
    finally:
        hanging.release.set()
    (row,) = outbox_rows(app.state.store)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "timed out after 0.2 s" in row["last_error"]
    assert dispatcher.health()["handler_errors"] == 1


@contextmanager
def lifespan(app: FastAPI) -> Iterator[httpx.Client]:
    """The app between its startup and shutdown, as a server runs it, with a client."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    context = app.router.lifespan_context(app)
    asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(10)
    try:
        with in_process_client(app) as http:
            yield http
    finally:
        asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_the_app_lifespan_runs_the_dispatcher(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"event_poll_interval": 0.01}))
    recorder = Recorder()
    application.state.plugins.manager.register(recorder)
    try:
        with lifespan(application) as http:
            http.post(f"{API}/projects", json={"name": "live"}).raise_for_status()
            deadline = time.monotonic() + 10
            # Delivered: handed to the handler, then recorded as such.
            while http.get("/healthz").json()["events"]["delivered"] < 1:
                assert time.monotonic() < deadline, "no event was delivered"
                time.sleep(0.01)
        assert [e.entity_type for e in recorder.events] == ["project"]
    finally:
        application.state.store.engine.dispose()


def test_the_dispatcher_can_be_switched_off(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"event_dispatcher": False}))
    recorder = Recorder()
    application.state.plugins.manager.register(recorder)
    try:
        with lifespan(application) as http:
            http.post(f"{API}/projects", json={"name": "quiet"}).raise_for_status()
            time.sleep(0.6)
            assert http.get("/healthz").json()["events"]["pending"] == 1
        assert recorder.events == []
    finally:
        application.state.store.engine.dispose()


def test_a_restart_takes_over_the_leases_of_a_dispatcher_that_died(
    app: FastAPI, api: httpx.Client, recorder: Recorder
) -> None:
    api.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    api.patch(f"{API}/projects/a", json={"description": "second"}).raise_for_status()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    crashed = dispatcher_for(app)
    crashed.owner = f"{crashed.host}/{gone.stdout.strip()}/dead"
    with app.state.store.engine.begin() as conn:  # a claim its process never settled
        claimed = outbox.claim(
            conn, owner=crashed.owner, now=crashed.clock(), lease_ms=10**9, entities=5, limit=5
        )
    assert len(claimed) == 2
    restarted = dispatcher_for(app)
    restarted.drain()
    assert recorder.events == []  # leased to someone who may still be alive
    restarted.release_dead_owners()
    restarted.drain()
    assert [e.id for e in recorder.events] == [e.id for e in claimed]


@pytest.fixture
def second_app(settings: Settings) -> Iterator[FastAPI]:
    """Another server process's app on the same database."""
    application = create_app(settings.model_copy(update={"data_dir": settings.data_dir / "2"}))
    yield application
    application.state.store.engine.dispose()


def test_two_dispatchers_on_one_database_take_each_event_once(
    app: FastAPI, second_app: FastAPI, api: httpx.Client
) -> None:
    names = [f"p{i}" for i in range(8)]
    for name in names:
        api.post(f"{API}/projects", json={"name": name}).raise_for_status()
    delivered: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def recording(which: int) -> object:
        class Taker:
            @hookimpl
            def on_event(self, event: DomainEvent) -> None:
                time.sleep(0.002)
                with lock:
                    delivered.append((which, event.id, event.urn))

        return Taker()

    dispatchers = []
    for which, application in enumerate((app, second_app)):
        application.state.plugins.manager.register(recording(which))
        dispatchers.append(dispatcher_for(application, poll_interval=0.005))
        dispatchers[-1].clock = lambda: time.time_ns() // 1_000_000
    for d in dispatchers:
        d.start()
    try:
        with in_process_client(second_app) as other:
            for round_ in range(6):
                for i, name in enumerate(names):
                    http = api if i % 2 else other
                    body = {"description": f"round {round_}"}
                    http.patch(f"{API}/projects/{name}", json=body).raise_for_status()
        total = len(outbox_rows(app.state.store))
        deadline = time.monotonic() + 60
        while len(delivered) < total:
            assert time.monotonic() < deadline, f"{len(delivered)} of {total} delivered"
            time.sleep(0.02)
        time.sleep(0.2)  # a duplicate would show up now
    finally:
        for d in dispatchers:
            d.stop()
    ids = [event_id for _, event_id, _ in delivered]
    assert sorted(ids) == [e["id"] for e in outbox_rows(app.state.store)]  # each exactly once
    for urn in {u for _, _, u in delivered}:
        mine = [event_id for _, event_id, u in delivered if u == urn]
        assert mine == sorted(mine), urn
    assert {which for which, _, _ in delivered} == {0, 1}  # both took a share


def test_events_nobody_listens_to_are_settled_without_delay(
    app: FastAPI, api: httpx.Client
) -> None:
    for i in range(5):
        new_run(api, f"p{i}")
    dispatcher = dispatcher_for(app)
    dispatcher.drain()
    rows = outbox_rows(app.state.store)
    assert {r["status"] for r in rows} == {"delivered"}
    assert dispatcher.delivered == len(rows) > 5


def test_an_entitys_events_are_numbered_in_the_order_their_changes_commit(
    app: FastAPI, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    urn = project_urn(api, "a")
    store: Store = app.state.store
    flushed, go_on = threading.Event(), threading.Event()
    original = Tx.flush_events

    def flush_then_wait(tx: Tx) -> None:
        original(tx)
        if threading.current_thread().name == "first":
            flushed.set()
            assert go_on.wait(20)

    monkeypatch.setattr(Tx, "flush_events", flush_then_wait)
    first = threading.Thread(
        name="first",
        target=store.transact,
        args=(lambda tx: tx.put_aspect(urn, Tags(tags={"team": "one"})),),
        kwargs={"actor": "first"},
    )
    first.start()
    assert flushed.wait(20)
    # A second change of the same entity (another aspect) waits until the first commits ...
    second = threading.Thread(
        target=store.transact,
        args=(lambda tx: tx.put_aspect(urn, ProjectProperties(project_id=1, name="b")),),
        kwargs={"actor": "second"},
    )
    second.start()
    second.join(0.5)
    assert second.is_alive()
    go_on.set()
    first.join(20)
    second.join(20)
    # ... so its event comes after the first's.
    actors = [e["actor"] for e in outbox_rows(store) if e["urn"] == urn]
    assert actors == ["local", "first", "second"]


def _backlog(engine: Any, first: int, n: int) -> None:
    rows = [
        outbox.outbox_row(
            urn=f"urn:modelyard:dataset:d{i % 100}",
            entity_type="dataset",
            aspect="tags",
            kind="updated",
            actor="someone",
            created_at=i,
            version=i,
        )
        for i in range(first, first + n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(t.event), rows)


def _counted_with_work(engine: Any) -> tuple[dict[str, int], int]:
    """The /healthz counts, and how many SQLite VM steps (in hundreds) they took."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(tick, 100)
        try:
            found = outbox.counts(conn)
        finally:
            raw.set_progress_handler(None, 0)
    return found, steps[0]


def test_healthz_counts_cost_no_more_as_the_backlog_grows(tmp_path: Path) -> None:
    # Its own SQLite file: the work is counted in SQLite's virtual machine steps.
    engine = make_engine(f"sqlite:///{tmp_path / 'backlog.db'}")
    upgrade(engine)
    _backlog(engine, 0, 15_000)
    with engine.begin() as conn:
        conn.execute(update(t.event).where(t.event.c.id == 3).values(attempts=2))
    found, small = _counted_with_work(engine)
    assert found == {"pending": outbox.COUNT_CAP, "retrying": 1, "failed": 0}
    _backlog(engine, 15_000, 60_000)
    found, large = _counted_with_work(engine)
    assert found == {"pending": outbox.COUNT_CAP, "retrying": 1, "failed": 0}
    assert large <= small * 1.2 + 10, (small, large)
    engine.dispose()
