"""The SDK through a server outage with real processes: a server killed and restarted on the
same port while a client logs; a client that exits while the server is still away, then
`modelyard sync`; SIGTERM to a client; a client killed with SIGKILL becomes `lost`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.sdk.client import Client
from tests.conftest import free_port
from tests.helpers import wait_until_serving

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.slow

# A client logging "loss" at steps 0, 1, 2, ... in phases; after phase n it touches
# "phase<n>" in the barrier folder and waits for "go<n>". argv: url, spool, barrier, phases,
# and "extras" to run each phase as a step "phase<n>" (with progress) that also logs a param
# "param<n>", a tag "tag<n>" and an artifact "phase<n>.txt".
CHILD = """
import contextlib, sys, time
from pathlib import Path
from modelyard.sdk import client as sdk

sdk.FIRST_BACKOFF, sdk.MAX_BACKOFF = 0.05, 0.25
url, spool, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])
phases = [int(n) for n in sys.argv[4].split(",")]
extras = sys.argv[5:] == ["extras"]
client = sdk.Client(url, spool_dir=spool, memory_batches=2, exit_timeout=3,
                    heartbeat_interval=0.2)
with client.start_run("outage", batch_size=100, flush_interval=0.05) as run:
    print(run.id, flush=True)
    step = 0
    for n, count in enumerate(phases):
        with run.step(f"phase{n}") if extras else contextlib.nullcontext() as pipeline_step:
            for i in range(count):
                run.log_metric("loss", step / 7, step=step)
                step += 1
                if pipeline_step is not None and i % 50 == 0:
                    pipeline_step.set_progress(i / count, f"at {i}")
            if pipeline_step is not None:
                run.log_param(f"param{n}", n)
                run.set_tag(f"tag{n}", f"phase {n}")
                made = barrier / f"artifact{n}.txt"
                made.write_text(f"made in phase {n}")
                pipeline_step.log_artifact(made, f"phase{n}.txt")
        (barrier / f"phase{n}").touch()
        while not (barrier / f"go{n}").exists():
            time.sleep(0.01)
print("logged", step, flush=True)
"""


def environment(**more: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), **more}
    env.pop("MODELYARD_URI", None)
    return env


class Server:
    """``modelyard serve`` on one port and data folder, which can be killed and restarted."""

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "modelyard.cli", "serve", "--port", str(self.port)]
        self.command += ["--data-dir", str(tmp_path / "data"), "--database-url", database_url]
        self.env = environment(**env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.tmp_path / f"server-{self.starts}.log"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until_serving(self.url, self.proc, log)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = Server(tmp_path, database_url, MODELYARD_RUN_LOST_AFTER_SECONDS="2")
    running.start()
    try:
        yield running
    finally:
        running.kill()


class Logger:
    """The CHILD script in its own process."""

    def __init__(self, tmp_path: Path, url: str, phases: list[int], *more: str) -> None:
        self.barrier = tmp_path / "barrier"
        self.barrier.mkdir()
        self.spool = tmp_path / "client-spool"
        self.stderr = tmp_path / "client.err"
        argv = [url, str(self.spool), str(self.barrier), ",".join(map(str, phases)), *more]
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, *argv],
                env=environment(),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        self.run_id = self.proc.stdout.readline().strip()
        assert self.run_id, self.stderr.read_text()

    def reach(self, phase: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.barrier / f"phase{phase}").exists():
            assert self.proc.poll() is None, self.stderr.read_text()
            assert time.monotonic() < deadline, f"phase {phase} was not reached"
            time.sleep(0.01)

    def go(self, phase: int) -> None:
        (self.barrier / f"go{phase}").touch()

    def finish(self, timeout: float = 60) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_state(url: str, run_id: str, points: int) -> str:
    """The run's status, after checking it holds steps 0 .. points - 1, each exactly once."""
    with Client(url, heartbeat_interval=None) as client:
        history = client.get_metric_history(run_id, "loss")
        assert history.steps.tolist() == list(range(points))
        assert history.values.tolist() == [step / 7 for step in range(points)]
        return client.get_run(run_id).status


OUTAGE_S = 40.0


