"""The SDK's client, runs and steps.

import modelyard as my
client = my.Client()          # local data dir, my.Client("http://host:port") or MODELYARD_URI
with client.start_run(project="churn", name="gbm-3", params={"max_depth": 6}) as run:
    with run.step("train"):
        run.log_metrics({"loss": 0.3}, step=0)
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import orjson

from modelyard.floats import encode_float
from modelyard.limits import MAX_KEY
from modelyard.schemas import (
    ArtifactPublic,
    EvaluationPublic,
    LineagePublic,
    ProjectPublic,
    RunPage,
    RunPublic,
    StepPublic,
)
from modelyard.sdk import models
from modelyard.sdk.evaluations import Evaluation, evaluate
from modelyard.sdk.models import ModelVersion
from modelyard.sdk.transport import (
    ModelyardAPIError,
    local_transport,
    remote_transport,
)

__all__ = ["ActiveRun", "ActiveStep", "Client", "MetricSeries", "ModelyardAPIError"]


INT64_MAX = 2**63 - 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# Points waiting beyond this many batches make the logging call itself send them.
MAX_BUFFERED_BATCHES = 20


def _json_batch(keys: list[str], values: list[float], steps: list[int], stamps: list[int]) -> bytes:
    """A batch as columnar JSON (measured faster end to end than Arrow for batches of 1,000).
    JSON has no NaN or infinities: those travel as the strings the API knows."""
    special = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=np.float64)))
    encoded: list[float | str] = list(values)
    for i in special.tolist():
        encoded[i] = encode_float(values[i])
    return orjson.dumps(
        {"columns": {"key": keys, "value": encoded, "step": steps, "timestamp": stamps}}
    )


@dataclass(frozen=True)
class MetricSeries:
    """A metric's full history as numpy arrays, ordered by step then timestamp."""

    key: str
    steps: np.ndarray[Any, np.dtype[np.int64]]
    timestamps: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]

    def __len__(self) -> int:
        return len(self.steps)


