"""The SDK through a server outage, without processes: nothing is raised into the logging
loop, batches are kept in memory and then in the spool folder with their Idempotency-Keys,
`modelyard sync` sends them later exactly once; heartbeats; SIGTERM ends a run as killed."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.sdk import client as client_module
from modelyard.sdk.client import ActiveRun, Client, RefusedInBackground, Terminated
from modelyard.sdk.spool import END, MANIFEST, Pending, Spool
from modelyard.sdk.transport import ModelyardAPIError

BATCH = 10


class Switch(httpx.BaseTransport):
    """Between the client and its real transport: the server can be switched off (connection
    refused), batches can be applied with their reply lost, and heartbeats are answered here
    (counted) with ``heartbeat_status``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose_replies = False
        self.refuse_batches = False
        self.batches = 0  # batch requests that reached the server
        self.seen: list[tuple[str, str, bytes]] = []  # method, path, body of those that did
        self.heartbeats: list[float] = []
        self.heartbeat_status = 200

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.endswith("/heartbeat"):
            self.heartbeats.append(time.monotonic())
            body = {"error": {"code": "CONFLICT", "message": "the run has ended"}}
            return httpx.Response(self.heartbeat_status, json=body, request=request)
        if self.refuse_batches and request.url.path.endswith("/batch"):
            body = {"error": {"code": "INVALID_INPUT", "message": "refused"}}
            return httpx.Response(400, json=body, request=request)
        self.seen.append((request.method, request.url.path, request.read()))
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/batch"):
            self.batches += 1
            if self.lose_replies:
                response.read()
                response.close()
                raise httpx.ConnectError("connection dropped after sending", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "FIRST_BACKOFF", 0.01)
    monkeypatch.setattr(client_module, "MAX_BACKOFF", 0.05)


def switch(client: Client, *, memory_batches: int = 2) -> Switch:
    old = client.transport.http
    between = Switch(old._transport)
    client.transport.http = httpx.Client(
        transport=between, base_url=old.base_url, timeout=old.timeout
    )
    client.transport.backoff = 0.001
    client.memory_batches = memory_batches
    return between


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def steps_of(client: Client, run_id: str, key: str = "loss") -> list[int]:
    return list(client.get_metric_history(run_id, key).steps.tolist())


def files(folder: Path, suffix: str = ".batch") -> list[Path]:
    return sorted(folder.glob("*" + suffix)) if folder.exists() else []


