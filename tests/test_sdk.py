"""The SDK over both transports (in-process on a data folder, HTTP to a real server):
runs, steps, artifacts, metrics, batching, background flushes, retries and lineage."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelyard as my
from modelyard.sdk.client import ActiveRun, Client
from modelyard.sdk.transport import ModelyardAPIError
from modelyard.settings import Settings
from tests.conftest import ServerThread

WRITES = frozenset({"POST", "PUT", "PATCH"})


def count_requests(client: Client) -> list[httpx.Request]:
    """Every request the client sends from now on (retries included)."""
    seen: list[httpx.Request] = []
    client.transport.http.event_hooks["request"].append(seen.append)
    return seen


def batch_posts(seen: list[httpx.Request]) -> int:
    return sum(1 for r in seen if r.method == "POST" and r.url.path.endswith("/batch"))


class FlakyTransport(httpx.BaseTransport):
    """Fails the first attempt of every write, in one of two ways:

    - ``lost-reply``: the request reaches the server and is applied, then the client sees a
      connection error instead of the answer;
    - ``unavailable``: a 503 is answered before the server sees the request.

    A retry is recognised as the same method, URL and body sent again.
    """

    def __init__(self, inner: httpx.BaseTransport, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.first_attempts: set[tuple[str, str, str]] = set()
        self.failures = 0
        self.down = False  # when set, nothing gets through at all
        self.refuse_batches = False  # when set, metric batches are refused with a 400

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("the server is gone", request=request)
        if self.refuse_batches and request.url.path.endswith("/batch"):
            return httpx.Response(
                400,
                json={"error": {"code": "INVALID_INPUT", "message": "refused"}},
                request=request,
            )
        if request.method in WRITES:
            signature = (
                request.method,
                str(request.url),
                hashlib.sha256(request.read()).hexdigest(),
            )
            if signature not in self.first_attempts:
                self.first_attempts.add(signature)
                self.failures += 1
                if self.mode == "lost-reply":
                    response = self.inner.handle_request(request)
                    response.read()
                    response.close()
                    assert response.status_code < 500, response.text
                    raise httpx.ConnectError("connection dropped after sending", request=request)
                return httpx.Response(
                    503,
                    json={"error": {"code": "UNAVAILABLE", "message": "try again"}},
                    request=request,
                )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def make_flaky(client: Client, mode: str) -> FlakyTransport:
    """Put a FlakyTransport between the client and its real transport."""
    old = client.transport.http
    flaky = FlakyTransport(old._transport, mode)
    client.transport.http = httpx.Client(
        transport=flaky, base_url=old.base_url, timeout=old.timeout
    )
    client.transport.backoff = 0.001
    return flaky


def readme_run(client: Client, workdir: Path, project: str, name: str, depth: int) -> ActiveRun:
    """The README example, with a file to attach."""
    features = workdir / "features.parquet"
    features.write_bytes(b"PAR1 not really parquet " + name.encode())
    with client.start_run(project=project, name=name, params={"max_depth": depth}) as run:
        with run.step("featurize") as step:
            step.set_progress(0.5, "half the partitions")
            step.log_artifact(features, kind="dataset")
        with run.step("train", depends_on=["featurize"]):
            for epoch in range(10):
                run.log_metrics({"loss": depth / (epoch + 1)}, step=epoch)
    return run


def test_readme_example_end_to_end(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("features.parquet").write_bytes(b"PAR1 fake features")
    with client.start_run(project="churn", name="gbm-3", params={"max_depth": 6}) as run:
        with run.step("featurize") as step:
            step.set_progress(0.5, "half the partitions")
            assert client.list_steps(run.id)[0].progress == 0.5
            assert client.list_steps(run.id)[0].message == "half the partitions"
            step.log_artifact("features.parquet", kind="dataset")
        with run.step("train", depends_on=["featurize"]):
            for epoch in range(10):
                run.log_metrics({"loss": 1 / (epoch + 1)}, step=epoch)

    got = client.get_run(run.id)
    assert got.status == "finished"
    assert got.end_time is not None
    assert got.end_time >= got.start_time
    assert got.error is None
    assert got.project == "churn"
    assert got.name == "gbm-3"
    assert got.params == {"max_depth": "6"}
    assert got.metrics["loss"].value == pytest.approx(0.1)
    assert got.metrics["loss"].step == 9

    steps = client.list_steps(run.id)
    assert [s.name for s in steps] == ["featurize", "train"]
    assert [s.status for s in steps] == ["finished", "finished"]
    assert steps[1].depends_on == ["featurize"]
    assert steps[0].progress == 1.0
    assert [a.path for a in steps[0].artifacts] == ["features.parquet"]
    assert steps[1].artifacts == []

    (artifact,) = client.list_artifacts(run.id)
    assert artifact.path == "features.parquet"
    assert artifact.step == "featurize"
    assert artifact.kind == "dataset"
    assert artifact.size == len(b"PAR1 fake features")
    assert artifact.sha256 == hashlib.sha256(b"PAR1 fake features").hexdigest()
    out = client.download_artifact(run.id, "features.parquet", tmp_path / "copy" / "f.parquet")
    assert out.read_bytes() == b"PAR1 fake features"

    history = client.get_metric_history(run.id, "loss")
    assert history.steps.tolist() == list(range(10))
    np.testing.assert_allclose(history.values, [1 / (e + 1) for e in range(10)])

    # More runs to search among: final losses are depth / 10.
    for depth in (1, 3, 5):
        readme_run(client, tmp_path, "churn", f"gbm-d{depth}", depth)
    readme_run(client, tmp_path, "other-project", "elsewhere", 1)

    page = client.search_runs(
        project="churn", filter="metrics.loss < 0.2", order_by=["metrics.loss asc"]
    )
    assert [r.name for r in page.runs] == ["gbm-3", "gbm-d1"]
    assert page.next_page_token is None
    page = client.search_runs(
        project="churn",
        filter="metrics.loss >= 0.1 and params.max_depth != '6'",
        order_by=["metrics.loss desc"],
    )
    assert [r.name for r in page.runs] == ["gbm-d5", "gbm-d3", "gbm-d1"]
    assert [r.metrics["loss"].value for r in page.runs] == pytest.approx([0.5, 0.3, 0.1])

    # Keyset pages: iter_runs walks them all, in order, without repeats.
    for i in range(12):
        with client.start_run("paging", name=f"r{i:02d}", params={"i": i}) as r:
            r.log_metric("score", i, step=0)
    names = [r.name for r in client.iter_runs("paging", order_by=["metrics.score desc"])]
    assert names == [f"r{i:02d}" for i in reversed(range(12))]
    small_pages = [
        r.name for r in client.iter_runs("paging", order_by=["metrics.score desc"], page_size=5)
    ]
    assert small_pages == names
    first = client.search_runs("paging", order_by=["metrics.score desc"], page_size=5)
    assert len(first.runs) == 5
    assert first.next_page_token is not None
    second = client.search_runs(
        "paging", order_by=["metrics.score desc"], page_size=5, page_token=first.next_page_token
    )
    assert [r.name for r in second.runs] == names[5:10]
    filtered = list(client.iter_runs("paging", filter="metrics.score < 4", page_size=2))
    assert sorted(r.name for r in filtered) == ["r00", "r01", "r02", "r03"]

    projects = {p.name: p.run_count for p in client.list_projects()}
    assert projects == {"churn": 4, "other-project": 1, "paging": 12}


def test_run_that_raises_is_failed_and_the_error_propagates(client: Client) -> None:
    with (  # noqa: PT012
        pytest.raises(ValueError, match="bad batch of data"),
        client.start_run("p", name="boom") as run,
    ):
        run.log_metric("loss", 0.5, step=1)
        raise ValueError("bad batch of data")
    got = client.get_run(run.id)
    assert got.status == "failed"
    assert got.error is not None
    assert "ValueError: bad batch of data" in got.error
    assert got.end_time is not None
    # Metrics buffered before the error were still sent.
    assert got.metrics["loss"].value == 0.5


def test_step_that_raises_fails_the_step_and_the_run(client: Client) -> None:
    with pytest.raises(RuntimeError, match="out of memory"), client.start_run("p") as run:  # noqa: PT012
        with run.step("load"):
            pass
        with run.step("train", depends_on=["load"]):
            raise RuntimeError("out of memory")
    steps = {s.name: s for s in client.list_steps(run.id)}
    assert steps["load"].status == "finished"
    assert steps["train"].status == "failed"
    assert steps["train"].error is not None
    assert "RuntimeError: out of memory" in steps["train"].error
    got = client.get_run(run.id)
    assert got.status == "failed"
    assert got.error is not None
    assert "out of memory" in got.error


def test_the_users_error_wins_when_the_failure_cannot_be_recorded(client: Client) -> None:
    flaky = make_flaky(client, "unavailable")
    with (  # noqa: PT012
        pytest.raises(ZeroDivisionError),
        client.start_run("p") as run,
        run.step("train"),
    ):
        run.log_metric("loss", 1.0)
        flaky.down = True
        print(1 / 0)
    flaky.down = False
    got = client.get_run(run.id)
    assert got.status == "running"  # nothing could be recorded: the run is left as it was
    assert [s.status for s in client.list_steps(run.id)] == ["running"]


def test_keyboard_interrupt_kills_the_run(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run("p") as run:  # noqa: PT012
        run.plan({"a": [], "b": ["a"]})
        with run.step("a"):
            raise KeyboardInterrupt
    got = client.get_run(run.id)
    assert got.status == "killed"
    assert got.error is not None
    assert "KeyboardInterrupt" in got.error
    steps = {s.name: s.status for s in client.list_steps(run.id)}
    assert steps == {"a": "failed", "b": "skipped"}


def test_tight_loop_metrics_are_batched(client: Client) -> None:
    seen = count_requests(client)
    started = time.monotonic()
    with client.start_run("p") as run:
        for i in range(10_000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
    elapsed = time.monotonic() - started
    batches = batch_posts(seen)
    # 1,000 points a batch: 10 full ones and the tail, plus one background flush per
    # flush_interval (2 s) the loop took, if it was that slow.
    assert 10 <= batches <= 11 + math.ceil(elapsed / run.flush_interval), (batches, elapsed)
    assert len(seen) == batches + 2  # besides the batches: the create and the end
    history = client.get_metric_history(run.id, "loss")
    assert len(history) == 10_000
    assert history.steps.tolist() == list(range(10_000))
    np.testing.assert_allclose(history.values, 1.0 / (np.arange(10_000) + 1))
    assert len(client.get_metric_history(run.id, "a")) == 1
    assert client.get_run(run.id).metrics["loss"].step == 9_999


def test_background_flush_sends_points_without_an_explicit_flush(client: Client) -> None:
    seen = count_requests(client)
    run = client.start_run("p", flush_interval=0.2)
    try:
        run.log_metric("loss", 0.25, step=3)
        assert batch_posts(seen) == 0  # buffered, not sent yet
        deadline = time.monotonic() + 10
        while "loss" not in client.get_run(run.id).metrics:
            assert time.monotonic() < deadline, "the point never reached the server"
            time.sleep(0.05)
        assert batch_posts(seen) == 1
        assert client.get_run(run.id).metrics["loss"].value == 0.25
        # The flusher keeps going: a second point arrives the same way.
        run.log_metric("loss", 0.125, step=4)
        while client.get_run(run.id).metrics["loss"].step != 4:
            assert time.monotonic() < deadline, "the second point never reached the server"
            time.sleep(0.05)
    finally:
        run.end()
    assert len(client.get_metric_history(run.id, "loss")) == 2
    assert batch_posts(seen) == 2


def test_an_outage_loses_no_buffered_metrics(client: Client) -> None:
    """Points whose sending failed even after retries are kept and sent once the server is
    back, in the background as well as on an explicit flush."""
    flaky = make_flaky(client, "unavailable")
    seen = count_requests(client)
    with client.start_run("p", batch_size=100, flush_interval=0.05) as run:
        flaky.down = True
        run.log_metric("loss", 0.5, step=0)
        deadline = time.monotonic() + 10
        while batch_posts(seen) < 2:  # the background flusher tried, failed, tried again
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert run.flush(timeout=0.2) is False  # nothing raised: the points stay queued
        run.log_metric("loss", 0.25, step=1)  # no error: the flusher's failures were transient
        flaky.down = False
        while "loss" not in client.get_run(run.id).metrics:
            assert time.monotonic() < deadline, "the kept points were never sent"
            time.sleep(0.02)
    assert client.get_metric_history(run.id, "loss").steps.tolist() == [0, 1]
    assert client.get_run(run.id).status == "finished"

    # A batch that fills up while the server is away is kept too.
    with client.start_run("p", batch_size=100, flush_interval=3600) as run:
        flaky.down = True
        before = batch_posts(seen)
        for i in range(100):  # the 100th point fills a batch: sent in the background, and fails
            run.log_metric("loss", 1 / (i + 1), step=i)
        deadline = time.monotonic() + 10
        while batch_posts(seen) == before:
            assert time.monotonic() < deadline, "the full batch was never sent"
            time.sleep(0.01)
        flaky.down = False
        run.log_metric("loss", 0.0, step=100)
    assert client.get_metric_history(run.id, "loss").steps.tolist() == list(range(101))
    assert client.get_run(run.id).status == "finished"


def wait_for_background_error(run: ActiveRun) -> None:
    deadline = time.monotonic() + 10
    while run._error is None:
        assert time.monotonic() < deadline, "the background flush was never refused"
        time.sleep(0.01)


def test_refused_metrics_are_reported_and_fail_the_run(client: Client) -> None:
    """Points the server refuses are reported in the user's thread, and a run whose metrics
    were lost is not recorded as finished."""
    flaky = make_flaky(client, "unavailable")
    flaky.refuse_batches = True
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="in the background failed"),
        client.start_run("p", flush_interval=0.05) as run,
    ):
        run.log_metric("loss", 0.5)
        wait_for_background_error(run)
        run.log_metric("loss", 0.25)  # raises: the refusal surfaces here
    got = client.get_run(run.id)
    assert got.status == "failed"
    assert got.error is not None
    assert "in the background failed" in got.error

    # Refused in the background, noticed only when the run ends.
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="in the background failed"),
        client.start_run("p", flush_interval=0.05) as run,
    ):
        run.log_metric("loss", 0.5)
        wait_for_background_error(run)
        flaky.refuse_batches = False
    got = client.get_run(run.id)
    assert got.status == "failed"
    assert got.error is not None
    assert got.error.startswith("metrics could not be sent")


def test_bad_metrics_are_refused_where_they_are_logged(client: Client) -> None:
    with client.start_run("p") as run:
        with pytest.raises(ValueError, match="metric keys"):
            run.log_metric("x" * 251, 1.0)
        with pytest.raises(ValueError, match="metric keys"):
            run.log_metric("", 1.0)
        with pytest.raises(ValueError, match="timestamps"):
            run.log_metric("loss", 1.0, timestamp=-5)
        with pytest.raises(ValueError, match="could not convert"):
            run.log_metric("loss", "not a number")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="metric keys"):
            run.log_metrics({"good": 1.0, "": 2.0})  # nothing of a refused call is kept
        run.log_metric("x" * 250, 1.0)
    assert set(client.get_run(run.id).metrics) == {"x" * 250}
    assert client.get_run(run.id).status == "finished"


@pytest.mark.parametrize("mode", ["lost-reply", "unavailable"])
def test_transient_errors_are_retried_without_duplicates(
    client: Client, tmp_path: Path, mode: str
) -> None:
    flaky = make_flaky(client, mode)
    project = client.create_project("flaky", "retried creates")
    assert project.name == "flaky"
    data = tmp_path / "model.bin"
    data.write_bytes(b"\x00weights" * 100)
    with client.start_run(
        "flaky", name="r1", params={"lr": 0.1}, tags={"team": "ml"}, batch_size=1000
    ) as run:
        run.log_params({"epochs": 3})
        run.set_tag("stage", "dev")
        with run.step("prep") as step:
            step.set_progress(0.3, "loading")
            step.log_artifact(data, "out/model.bin", kind="model")
        with run.step("train", depends_on=["prep"]):
            for i in range(2_500):
                run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 2_500}, step=i)
        ds = run.log_input("train-set", uri="s3://bucket/train", num_rows=100)
        model = run.log_model("churn-model", "gbm")
    assert flaky.failures >= 15  # every write failed once, and was retried

    runs = list(client.iter_runs("flaky"))
    assert [r.run_id for r in runs] == [run.id]
    got = runs[0]
    assert got.status == "finished"
    assert got.params == {"lr": "0.1", "epochs": "3"}
    assert got.tags == {"team": "ml", "stage": "dev"}
    for key in ("loss", "acc"):
        history = client.get_metric_history(run.id, key)
        assert len(history) == 2_500
        assert history.steps.tolist() == list(range(2_500))
    steps = client.list_steps(run.id)
    assert [(s.name, s.status) for s in steps] == [("prep", "finished"), ("train", "finished")]
    (artifact,) = client.list_artifacts(run.id)
    assert artifact.path == "out/model.bin"
    assert artifact.size == 800
    assert [p.run_count for p in client.list_projects() if p.name == "flaky"] == [1]
    graph = client.lineage(run.urn)
    hops = {n.urn: n.hops for n in graph.nodes}
    assert hops[ds] == -1
    assert hops[model] == 1
    assert hops[artifact.urn] == 1
    # The audit trail has one version per real change, none from retries.
    versions = client._call("GET", f"/entities/{run.urn}/aspects/run_params/versions")
    assert [v["value"]["params"] for v in versions] == [
        {"lr": "0.1"},
        {"lr": "0.1", "epochs": "3"},
    ]
    states = client._call("GET", f"/entities/{run.urn}/aspects/run_state/versions")
    assert [v["value"]["status"] for v in states] == ["running", "finished"]


def test_a_conflict_that_is_not_caused_by_a_retry_still_raises(client: Client) -> None:
    client.create_project("taken", "the first")
    with pytest.raises(ModelyardAPIError) as err:
        client.create_project("taken", "the first")
    assert err.value.status == 409
    assert err.value.code == "CONFLICT"
    # Retried after a lost reply, a create that conflicts with a different project still fails.
    make_flaky(client, "lost-reply")
    with pytest.raises(ModelyardAPIError) as err:
        client.create_project("taken", "another one")
    assert err.value.status == 409
    with client.start_run("taken", params={"lr": 1}) as run, pytest.raises(ModelyardAPIError):
        run.log_param("lr", 2)


def test_metric_history_is_numpy_with_nan_and_infinities(client: Client) -> None:
    values = [1.5, math.nan, math.inf, -math.inf, -0.0, 1e308, 2.5]
    with client.start_run("p") as run:
        for step, v in enumerate(values):
            run.log_metric("weird", v, step=step, timestamp=1_000 + step)
        run.log_metric("big-step", 1.0, step=2**62, timestamp=2**53 - 1)
    history = client.get_metric_history(run.id, "weird")
    assert isinstance(history.values, np.ndarray)
    assert history.values.dtype == np.float64
    assert history.steps.dtype == np.int64
    assert history.timestamps.dtype == np.int64
    assert history.steps.tolist() == list(range(len(values)))
    assert history.timestamps.tolist() == [1_000 + s for s in range(len(values))]
    np.testing.assert_array_equal(history.values, np.array(values))  # NaN == NaN here
    assert np.isnan(history.values[1])
    assert np.isposinf(history.values[2])
    assert np.isneginf(history.values[3])
    assert client.get_run(run.id).metrics["weird"].value == 2.5
    big = client.get_metric_history(run.id, "big-step")
    assert big.steps.tolist() == [2**62]
    assert big.timestamps.tolist() == [2**53 - 1]

    with client.start_run("p") as run2:
        run2.log_metric("last-is-nan", 1.0, step=0)
        run2.log_metric("last-is-nan", math.nan, step=1)
    assert client.get_run(run2.id).metrics["last-is-nan"].value == "NaN"


def test_inputs_models_and_lineage(client: Client, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 10)
    with client.start_run("p", name="producer") as run:
        ds = run.log_input("customers", uri="s3://data/customers", digest="abc", num_rows=1_000)
        assert ds == "urn:modelyard:dataset:customers"
        art = run.log_artifact(weights, kind="model")
        model = run.log_model("churn", "gradient boosting")
        assert model == "urn:modelyard:model:churn"
    with client.start_run("p", name="consumer") as other:
        other.log_input("customers")

    graph = client.lineage(run.urn)
    assert graph.root == run.urn
    nodes = {n.urn: (n.type, n.hops) for n in graph.nodes}
    assert nodes[run.urn] == ("run", 0)
    assert nodes[ds] == ("dataset", -1)
    assert nodes[model] == ("model", 1)
    assert nodes[art.urn] == ("artifact", 1)
    assert other.urn not in nodes  # a sibling consumer is neither up- nor downstream
    edges = {(e.upstream, e.downstream) for e in graph.edges}
    assert {(ds, run.urn), (run.urn, model), (run.urn, art.urn)} <= edges

    downstream = client.lineage(ds, upstream=0, downstream=2)
    down = {n.urn: n.hops for n in downstream.nodes}
    assert down[ds] == 0
    assert down[run.urn] == 1
    assert down[other.urn] == 1
    assert down[model] == 2
    assert all(h >= 0 for h in down.values())

    upstream = client.lineage(model, upstream=3, downstream=0)
    assert {n.urn: n.hops for n in upstream.nodes} == {model: 0, run.urn: -1, ds: -2}

    with pytest.raises(ModelyardAPIError) as err:
        client.lineage("urn:modelyard:model:nope")
    assert err.value.status == 404


def test_api_errors_carry_status_code_and_message(client: Client) -> None:
    missing = "0" * 32
    with pytest.raises(ModelyardAPIError) as err:
        client.get_run(missing)
    assert err.value.status == 404
    assert err.value.code == "NOT_FOUND"
    assert missing in err.value.message
    assert str(err.value).startswith("404 NOT_FOUND: ")

    with client.start_run("p", params={"lr": 0.1}) as run:
        with pytest.raises(ModelyardAPIError) as err:
            run.log_param("lr", 0.2)
        assert err.value.status == 409
        assert err.value.code == "CONFLICT"
        assert "immutable" in err.value.message
        run.log_param("lr", 0.1)  # the same value again is fine

    with pytest.raises(ModelyardAPIError) as err:
        client.search_runs("p", filter="metrics.loss <<< 1")
    assert err.value.status == 400
    assert err.value.code == "INVALID_INPUT"
    assert err.value.message

    with pytest.raises(ModelyardAPIError) as err:  # the run has ended
        client._call(
            "POST", f"/runs/{run.id}/batch", json={"metrics": [{"key": "late", "value": 1.0}]}
        )
    assert err.value.status == 409
    assert err.value.code == "INVALID_STATE"
    assert "finished" in err.value.message

    with pytest.raises(ModelyardAPIError) as err:
        client.start_run("p", run_id="not-hex")
    assert err.value.status == 422
    assert err.value.code == "INVALID_INPUT"
    assert "run_id" in err.value.message


def test_modelyard_uri_selects_the_transport(
    settings: Settings, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.delenv("MODELYARD_DATA_DIR", raising=False)
    monkeypatch.setenv("MODELYARD_URI", server.url)
    with my.Client() as remote:
        assert remote.uri == server.url
        assert str(remote.transport.http.base_url).startswith(server.url)
        with remote.start_run("via-env", name="remote-run") as run:
            run.log_metric("m", 1.0)
    monkeypatch.setenv("MODELYARD_URI", str(settings.data_dir))
    with my.Client() as local:
        assert local.uri == str(settings.data_dir.resolve())
        assert not str(local.transport.http.base_url).startswith(server.url)
        # The same database, reached without the server.
        assert local.get_run(run.id).name == "remote-run"
        assert local.get_run(run.id).metrics["m"].value == 1.0
    # With no URI at all, MODELYARD_DATA_DIR is the folder.
    monkeypatch.delenv("MODELYARD_URI")
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(settings.data_dir))
    with my.Client() as fallback:
        assert fallback.uri == str(settings.data_dir.resolve())
        assert fallback.get_run(run.id).status == "finished"


def test_logging_after_the_run_ended_fails_at_once(client: Client) -> None:
    with client.start_run(project="after") as run:
        run.log_metric("loss", 1.0, step=0)
    with pytest.raises(RuntimeError, match="has ended"):
        run.log_metric("loss", 0.5, step=1)
    series = client.get_metric_history(run.id, "loss")
    assert series.steps.tolist() == [0]