class Client:
    """Talks to a modelyard server over HTTP, or runs the same app in-process on a folder.

    ``uri`` is ``http(s)://host:port`` for a server or a folder path for local mode; when
    omitted, ``MODELYARD_URI`` is used, then ``MODELYARD_DATA_DIR``, then ``./modelyard-data``.
    """

    def __init__(self, uri: str | None = None, *, timeout: float = 60.0, retries: int = 5) -> None:
        uri = uri or os.environ.get("MODELYARD_URI")
        if uri and uri.startswith(("http://", "https://")):
            self.transport = remote_transport(uri, timeout=timeout, retries=retries)
            self.uri = uri
        else:
            data_dir = uri or os.environ.get("MODELYARD_DATA_DIR") or "modelyard-data"
            data_dir = data_dir.removeprefix("file://")
            self.transport = local_transport(data_dir, retries=retries)
            self.uri = str(Path(data_dir).resolve())

    # --- plumbing
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.transport.request(method, "/api/v1" + path, **kwargs)
        return None if resp.status_code == 204 or not resp.content else resp.json()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- projects
    def create_project(self, name: str, description: str = "") -> ProjectPublic:
        try:
            created = self._call(
                "POST", "/projects", json={"name": name, "description": description}
            )
        except ModelyardAPIError as exc:
            if exc.status != 409 or not exc.retried:
                raise
            # An earlier attempt may have created it before its reply was lost: that project
            # is the one asked for when it matches.
            for project in self.list_projects():
                if project.name == name and project.description == description:
                    return project
            raise
        return ProjectPublic.model_validate(created)

    def get_project(self, ref: str | int) -> ProjectPublic:
        return ProjectPublic.model_validate(self._call("GET", f"/projects/{ref}"))

    def list_projects(self) -> list[ProjectPublic]:
        return [ProjectPublic.model_validate(p) for p in self._call("GET", "/projects")]

    # --- runs
    def start_run(
        self,
        project: str,
        name: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        source: str | None = None,
        git_commit: str | None = None,
        batch_size: int = 1000,
        flush_interval: float = 2.0,
    ) -> ActiveRun:
        """Start a run; use it as a context manager so it ends as finished or failed."""
        body = {
            "project": project,
            "name": name,
            "run_id": run_id or uuid.uuid4().hex,
            "params": {k: str(v) for k, v in (params or {}).items()},
            "tags": dict(tags or {}),
            "source": source,
            "git_commit": git_commit,
        }
        info = RunPublic.model_validate(self._call("POST", "/runs", json=body))
        return ActiveRun(self, info, batch_size=batch_size, flush_interval=flush_interval)

    def get_run(self, run_id: str) -> RunPublic:
        return RunPublic.model_validate(self._call("GET", f"/runs/{run_id}"))

    def search_runs(
        self,
        project: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        page_size: int = 100,
        page_token: str | None = None,
        projects: Sequence[str] | None = None,
    ) -> RunPage:
        """One page of runs; pass ``next_page_token`` back for the next one."""
        body = {
            "project": project,
            "projects": list(projects) if projects else None,
            "filter": filter,
            "order_by": list(order_by),
            "page_size": page_size,
            "page_token": page_token,
        }
        return RunPage.model_validate(self._call("POST", "/runs/search", json=body))

    def iter_runs(
        self,
        project: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        page_size: int = 1000,
    ) -> Iterator[RunPublic]:
        """Every matching run, fetched page by page."""
        token: str | None = None
        while True:
            page = self.search_runs(
                project, filter, order_by, page_size=page_size, page_token=token
            )
            yield from page.runs
            token = page.next_page_token
            if token is None:
                return

    def get_metric_history(self, run_id: str, key: str) -> MetricSeries:
        """Every point of a run's metric, fetched as Arrow a page at a time."""
        import pyarrow as pa  # on first use: it is a sixth of `import modelyard`

        params = {"key": key, "format": "arrow"}
        tables = []
        while True:
            resp = self.transport.request(
                "GET", f"/api/v1/runs/{run_id}/metric-history", params=params
            )
            tables.append(pa.ipc.open_stream(resp.content).read_all())
            token = resp.headers.get("modelyard-next-page-token")
            if not token:
                break
            params["page_token"] = token
        table = pa.concat_tables(tables)
        return MetricSeries(
            key=key,
            steps=table.column("step").to_numpy(),
            timestamps=table.column("timestamp").to_numpy(),
            values=table.column("value").to_numpy(),
        )

    def list_steps(self, run_id: str) -> list[StepPublic]:
        return [StepPublic.model_validate(s) for s in self._call("GET", f"/runs/{run_id}/steps")]

    def list_artifacts(self, run_id: str) -> list[ArtifactPublic]:
        return [
            ArtifactPublic.model_validate(a) for a in self._call("GET", f"/runs/{run_id}/artifacts")
        ]

    def download_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        resp = self.transport.request("GET", f"/api/v1/runs/{run_id}/artifacts/{path}")
        if resp.is_redirect:  # the server hands out a presigned URL of its object store
            resp = httpx.get(resp.headers["location"], timeout=300).raise_for_status()
        out = Path(dest)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(resp.content)
        return out

    def evaluate(self, run_id: str, y_true: Any, y_score: Any, **options: Any) -> Evaluation:
        """Evaluate predictions of a run; see :meth:`ActiveRun.evaluate`."""
        return evaluate(self, run_id, y_true, y_score, **options)

    def get_model_version(self, model: str, version: int) -> ModelVersion:
        return models.get(self, model, version)

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        public = EvaluationPublic.model_validate(self._call("GET", f"/evaluations/{evaluation_id}"))
        return Evaluation(self, public)

    def list_evaluations(self, run_id: str) -> list[Evaluation]:
        rows = self._call("GET", f"/runs/{run_id}/evaluations")
        return [Evaluation(self, EvaluationPublic.model_validate(r)) for r in rows]

    def lineage(self, urn: str, *, upstream: int = 3, downstream: int = 3) -> LineagePublic:
        return LineagePublic.model_validate(
            self._call(
                "GET",
                "/lineage",
                params={"urn": urn, "upstream": upstream, "downstream": downstream},
            )
        )


