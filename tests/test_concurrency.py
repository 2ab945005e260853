"""Concurrency and crash safety with real processes: eight SDK processes writing to one
data folder (or one PostgreSQL database) at once, and a server killed mid-batch."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from modelyard.metadata.engine import make_engine
from modelyard.sdk.client import Client
from modelyard.sdk.transport import ModelyardAPIError
from tests.conftest import free_port
from tests.helpers import wait_until_serving

PROCESSES = 8
POINTS = 1_000  # per process and key
SHARED_RUN = "5eed" * 8

# One logging process. argv: index, data folder, folder for the start barrier.
CHILD = """
import json, sys, time
from pathlib import Path
from modelyard.sdk.client import Client
from modelyard.sdk.transport import ModelyardAPIError

index, data_dir, barrier = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
n = int(sys.argv[4])
client = Client(data_dir)  # opens (and, for a new folder, migrates) the database
(barrier / f"ready-{index}").touch()
deadline = time.monotonic() + 60
while not (barrier / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)

# Every process joins the same run (a client-chosen id makes the create a no-op) ...
shared = client.start_run("shared", name="shared", run_id=sys.argv[5],
                          batch_size=150, flush_interval=0.02)
shared.log_params({f"p{index}": index, "common": "same"})
# ... and has its own.
with client.start_run("own", name=f"proc-{index}", params={"proc": index},
                      batch_size=200, flush_interval=0.02) as own:
    for j in range(n):
        shared.log_metrics({"shared": float(j), f"only-{index}": j / 2}, step=index * n + j)
        own.log_metric("loss", 1.0 / (j + 1), step=j)
        if j % 500 == 0:
            shared.set_tag(f"t{index}", str(j))
shared.flush()  # the shared run is ended by the test, once everyone is done
client.close()
print(json.dumps({"own": own.id}))
"""


@contextmanager
def sql_engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def wait_for_other_sessions(engine: Engine, timeout: float = 30) -> None:
    """On PostgreSQL, wait until no other session is connected to the database: a killed
    client's transaction is over (rolled back, or committed if COMMIT was already sent)."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    while True:
        with engine.connect() as conn:
            if conn.execute(query).scalar_one() == 0:
                return
        assert time.monotonic() < deadline, "sessions of the killed server are still open"
        time.sleep(0.1)