def test_an_outage_raises_nothing_into_the_loop_and_spills_past_the_memory_bound(
    client: Client, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = switch(client, memory_batches=2)
    caplog.set_level(logging.WARNING, logger="modelyard")
    with client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run:
        run.log_metric("loss", 0.0, step=0)
        server.down = True
        for i in range(1, 500):  # 50 batches: far more than the 2 + 2 held in memory
            run.log_metric("loss", i / 500, step=i)
        wait_for(lambda: run._outage_since is not None, "the outage was not noticed")
        spilled = files(spool_dir / run.id)
        assert len(spilled) >= 40  # the rest went to disk, each under its own key
        keys = [p.name.removesuffix(".batch").rsplit("-", 1)[1] for p in spilled]
        assert len(set(keys)) == len(keys)
        manifest = orjson.loads((spool_dir / run.id / MANIFEST).read_bytes())
        assert manifest == {"run_id": run.id, "uri": client.uri}
        server.down = False
        wait_for(lambda: not files(spool_dir / run.id), "the spilled batches were not sent")
        run.log_metric("loss", 1.0, step=500)
    assert steps_of(client, run.id) == list(range(501))  # each point exactly once
    assert client.get_run(run.id).status == "finished"
    assert not (spool_dir / run.id).exists()  # nothing left behind
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # said once, not once a batch
    assert f"cannot reach {client.uri}" in warnings[0]
    assert "keeps what it logs" in warnings[0]
    assert str(spool_dir / run.id) in warnings[0]


def test_a_run_ending_while_the_server_is_away_is_spooled_and_synced_exactly_once(
    client: Client, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = switch(client, memory_batches=2)
    client.exit_timeout = 2
    caplog.set_level(logging.WARNING, logger="modelyard")
    with client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run:
        for i in range(50):
            run.log_metric("loss", i / 50, step=i)
        wait_for(lambda: server.batches >= 2, "nothing was sent")
        # The server applies the next batches but their replies are lost, then it goes away.
        server.lose_replies = True
        for i in range(50, 100):
            run.log_metric("loss", i / 50, step=i)
        wait_for(lambda: run._outage_since is not None, "the lost replies were not noticed")
        server.down = True
        for i in range(100, 137):
            run.log_metric("loss", i / 50, step=i)
    folder = spool_dir / run.id
    server.down = server.lose_replies = False
    assert client.get_run(run.id).status == "running"  # its end waits in the spool
    assert orjson.loads((folder / END).read_bytes()) == {"status": "finished", "error": None}
    spilled = files(folder)
    assert spilled
    said = caplog.records[-1].getMessage()
    assert f"are kept in {folder}" in said
    assert f"modelyard sync {folder}" in said
    assert "and its end (finished)" in said

    points = sum(len(orjson.loads(p.read_bytes())["columns"]["key"]) for p in spilled)
    assert points >= 37  # at least those logged once it was away; those with lost replies too

    out = CliRunner().invoke(main, ["sync", str(folder)])
    assert out.exit_code == 0, out.output
    assert f"sent {len(spilled)} batches ({points} points)" in out.output
    assert "ended as finished" in out.output
    assert not folder.exists()
    assert steps_of(client, run.id) == list(range(137))  # resent batches were no-ops
    assert client.get_run(run.id).status == "finished"

    again = CliRunner().invoke(main, ["sync", str(folder)])
    assert again.exit_code == 0, again.output
    assert "nothing to send" in again.output
    assert steps_of(client, run.id) == list(range(137))


def test_sync_while_the_server_is_still_away_keeps_everything(
    client: Client, spool_dir: Path
) -> None:
    server = switch(client)
    client.exit_timeout = 1
    with client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run:
        server.down = True
        for i in range(30):
            run.log_metric("loss", i, step=i)
    folder = spool_dir / run.id
    kept = files(folder)
    manifest = orjson.loads((folder / MANIFEST).read_bytes())
    (folder / MANIFEST).write_bytes(orjson.dumps({**manifest, "uri": "http://127.0.0.1:9"}))
    out = CliRunner().invoke(main, ["sync", str(spool_dir)])
    assert out.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in out.output
    assert files(folder) == kept
    # --uri sends them elsewhere: here, where the run is.
    server.down = False
    out = CliRunner().invoke(main, ["sync", str(spool_dir), "--uri", client.uri])
    assert out.exit_code == 0, out.output
    assert f"run {run.id}: sent {len(kept)} batches (30 points)" in out.output
    assert steps_of(client, run.id) == list(range(30))


def test_a_refused_batch_still_raises_and_is_not_spooled(client: Client, spool_dir: Path) -> None:
    server = switch(client)
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="in the background failed"),
        client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run,
    ):
        server.refuse_batches = True
        run.log_metric("loss", 2.0, step=0)
        wait_for(lambda: run._error is not None, "the refusal was not seen")
        server.refuse_batches = False
        run.log_metric("loss", 3.0, step=1)
    assert client.get_run(run.id).status == "failed"
    assert not (spool_dir / run.id).exists()


def test_closing_a_client_frees_its_connection_even_when_a_refusal_is_raised(
    client: Client,
) -> None:
    server = switch(client)
    run = client.start_run("p", batch_size=BATCH, flush_interval=3600)
    run.log_metric("loss", 2.0, step=0)  # held until the client closes
    server.refuse_batches = True
    with pytest.raises(ModelyardAPIError, match="refused"):
        client.close()  # the run lets go, sends what it holds, and the refusal is raised
    assert client.transport.http.is_closed  # and the connection (a local engine) is freed