class ActiveRun:
    """A run being logged to. Metrics are buffered and sent in batches, in the background
    every ``flush_interval`` seconds and whenever ``batch_size`` points are waiting."""

    def __init__(
        self, client: Client, info: RunPublic, *, batch_size: int, flush_interval: float
    ) -> None:
        self.client = client
        self.info = info
        self.id = info.run_id
        self.urn = info.urn
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._keys: list[str] = []
        self._values: list[float] = []
        self._steps: list[int] = []
        self._stamps: list[int] = []
        self._unsent: list[tuple[str, bytes]] = []  # (idempotency key, JSON body)
        self._buffer_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ended = False

    # --- params and tags are sent at once: a conflicting param should fail where it is logged
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client._call(
            "POST",
            f"/runs/{self.id}/params",
            json={"params": {k: str(v) for k, v in params.items()}},
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client._call("POST", f"/runs/{self.id}/tags", json={"tags": dict(tags)})

    def set_tag(self, key: str, value: str) -> None:
        self.set_tags({key: value})

    # --- metrics
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        if self._ended:
            raise RuntimeError(f"run {self.id} has ended; start a new run to log more metrics")
        if self._error is not None:
            self._raise_background_error()
        # Checked here, where a mistake is made, rather than when a whole batch is refused.
        stamp = _now_ms() if timestamp is None else int(timestamp)
        step_no = 0 if step is None else int(step)
        if not 0 <= stamp <= INT64_MAX:
            raise ValueError(f"metric timestamps are milliseconds since the epoch, got {stamp}")
        if not -INT64_MAX <= step_no <= INT64_MAX:
            raise ValueError(f"metric steps are 64-bit integers, got {step_no}")
        points: list[tuple[str, float]] = []
        for key, value in metrics.items():
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
                raise ValueError(f"metric keys have 1 to {MAX_KEY} characters, got {key!r:.80}")
            points.append((key, float(value)))
        with self._buffer_lock:
            for key, encoded in points:
                self._keys.append(key)
                self._values.append(encoded)
                self._steps.append(step_no)
                self._stamps.append(stamp)
            waiting = len(self._keys)
        if waiting >= self.batch_size * MAX_BUFFERED_BATCHES:
            self.flush()  # the server is slower than the loop: wait for it rather than grow
            return
        if (self._flusher is None or not self._flusher.is_alive()) and not self._stop.is_set():
            self._flusher = threading.Thread(
                target=self._flush_loop, daemon=True, name=f"modelyard-flush-{self.id[:8]}"
            )
            self._flusher.start()
        if waiting >= self.batch_size:
            self._wake.set()  # full batches go out from the background thread

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return  # end() sends what is left
            try:
                # Woken by a full batch: send full batches only. On the interval: everything.
                self.flush(full_batches_only=woken)
            except BaseException as exc:
                if _transient(exc):
                    continue  # the points are back in the buffer: sent again next time
                self._error = exc  # points were refused: surfaced in the user's thread
                return

    def _raise_background_error(self) -> None:
        err, self._error = self._error, None
        raise RuntimeError(f"sending metrics in the background failed: {err}") from err

    def flush(self, *, full_batches_only: bool = False) -> None:
        """Send every buffered point now, ``batch_size`` points a request.

        Each batch gets an idempotency key when it leaves the buffer. When the server cannot
        be reached (even after retries), the batch stays queued with its key and is sent
        first by the next flush, so a batch the server did apply is not stored twice; a
        batch the server refuses is dropped, and the error is raised.
        """
        with self._send_lock:
            with self._buffer_lock:
                take = len(self._keys)
                if full_batches_only:
                    take -= take % self.batch_size
                keys, values = self._keys[:take], self._values[:take]
                steps, stamps = self._steps[:take], self._stamps[:take]
                del self._keys[:take], self._values[:take], self._steps[:take]
                del self._stamps[:take]
            for start in range(0, len(keys), self.batch_size):
                end = start + self.batch_size
                body = _json_batch(
                    keys[start:end], values[start:end], steps[start:end], stamps[start:end]
                )
                self._unsent.append((uuid.uuid4().hex, body))
            while self._unsent:
                batch_key, unsent = self._unsent[0]
                try:
                    self.client._call(
                        "POST",
                        f"/runs/{self.id}/batch",
                        content=unsent,
                        headers={
                            "Idempotency-Key": batch_key,
                            "Content-Type": "application/json",
                        },
                    )
                except BaseException as exc:
                    if not _transient(exc):
                        self._unsent.pop(0)
                    raise
                self._unsent.pop(0)

    # --- steps, artifacts, lineage
    def step(self, name: str, depends_on: Sequence[str] = ()) -> ActiveStep:
        """A pipeline step; ``with run.step("train", depends_on=["featurize"]):``."""
        return ActiveStep(self, name, list(depends_on))

    def plan(self, steps: Mapping[str, Sequence[str]]) -> None:
        """Declare the pipeline up front (step -> the steps it depends on), all pending."""
        for name, deps in steps.items():
            self.client._call(
                "PUT",
                f"/runs/{self.id}/steps/{name}",
                json={"depends_on": list(deps), "status": "pending"},
            )

    def log_artifact(
        self,
        local_path: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        step: str | None = None,
        kind: str | None = None,
        media_type: str | None = None,
    ) -> ArtifactPublic:
        source = Path(local_path)
        path = artifact_path or source.name
        params = {k: v for k, v in (("step", step), ("kind", kind)) if v is not None}
        headers = {"Content-Type": media_type} if media_type else {}
        resp = self.client.transport.request(
            "PUT",
            f"/api/v1/runs/{self.id}/artifacts/{path}",
            params=params,
            headers=headers,
            content_factory=source.read_bytes,
        )
        return ArtifactPublic.model_validate(resp.json())

    def log_input(
        self,
        name: str,
        *,
        uri: str | None = None,
        digest: str | None = None,
        num_rows: int | None = None,
    ) -> str:
        """Record a dataset this run consumed; returns its URN."""
        ds = {"name": name, "uri": uri, "digest": digest, "num_rows": num_rows}
        urns: list[str] = self.client._call(
            "POST", f"/runs/{self.id}/inputs", json={"datasets": [ds]}
        )
        return urns[0]

    def evaluate(
        self,
        y_true: Any,
        y_score: Any,
        *,
        dataset: str | None = None,
        name: str | None = None,
        groups: Mapping[str, Any] | None = None,
        weights: Any = None,
        task: str | None = None,
        classes: Sequence[Any] | None = None,
        threshold: float = 0.5,
    ) -> Evaluation:
        """Evaluate this run's predictions with every analyzer that applies (a binary task is
        detected from 0/1 labels); ``groups`` adds fairness by each group column. Stored as an
        evaluation linked to the run and the dataset."""
        return evaluate(
            self.client, self.id, y_true, y_score, dataset=dataset, name=name, groups=groups,
            weights=weights, task=task, classes=classes, threshold=threshold,
        )  # fmt: skip

    def register_model(self, model: str, description: str = "") -> ModelVersion:
        """Register this run's model as the next version of ``model``."""
        return models.register(self.client, self.id, model, description)

    def log_model(self, name: str, description: str = "") -> str:
        """Record a model this run produced; returns its URN."""
        urns: list[str] = self.client._call(
            "POST",
            f"/runs/{self.id}/outputs",
            json={"models": [{"name": name, "description": description}]},
        )
        return urns[0]

    # --- ending
    def detach(self) -> None:
        """Send what is buffered and stop sending in the background, leaving the run running
        (another process may carry on with it)."""
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
        self._ended = True

    def end(self, status: str = "finished", error: str | None = None) -> RunPublic:
        if self._ended:
            return self.client.get_run(self.id)
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            if self._error is not None:
                self._raise_background_error()
            self.flush()
        except BaseException as exc:
            # Metrics were lost: the run did not finish as logged.
            if status == "finished":
                status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
                error = f"metrics could not be sent: {_describe(exc)}"
            raise
        finally:
            self._ended = True
            body = {"status": status, "error": error}
            info = RunPublic.model_validate(
                self.client._call("PATCH", f"/runs/{self.id}", json=body)
            )
        return info

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("finished")
            return
        status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        try:
            self.end(status, error=_describe(exc))
        except Exception:  # the user's own error matters more than a failed flush
            traceback.print_exc()


def _transient(exc: BaseException) -> bool:
    """Whether sending may work later: the server was unreachable or briefly failing."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ModelyardAPIError) and (exc.status >= 500 or exc.status == 429)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:20_000]


class ActiveStep:
    """A pipeline step: running while inside ``with``, then finished or failed."""

    def __init__(self, run: ActiveRun, name: str, depends_on: list[str]) -> None:
        self.run = run
        self.name = name
        self.depends_on = depends_on

    def _put(self, **body: Any) -> StepPublic:
        return StepPublic.model_validate(
            self.run.client._call("PUT", f"/runs/{self.run.id}/steps/{self.name}", json=body)
        )

    def start(self) -> StepPublic:
        # Without depends_on here, a step planned with run.plan() keeps its planned ones.
        deps = {"depends_on": self.depends_on} if self.depends_on else {}
        return self._put(**deps, status="running")

    def set_progress(self, fraction: float, message: str | None = None) -> StepPublic:
        """Progress from 0 to 1, with an optional message shown beside the bar."""
        return self._put(progress=fraction, message=message)

    def log_artifact(
        self,
        local_path: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        kind: str | None = None,
        media_type: str | None = None,
    ) -> ArtifactPublic:
        return self.run.log_artifact(
            local_path, artifact_path, step=self.name, kind=kind, media_type=media_type
        )

    def finish(self, status: str = "finished", error: str | None = None) -> StepPublic:
        return self._put(status=status, error=error)

    def __enter__(self) -> ActiveStep:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
            return
        try:
            self.finish("failed", error=_describe(exc))
        except Exception:  # the user's own error matters more than a failed update
            traceback.print_exc()