def test_a_server_restarted_while_a_client_logs_gets_every_point_once(
    server: Server, tmp_path: Path
) -> None:
    client = Logger(tmp_path, server.url, [600, 1_000, 400])
    try:
        client.reach(0)
        server.kill()
        down_at = time.monotonic()
        client.go(0)  # 1,000 points while nothing answers: ten batches, two fit in memory
        client.reach(1)
        spilled = list((client.spool / client.run_id).glob("*.batch"))
        assert len(spilled) >= 5
        # The server stays away as long as in the outage that once cost points (40 s), while
        # the client keeps retrying in the background.
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert client.proc.poll() is None
        server.start()
        client.go(1)
        client.go(2)
        out = client.finish()
    finally:
        client.kill()
    assert client.proc.returncode == 0, client.stderr.read_text()
    assert out.splitlines()[-1] == "logged 2000"
    said = client.stderr.read_text()
    assert "Traceback" not in said
    assert said.count("cannot reach") == 1, said  # one warning for the outage
    assert run_state(server.url, client.run_id, 2_000) == "finished"
    assert not (client.spool / client.run_id).exists()


def test_a_client_that_exits_during_the_outage_leaves_a_spool_that_sync_sends_once(
    server: Server, tmp_path: Path
) -> None:
    # Phase 1 (a step with progress, a param, a tag, an artifact, 700 points) runs while the
    # server is away; the client exits before it is back.
    client = Logger(tmp_path, server.url, [500, 700], "extras")
    try:
        client.reach(0)
        server.kill()
        client.go(0)
        client.reach(1)
        client.go(1)
        client.finish()
    finally:
        client.kill()
    assert client.proc.returncode == 0, client.stderr.read_text()
    folder = client.spool / client.run_id
    said = client.stderr.read_text()
    assert "Traceback" not in said
    assert f"are kept in {folder}" in said
    assert f"modelyard sync {folder}" in said
    assert len(list(folder.glob("*.artifact"))) == 1
    (client.barrier / "artifact1.txt").unlink()  # the spool has its own copy

    server.start()
    sync = [sys.executable, "-m", "modelyard.cli", "sync", str(folder)]
    first = subprocess.run(sync, env=environment(), capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"run {client.run_id}: sent " in first.stdout
    assert "step updates and 1 artifact" in first.stdout
    assert "ended as finished" in first.stdout
    assert not folder.exists()
    second = subprocess.run(sync, env=environment(), capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "nothing to send" in second.stdout
    assert run_state(server.url, client.run_id, 1_200) == "finished"
    with Client(server.url, heartbeat_interval=None) as sdk:
        run = sdk.get_run(client.run_id)
        assert run.params == {"param0": "0", "param1": "1"}
        assert {k: v for k, v in run.tags.items() if k.startswith("tag")} == {
            "tag0": "phase 0",
            "tag1": "phase 1",
        }
        steps = sdk.list_steps(client.run_id)
        assert [(s.name, s.status, s.progress) for s in steps] == [
            ("phase0", "finished", 1.0),
            ("phase1", "finished", 1.0),
        ]
        assert steps[1].message == "at 650"  # the last progress sent, after the merged ones
        artifacts = sdk.list_artifacts(client.run_id)
        assert sorted((a.path, a.step) for a in artifacts) == [
            ("phase0.txt", "phase0"),
            ("phase1.txt", "phase1"),
        ]
        back = sdk.download_artifact(client.run_id, "phase1.txt", tmp_path / "back.txt")
        assert back.read_text() == "made in phase 1"


def test_sigterm_to_a_client_ends_its_run_as_killed(server: Server, tmp_path: Path) -> None:
    client = Logger(tmp_path, server.url, [300])
    try:
        client.reach(0)
        client.proc.send_signal(signal.SIGTERM)
        client.finish()
    finally:
        client.kill()
    assert client.proc.returncode == 128 + signal.SIGTERM, client.stderr.read_text()
    assert run_state(server.url, client.run_id, 300) == "killed"
    with Client(server.url) as sdk:
        error = sdk.get_run(client.run_id).error
    assert error is not None
    assert "SIGTERM" in error


def test_a_client_killed_with_sigkill_becomes_lost(server: Server, tmp_path: Path) -> None:
    client = Logger(tmp_path, server.url, [300])
    try:
        client.reach(0)
        beat = httpx.post(f"{server.url}/api/v1/runs/{client.run_id}/heartbeat", timeout=10)
        if beat.status_code != 200:
            pytest.skip("this server has no heartbeat endpoint (POST /runs/{id}/heartbeat)")
        time.sleep(3)  # heartbeats keep it running past the server's lost-after (2 s)
        with Client(server.url, heartbeat_interval=None) as sdk:
            assert sdk.get_run(client.run_id).status == "running"
        client.kill()
    finally:
        client.kill()
    deadline = time.monotonic() + 30
    with Client(server.url, heartbeat_interval=None) as sdk:
        while (status := sdk.get_run(client.run_id).status) == "running":
            assert time.monotonic() < deadline, "the run was never marked lost"
            time.sleep(0.2)
    assert status == "lost"