def test_retrying_stops_after_retry_for_and_says_where_the_batches_are(
    client: Client, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = switch(client)
    client.retry_for = 0.2
    client.exit_timeout = 1
    caplog.set_level(logging.WARNING, logger="modelyard")
    run = client.start_run("p", batch_size=BATCH, flush_interval=0.01)
    server.down = True
    run.log_metric("loss", 1.0, step=0)
    wait_for(lambda: not run._flusher.is_alive(), "it never stopped trying")
    tried = server.batches
    assert files(spool_dir / run.id)
    assert "stops trying" in caplog.records[-1].getMessage()
    assert f"modelyard sync {spool_dir / run.id}" in caplog.records[-1].getMessage()
    for i in range(1, 100):
        run.log_metric("loss", 1.0, step=i)  # still nothing raised
    server.down = False
    run.end()
    assert server.batches == tried  # nothing more was tried
    out = CliRunner().invoke(main, ["sync", str(spool_dir / run.id)])
    assert "(100 points)" in out.output
    assert steps_of(client, run.id) == list(range(100))
    assert client.get_run(run.id).status == "finished"


def test_a_run_never_ended_sends_what_it_holds_when_the_client_closes(
    client: Client, spool_dir: Path
) -> None:
    run = client.start_run("p", flush_interval=3600)
    run.log_metric("loss", 1.0, step=0)
    client.close()
    with Client(client.uri) as again:
        assert steps_of(again, run.id) == [0]
        assert again.get_run(run.id).status == "running"


def test_heartbeats_are_sent_until_the_run_has_ended(client: Client) -> None:
    server = switch(client)
    client.heartbeat_interval = 0.05
    with client.start_run("p", flush_interval=3600) as run:
        wait_for(lambda: len(server.heartbeats) >= 3, "no heartbeats")
        server.down = True  # a heartbeat that fails is not raised
        before = len(server.heartbeats)
        time.sleep(0.2)
        run.log_metric("loss", 1.0)
        server.down = False
        wait_for(lambda: len(server.heartbeats) > before, "heartbeats did not resume")
        server.heartbeat_status = 409  # the server says the run has ended: stop telling it
        wait_for(lambda: run._heartbeat_interval is None, "heartbeats did not stop")
        stopped = len(server.heartbeats)
        time.sleep(0.2)
        assert len(server.heartbeats) == stopped
    intervals = [b - a for a, b in zip(server.heartbeats, server.heartbeats[1:], strict=False)]
    assert min(intervals[:2]) >= 0.04


def test_heartbeats_reach_the_server(client: Client) -> None:
    client.heartbeat_interval = 0.02
    with client.start_run("p") as run:
        started = client.get_run(run.id).last_heartbeat
        assert started is not None
        wait_for(
            lambda: (client.get_run(run.id).last_heartbeat or 0) > started,
            "the server never heard a heartbeat",
        )
        assert run._heartbeat_interval == 0.02  # answered 200: it keeps going


def test_sigterm_ends_the_run_as_killed_and_restores_the_handler(client: Client) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as exited, client.start_run("p") as run:  # noqa: PT012
        run.log_metric("loss", 1.0, step=0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread before it ends
    assert exited.value.code == 128 + signal.SIGTERM
    got = client.get_run(run.id)
    assert got.status == "killed"
    assert got.error is not None
    assert "SIGTERM" in got.error
    assert steps_of(client, run.id) == [0]
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_calls_the_handler_there_was_and_the_run_still_ends_killed(
    client: Client,
) -> None:
    calls: list[int] = []

    def graceful(signum: int, frame: object) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, graceful)
    try:
        with client.start_run("p") as run:
            os.kill(os.getpid(), signal.SIGTERM)
            wait_for(lambda: calls, "the earlier handler was not called")
            run.log_metric("loss", 1.0)  # the user's handler decides: the loop carries on
        assert signal.getsignal(signal.SIGTERM) == graceful
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert calls == [signal.SIGTERM]
    assert client.get_run(run.id).status == "killed"


def test_runs_started_outside_the_main_thread_leave_signals_alone(client: Client) -> None:
    import threading

    before = signal.getsignal(signal.SIGTERM)
    started: list[ActiveRun] = []
    thread = threading.Thread(target=lambda: started.append(client.start_run("p")))
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGTERM) == before
    started[0].end()


# --- the spool on its own


def test_the_spool_keeps_order_across_memory_and_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "run", memory=2, manifest={"run_id": "r", "uri": "u"})
    for n in range(5):
        spool.put(f"k{n}", f"body{n}".encode(), points=n)
    assert len(files(tmp_path / "run")) == 3  # past the two held in memory
    assert spool.pending() == (5, 10)
    sent = []
    while (first := spool.first()) is not None:
        sent.append((first.key, first.body))
        spool.ack(first.key)
        if first.key == "k2":
            spool.put("k5", b"body5", points=5)  # room in memory again, still sent last
    assert sent == [(f"k{n}", f"body{n}".encode()) for n in range(6)]
    assert not (tmp_path / "run").exists()  # the files went with their acknowledgements


def test_a_spool_that_cannot_write_keeps_batches_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    spool = Spool(blocker / "run", memory=0, manifest={"run_id": "r", "uri": "u"})
    spool.put("k0", b"body0", points=1)
    assert spool.disk_error is not None
    assert spool.first() == Pending("k0", "batch", b"body0")
    spool.spill()
    assert spool.first() == Pending("k0", "batch", b"body0")


# --- params, tags, steps and artifacts through an outage


def batch_bodies(server: Switch) -> list[dict[str, Any]]:
    return [orjson.loads(body) for _, path, body in server.seen if path.endswith("/batch")]