def integrity_check(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalars().all() == ["ok"]
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


@pytest.mark.slow
def test_processes_logging_at_once_lose_nothing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new data folder: on SQLite the processes also race to create and migrate it.
    data_dir = tmp_path / "shared-data"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "MODELYARD_DATABASE_URL": database_url}
    env.pop("MODELYARD_URI", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(i),
                str(data_dir),
                str(barrier),
                str(POINTS),
                SHARED_RUN,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 90
        while len(list(barrier.glob("ready-*"))) < PROCESSES:
            failed = [p for p in procs if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1]
            assert time.monotonic() < deadline, "the processes did not all start"
            time.sleep(0.02)
        (barrier / "go").touch()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    errors = [err for p, (_, err) in zip(procs, results, strict=True) if p.returncode != 0]
    assert not errors, errors[0]
    own_ids = [json.loads(out)["own"] for out, _ in results]

    monkeypatch.setenv("MODELYARD_DATABASE_URL", database_url)
    with Client(str(data_dir)) as client:
        shared = client.get_run(SHARED_RUN)
        assert shared.status == "running"
        expected_params = {f"p{i}": str(i) for i in range(PROCESSES)} | {"common": "same"}
        assert shared.params == expected_params
        last_tag = str((POINTS - 1) // 500 * 500)
        assert shared.tags == {f"t{i}": last_tag for i in range(PROCESSES)}
        aspects = client._call("GET", f"/entities/{shared.urn}/aspects")

        history = client.get_metric_history(SHARED_RUN, "shared")
        assert len(history) == PROCESSES * POINTS
        assert history.steps.tolist() == list(range(PROCESSES * POINTS))
        assert history.values.tolist() == [
            float(j) for _ in range(PROCESSES) for j in range(POINTS)
        ]
        assert shared.metrics["shared"].step == PROCESSES * POINTS - 1
        for i in range(PROCESSES):
            only = client.get_metric_history(SHARED_RUN, f"only-{i}")
            assert only.steps.tolist() == [i * POINTS + j for j in range(POINTS)]

        own = list(client.iter_runs("own", order_by=["name asc"]))
        assert [r.name for r in own] == [f"proc-{i}" for i in range(PROCESSES)]
        assert sorted(r.run_id for r in own) == sorted(own_ids)
        for i, run in enumerate(own):
            assert run.status == "finished"
            assert run.params == {"proc": str(i)}
            assert len(client.get_metric_history(run.run_id, "loss")) == POINTS
        assert client.get_project("shared").run_count == 1
        assert client.get_project("own").run_count == PROCESSES

    with sql_engine(database_url) as engine:
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT count(*) FROM run")).scalar_one()
        assert runs == PROCESSES + 1
        integrity_check(engine)

    # The audit record (the run's aspects) agrees with the index tables: no process's params
    # or tags were lost to a concurrent read-modify-write.
    assert aspects["run_params"]["params"] == expected_params
    assert aspects["tags"]["tags"] == shared.tags


class Server:
    """``modelyard serve`` in its own process, on a free loopback port."""

    def __init__(self, tmp_path: Path, database_url: str, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"{name}.log"
        env = {**os.environ, "MODELYARD_DATABASE_URL": database_url}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from modelyard.cli import main; main()",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--database-url",
                    database_url,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_serving(self.url, self.proc, self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


BATCH = 20_000


class Pump(threading.Thread):
    """Sends batches of BATCH points, each under a key of its own, until something fails."""

    def __init__(self, url: str, run_id: str) -> None:
        super().__init__(daemon=True)
        self.client = Client(url, retries=0, timeout=30)
        self.run_id = run_id
        self.sent: list[str] = []  # keys whose batch was (being) sent
        self.acked: list[str] = []  # keys the server confirmed
        self.in_flight = threading.Event()
        self.durations: list[float] = []
        self.error: BaseException | None = None
        self._started_at = 0.0
        self.client.transport.http.event_hooks["request"].append(self._on_request)

    def _on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/batch"):
            self._started_at = time.monotonic()
            self.in_flight.set()

    def run(self) -> None:
        try:
            run = self.client.start_run(
                "crash", run_id=self.run_id, batch_size=BATCH, flush_interval=3600
            )
            for b in range(10_000):
                key = f"batch{b:04d}"
                for j in range(BATCH - 1):
                    run.log_metric(key, j * 0.5, step=j, timestamp=1_000_000 + j)
                self.in_flight.clear()
                self.sent.append(key)
                run.log_metric(key, -1.0, step=BATCH - 1, timestamp=1)  # fills it
                if not run.flush(timeout=5):  # True once the server confirmed it
                    raise ConnectionError("the server stopped answering")
                self.durations.append(time.monotonic() - self._started_at)
                self.acked.append(key)
        except BaseException as exc:
            self.error = exc
        finally:
            self.client.close()


def kill_mid_stream(server: Server, pump: Pump) -> None:
    """Let a few batches land, then SIGKILL the server while the next one is being written."""
    pump.start()
    deadline = time.monotonic() + 40
    while len(pump.acked) < 3:
        assert pump.is_alive(), pump.error
        assert time.monotonic() < deadline, "batches are not getting through"
        time.sleep(0.01)
    pump.in_flight.clear()
    assert pump.in_flight.wait(20), "no batch was sent"
    typical = sorted(pump.durations)[len(pump.durations) // 2]
    time.sleep(random.uniform(0.1, 1.1) * typical)  # now and then just after it lands
    server.kill()
    pump.join(timeout=30)
    assert not pump.is_alive()
    assert isinstance(pump.error, ConnectionError), pump.error  # it saw the server die


def points_per_key(client: Client, run_id: str, keys: list[str]) -> dict[str, int]:
    """How many points of each metric the run holds (0 when none arrived)."""
    counts = {}
    for key in keys:
        try:
            counts[key] = len(client.get_metric_history(run_id, key))
        except ModelyardAPIError as exc:
            if exc.status != 404:
                raise
            counts[key] = 0
    return counts


@pytest.mark.slow
def test_server_killed_mid_batch_leaves_whole_batches_only(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = "c0ffee" * 5 + "00"
    server = Server(tmp_path, database_url, "server")
    try:
        pump = Pump(server.url, run_id)
        kill_mid_stream(server, pump)
    finally:
        server.kill()
    sent, acked = pump.sent, pump.acked
    assert len(sent) == len(acked) + 1  # one batch was cut off

    with sql_engine(database_url) as engine:
        wait_for_other_sessions(engine)
        integrity_check(engine)

    # Reopen the store (SQLite recovers its write-ahead log here) and look at every batch.
    monkeypatch.setenv("MODELYARD_DATABASE_URL", database_url)
    with Client(str(tmp_path / "data")) as client:
        run = client.get_run(run_id)
        assert run.status == "running"
        counts = points_per_key(client, run_id, sent)
        for key in sent:
            assert counts[key] in (0, BATCH), (key, counts[key])  # never half a batch
            # The latest value moved with its batch, or not at all.
            if counts[key]:
                latest = run.metrics[key]
                assert (latest.step, latest.value) == (BATCH - 1, -1.0)
            else:
                assert key not in run.metrics
        for key in acked:
            assert counts[key] == BATCH, key
        assert set(run.metrics) <= set(sent)
        history = client.get_metric_history(run_id, acked[-1])
        assert history.steps.tolist() == list(range(BATCH))
        # The run takes new points after the crash.
        with client.start_run("crash", run_id=run_id) as again:
            again.log_metric("after-restart", 1.0)
        assert client.get_run(run_id).status == "finished"