def test_params_and_tags_logged_in_an_outage_are_sent_after_the_metrics_before_them(
    client: Client,
) -> None:
    server = switch(client)
    with client.start_run("p", batch_size=BATCH, flush_interval=3600) as run:
        for i in range(5):
            run.log_metric("loss", i, step=i)
        server.down = True
        run.log_param("lr", 0.1)  # nothing raised: queued after the five points
        run.set_tag("stage", "dev")
        for i in range(5, 25):
            run.log_metric("loss", i, step=i)
        assert run._outage_since is not None
        server.down = False
        assert run.flush() is True
    bodies = batch_bodies(server)
    assert bodies[0]["columns"]["step"] == list(range(5))
    assert bodies[1] == {"params": {"lr": "0.1"}}
    assert bodies[2] == {"tags": {"stage": "dev"}}
    got = client.get_run(run.id)
    assert got.params == {"lr": "0.1"}
    assert got.tags["stage"] == "dev"
    assert steps_of(client, run.id) == list(range(25))


def test_a_changed_param_is_raised_where_it_is_logged_or_by_the_next_call_after_an_outage(
    client: Client,
) -> None:
    server = switch(client)
    with client.start_run("p", params={"lr": 1}, flush_interval=0.01) as run:
        with pytest.raises(ModelyardAPIError) as now:
            run.log_param("lr", 2)  # the server answers: raised here, as ever
        assert now.value.status == 409
        server.down = True
        run.log_param("lr", 3)  # the server is away: queued
        run.log_metric("loss", 1.0, step=0)
        server.down = False
        wait_for(lambda: run._error is not None, "the refusal was not seen")
        with pytest.raises(RefusedInBackground) as later:
            run.log_metric("loss", 2.0, step=1)  # the next call says so
        assert isinstance(later.value, ModelyardAPIError)
        assert isinstance(later.value, RuntimeError)
        assert later.value.status == 409
        assert "immutable" in later.value.message
        assert "in the background failed" in str(later.value)
        run.log_metric("loss", 2.0, step=1)  # said once; what came after it was still sent
    assert steps_of(client, run.id) == [0, 1]
    got = client.get_run(run.id)
    assert got.params == {"lr": "1"}
    assert got.status == "finished"


def test_step_updates_in_an_outage_are_queued_merged_and_sent_once_the_server_is_back(
    client: Client,
) -> None:
    server = switch(client)
    with client.start_run("p", flush_interval=0.01) as run:
        run.plan({"prepare": [], "train": ["prepare"]})
        server.down = True
        with run.step("prepare") as step:
            started = step.start()  # as the server will have it
            assert (started.status, started.start_time is not None) == ("running", True)
            for n in range(1, 10):
                progress = step.set_progress(n / 10, "rows" if n == 5 else None)
            assert (progress.progress, progress.message) == (0.9, "rows")
        with run.step("train") as train:
            train.set_progress(0.5)
        assert train.finish().status == "finished"
        server.down = False
        assert run.flush() is True
    puts = [path for method, path, _ in server.seen if method == "PUT"]
    # Planned, started twice (idempotent), the progress updates as one, finished; train
    # started, its progress, finished twice.
    assert puts.count(f"/api/v1/runs/{run.id}/steps/prepare") == 5
    assert puts.count(f"/api/v1/runs/{run.id}/steps/train") == 5
    steps = {s.name: s for s in client.list_steps(run.id)}
    assert [steps["prepare"].status, steps["train"].status] == ["finished", "finished"]
    assert steps["prepare"].message == "rows"  # kept through the merged updates
    assert steps["train"].depends_on == ["prepare"]
    assert progress.urn == steps["prepare"].urn  # what the call returned in the outage


def test_artifacts_logged_in_an_outage_are_copied_and_uploaded_once(
    client: Client, spool_dir: Path, tmp_path: Path
) -> None:
    server = switch(client)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"epoch 1")
    with client.start_run("p", flush_interval=0.01) as run:
        server.down = True
        with run.step("train") as step:
            art = step.log_artifact(weights, "model/weights.bin", kind="model")
        assert (art.size, art.step) == (7, "train")
        assert art.sha256 == hashlib.sha256(b"epoch 1").hexdigest()
        assert len(files(spool_dir / run.id, ".data")) == 1
        weights.write_bytes(b"epoch 2, rewritten in place")  # the copy is what was logged
        server.down = False
        assert run.flush() is True
        assert not (spool_dir / run.id).exists()
        again = run.log_artifact(weights, "model/later.bin")  # the server answers: as ever
        assert again.size == len(b"epoch 2, rewritten in place")
    arts = {a.path: a for a in client.list_artifacts(run.id)}
    assert set(arts) == {"model/weights.bin", "model/later.bin"}
    assert arts["model/weights.bin"].step == "train"
    assert arts["model/weights.bin"].sha256 == art.sha256
    assert arts["model/weights.bin"].urn == art.urn
    out = client.download_artifact(run.id, "model/weights.bin", tmp_path / "back.bin")
    assert out.read_bytes() == b"epoch 1"


def test_a_run_ending_in_an_outage_leaves_params_steps_and_artifacts_for_sync(
    client: Client, spool_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = switch(client)
    client.exit_timeout = 1
    caplog.set_level(logging.WARNING, logger="modelyard")
    report = tmp_path / "report.html"
    report.write_text("<p>done</p>")
    with client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run:
        server.down = True
        run.log_params({"lr": 0.1, "depth": 6})
        run.set_tag("stage", "dev")
        with run.step("train") as step:
            for i in range(15):
                run.log_metric("loss", i, step=i)
                step.set_progress((i + 1) / 15)
        run.log_artifact(report, media_type="text/html")
    report.unlink()  # gone: the spool keeps its own copy
    folder = spool_dir / run.id
    said = caplog.records[-1].getMessage()
    assert "step updates" in said
    assert "1 artifact" in said
    assert "and its end (finished)" in said
    server.down = False
    out = CliRunner().invoke(main, ["sync", str(folder)])
    assert out.exit_code == 0, out.output
    assert "(15 points)" in out.output
    assert "1 artifact" in out.output
    assert "ended as finished" in out.output
    assert not folder.exists()
    got = client.get_run(run.id)
    assert (got.status, got.params, got.tags["stage"]) == (
        "finished",
        {"lr": "0.1", "depth": "6"},
        "dev",
    )
    assert steps_of(client, run.id) == list(range(15))
    (train,) = client.list_steps(run.id)
    assert (train.status, train.progress) == ("finished", 1.0)
    (art,) = client.list_artifacts(run.id)
    assert (art.path, art.media_type) == ("report.html", "text/html")
    again = CliRunner().invoke(main, ["sync", str(folder)])
    assert "nothing to send" in again.output
    assert len(client.list_artifacts(run.id)) == 1


def test_flush_in_an_outage_returns_false_and_keeps_everything(client: Client) -> None:
    server = switch(client)
    with client.start_run("p", batch_size=BATCH, flush_interval=3600) as run:
        run.log_metric("loss", 0.0, step=0)
        assert run.flush() is True
        server.down = True
        run.log_metric("loss", 1.0, step=1)
        assert run.flush(timeout=0.2) is False  # nothing raised into the loop
        server.down = False
        assert run.flush(timeout=10) is True
    assert steps_of(client, run.id) == [0, 1]


def test_ending_in_an_outage_keeps_to_exit_timeout_whatever_the_retries(
    client: Client, spool_dir: Path
) -> None:
    server = switch(client)
    client.exit_timeout = 1
    run = client.start_run("p", batch_size=BATCH, flush_interval=3600)
    run.log_metric("loss", 1.0, step=0)
    server.down = True
    client.transport.backoff = 2.0  # five retries would sleep for a minute
    started = time.monotonic()
    run.end()
    assert time.monotonic() - started < 3  # exit_timeout (1 s), not the retries' minute
    assert (spool_dir / run.id / END).exists()


def test_the_outage_warning_is_given_once_per_outage(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server = switch(client)
    caplog.set_level(logging.WARNING, logger="modelyard")
    with client.start_run("p", batch_size=BATCH, flush_interval=0.01) as run:
        for outage in range(2):
            server.down = True
            for i in range(30):
                run.log_metric("loss", i, step=100 * outage + i)
            wait_for(lambda: run._outage_since is not None, "the outage was not noticed")
            server.down = False
            wait_for(lambda: run._outage_since is None, "the server was not seen back")
    warnings = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(warnings) == 2, warnings


def test_spooled_files_sort_in_the_order_items_were_queued(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "run", memory=2, manifest={"run_id": "r", "uri": "u"})
    for n in range(5):  # the first two stay in memory, the others go to disk at once
        spool.put(f"k{n}", b"{}", kind="step" if n % 2 else "batch")
    spool.spill()  # the oldest written last: their names still sort first
    names = sorted(p.name for p in (tmp_path / "run").iterdir() if p.name != MANIFEST)
    assert [name.rsplit("-", 1)[1] for name in names] == [
        "k0.batch",
        "k1.step",
        "k2.batch",
        "k3.step",
        "k4.batch",
    ]
