"""The SDK's client, runs and steps.

import modelyard as my
client = my.Client()          # local data dir, my.Client("http://host:port") or MODELYARD_URI
with client.start_run(project="churn", name="gbm-3", params={"max_depth": 6}) as run:
    with run.step("train"):
        run.log_metrics({"loss": 0.3}, step=0)
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import mimetypes
import os
import random
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import orjson

from modelyard.floats import encode_float
from modelyard.limits import MAX_KEY, TERMINAL_STATUSES
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
from modelyard.sdk.spool import (
    ARTIFACT,
    BATCH,
    STEP,
    Pending,
    Spool,
    default_spool_dir,
    send_item,
    transient,
)
from modelyard.sdk.transport import (
    ModelyardAPIError,
    local_transport,
    remote_transport,
)

__all__ = [
    "ActiveRun",
    "ActiveStep",
    "Client",
    "MetricSeries",
    "ModelyardAPIError",
    "RefusedInBackground",
    "Terminated",
]


INT64_MAX = 2**63 - 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# Batches held in memory (waiting to be cut, and cut but not sent) before the logging call
# waits for the server or, while the server is away, spills them to the spool folder.
MAX_BUFFERED_BATCHES = 20
# While the server is away, attempts are this far apart at first, doubling up to the most.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
HEARTBEAT_TIMEOUT = 10.0  # seconds a heartbeat may take

log = logging.getLogger("modelyard")


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

    def __init__(
        self,
        uri: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        spool_dir: str | os.PathLike[str] | None = None,
        memory_batches: int = MAX_BUFFERED_BATCHES,
        retry_for: float | None = None,
        exit_timeout: float = 30.0,
        heartbeat_interval: float | None = 30.0,
        token: str | None = None,
    ) -> None:
        """When the server cannot be reached, runs keep what they log (metric batches,
        params, tags, step updates, artifacts): up to ``memory_batches`` batches in memory,
        the rest (and artifacts) in files under ``spool_dir`` (default
        ``MODELYARD_SPOOL_DIR``, else ``~/.modelyard/spool``), and try again with backoff for
        ``retry_for`` seconds (None: until the process ends). At the end of a run (or of the
        process) they spend at most ``exit_timeout`` seconds sending what is left; the rest
        stays in the spool folder for ``modelyard sync``. Runs tell the server they are alive
        every ``heartbeat_interval`` seconds (None: never).

        A server in team mode wants an API token: ``token``, else ``MODELYARD_TOKEN``, is sent
        with every request to a server (never to a data folder, which needs none)."""
        uri = uri or os.environ.get("MODELYARD_URI")
        if uri and uri.startswith(("http://", "https://")):
            token = token or os.environ.get("MODELYARD_TOKEN") or None
            self.transport = remote_transport(
                uri, timeout=timeout, retries=retries, token=token and token.strip()
            )
            self.uri = uri
        else:
            data_dir = uri or os.environ.get("MODELYARD_DATA_DIR") or "modelyard-data"
            data_dir = data_dir.removeprefix("file://")
            self.transport = local_transport(data_dir, retries=retries)
            self.uri = str(Path(data_dir).resolve())
        self.spool_dir = Path(spool_dir).expanduser() if spool_dir else default_spool_dir()
        self.memory_batches = memory_batches
        self.retry_for = retry_for
        self.exit_timeout = exit_timeout
        self.heartbeat_interval = heartbeat_interval
        self._active: set[ActiveRun] = set()

    # --- plumbing
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.transport.request(method, "/api/v1" + path, **kwargs)
        return None if resp.status_code == 204 or not resp.content else resp.json()

    def close(self) -> None:
        """Close the connection; runs still active send what they hold first (see
        ``exit_timeout``) and stop sending in the background, left running."""
        try:
            for run in list(self._active):
                run._let_go()
        finally:  # a refusal raised as a run lets go still closes (and frees) the transport
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
    every ``flush_interval`` seconds and whenever ``batch_size`` points are waiting.

    Params, tags, step updates and artifacts are sent at once while the server answers (so a
    mistake, such as a param logged again with another value, is raised where it is made),
    after whatever was logged before them. When the server cannot be reached, nothing is
    raised into the loop: they are queued with the metric batches, in the order logged (in
    memory, then in the client's spool folder), and sent again with backoff; see
    :class:`Client`. What the server refuses later is raised by the run's next call as
    :class:`RefusedInBackground`. A SIGTERM to the process ends the run as killed, like
    Ctrl-C."""

    def __init__(
        self, client: Client, info: RunPublic, *, batch_size: int, flush_interval: float
    ) -> None:
        self.client = client
        self.info = info
        self.id = info.run_id
        self.urn = info.urn
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._points: list[tuple[str, float, int, int]] = []  # key, value, step, timestamp
        self._limit = batch_size * max(client.memory_batches, 1)
        self.spool = Spool(
            client.spool_dir / info.run_id,
            memory=client.memory_batches,
            manifest={"run_id": info.run_id, "uri": client.uri},
        )
        self._buffer_lock = threading.Lock()
        self._drained = threading.Condition(self._buffer_lock)  # points left the buffer
        self._cut_lock = threading.RLock()  # items enter the spool in the order logged
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._error: BaseException | None = None
        self._ended = False
        self._outage_since: float | None = None  # monotonic time of the first failed attempt
        self._warned = False  # this outage was reported
        self._steps: dict[str, StepPublic] = {}  # as last known (or expected, in an outage)
        self._gave_up = False
        self._terminated = False
        self._heartbeat_interval = client.heartbeat_interval
        self._previous_sigterm: Any = None
        self._sigterm_installed = False
        self._install_sigterm()
        client._active.add(self)
        atexit.register(self._at_exit)
        self._flusher = threading.Thread(
            target=self._background, daemon=True, name=f"modelyard-run-{self.id[:8]}"
        )
        self._flusher.start()

    # --- params and tags: sent at once, so a conflicting param fails where it is logged
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: the same value again is a no-op, another value an error
        (a 409, raised here, or by the next call when the server was away)."""
        self._log_batch({"params": {k: str(v) for k, v in params.items()}})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._log_batch({"tags": dict(tags)})

    def set_tag(self, key: str, value: str) -> None:
        self.set_tags({key: value})

    def _log_batch(self, body: dict[str, Any]) -> None:
        """Params or tags as a batch of their own (after the metrics logged before them),
        under an idempotency key: sent again after a lost reply or an outage, it is a no-op."""
        item = Pending(uuid.uuid4().hex, BATCH, orjson.dumps(body))
        self._now_or_later(item, cut_all=True)

    def _now_or_later(
        self, item: Pending, *, cut_all: bool, merge: str | None = None
    ) -> httpx.Response | None:
        """Send ``item`` now, after what waits before it, while the server answers (the
        server's reply is returned, its refusal raised); else queue it (None)."""
        self._check()
        if self._ended:  # nothing sends in the background any more; the server says why not
            return send_item(self.client.transport, self.id, item)
        if self._outage_since is None and not self._gave_up:
            with self._send_lock:
                try:
                    self._send_all(full_only=not cut_all)
                    return send_item(self.client.transport, self.id, item)
                except BaseException as exc:
                    if not _transient(exc):
                        raise
                    self._unreachable(exc)
        with self._cut_lock:
            if cut_all:
                self._to_spool(full_only=False, allow_disk=True)
            self.spool.put(item.key, item.body, kind=item.kind, data=item.data, merge=merge)
        self._wake.set()
        return None

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
        self._check()
        # Checked here, where a mistake is made, rather than when a whole batch is refused.
        stamp = _now_ms() if timestamp is None else int(timestamp)
        step_no = 0 if step is None else int(step)
        if not 0 <= stamp <= INT64_MAX:
            raise ValueError(f"metric timestamps are milliseconds since the epoch, got {stamp}")
        if not -INT64_MAX <= step_no <= INT64_MAX:
            raise ValueError(f"metric steps are 64-bit integers, got {step_no}")
        points: list[tuple[str, float, int, int]] = []
        for key, value in metrics.items():
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
                raise ValueError(f"metric keys have 1 to {MAX_KEY} characters, got {key!r:.80}")
            points.append((key, float(value), step_no, stamp))
        with self._buffer_lock:
            self._points.extend(points)  # one call: a signal cannot leave half a point
            waiting = len(self._points)
        if waiting >= self._limit:
            self._make_room()
        elif waiting >= self.batch_size:
            self._wake.set()  # full batches go out from the background thread

    def _make_room(self) -> None:
        """The buffer is full. While the server answers, wait for it (it is slower than the
        loop); while it is away, move the points to the spool (on disk past its memory)."""
        if self._outage_since is None and self._flusher.is_alive():
            self._wake.set()
            with self._drained:
                while (
                    len(self._points) >= self._limit
                    and self._outage_since is None
                    and self._error is None
                    and self._flusher.is_alive()
                ):
                    self._drained.wait(0.1)
        if self._error is None and len(self._points) >= self._limit:
            self._to_spool(full_only=True, allow_disk=True)

    def _to_spool(self, *, full_only: bool, allow_disk: bool) -> None:
        """Cut buffered points into batches, each with a new idempotency key, and queue them:
        ``full_only`` keeps a last partial batch back; without ``allow_disk`` only as many as
        the spool holds in memory are cut."""
        bs = self.batch_size
        with self._cut_lock:
            with self._drained:
                take = len(self._points)
                if full_only:
                    take -= take % bs
                if not allow_disk:
                    take = min(take, self.spool.room() * bs)
                if take <= 0:
                    return
                taken = self._points[:take]
                del self._points[:take]
                self._drained.notify_all()
            for start in range(0, take, bs):
                chunk = taken[start : start + bs]
                keys, values, steps, stamps = zip(*chunk, strict=True)
                body = _json_batch(list(keys), list(values), list(steps), list(stamps))
                self.spool.put(uuid.uuid4().hex, body, len(chunk))

    def _send_all(self, *, full_only: bool, deadline: float | None = None, **kwargs: Any) -> None:
        """Send the spool's items, oldest first, cutting more batches from the buffer as
        room frees up. An item the server cannot be reached for stays (with its key) and the
        error is raised; one it refuses is dropped and the error raised."""
        while True:
            self._to_spool(full_only=full_only, allow_disk=False)
            first = self.spool.first()
            if first is None:
                return
            try:
                send_item(self.client.transport, self.id, first, deadline=deadline, **kwargs)
            except BaseException as exc:
                if _transient(exc):
                    self._unreachable(exc)
                elif isinstance(exc, ModelyardAPIError):
                    self.spool.ack(first.key)  # refused: the user's mistake, raised
                raise
            self.spool.ack(first.key)
            self._reachable()

    def _unreachable(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
        if not self._warned:  # once an outage: again when the server came back and went
            self._warned = True
            log.warning(
                "modelyard: cannot reach %s (%s); run %s keeps what it logs (up to %d batches "
                "in memory, then in %s) and sends it when the server is back",
                self.client.uri, _describe(exc), self.id, self.spool.memory, self.spool.folder,
            )  # fmt: skip

    def _reachable(self) -> None:
        if self._outage_since is not None:
            log.info("modelyard: %s answers again; run %s is sending", self.client.uri, self.id)
            self._outage_since = None
            self._warned = False

    def _background(self) -> None:
        """Sends batches (every ``flush_interval`` seconds, or when a batch is full), retries
        with backoff while the server is away, and sends heartbeats."""
        backoff = FIRST_BACKOFF
        next_try = 0.0
        next_beat = time.monotonic() + (self._heartbeat_interval or 0)
        while not self._stop.is_set():
            now = time.monotonic()
            wait = self.flush_interval if self._outage_since is None else next_try - now
            if self._heartbeat_interval:
                wait = min(wait, next_beat - now)
            woken = self._wake.wait(max(wait, 0.0))
            self._wake.clear()
            if self._stop.is_set():
                return  # end() sends what is left
            now = time.monotonic()
            if self._heartbeat_interval and now >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + (self._heartbeat_interval or 0)
            if self._outage_since is not None and now < next_try:
                self._to_spool(full_only=True, allow_disk=True)  # nothing piles up in memory
                continue
            try:
                with self._send_lock:
                    # Woken by a full batch: send full batches only. On the interval: all.
                    self._send_all(full_only=woken, retries=0)
                backoff = FIRST_BACKOFF
            except BaseException as exc:
                if not _transient(exc):
                    # Refused (and dropped): raised in the user's thread, by its next call;
                    # what comes after it is still sent.
                    self._error = self._error or exc
                    if isinstance(exc, ModelyardAPIError):
                        continue
                    return
                next_try = time.monotonic() + backoff * (0.5 + random.random())
                backoff = min(backoff * 2, MAX_BACKOFF)
                self._to_spool(full_only=True, allow_disk=True)
                since, retry_for = self._outage_since, self.client.retry_for
                if retry_for is not None and since is not None and now - since >= retry_for:
                    self._give_up()
                    return

    def _give_up(self) -> None:
        self._gave_up = True
        self._to_spool(full_only=False, allow_disk=True)
        self.spool.spill()
        log.warning(
            "modelyard: %s has not answered for %s s; run %s stops trying and keeps what it "
            "logs in %s; send it when the server is back with: modelyard sync %s",
            self.client.uri, self.client.retry_for, self.id, self.spool.folder,
            self.spool.folder,
        )  # fmt: skip

    def _heartbeat(self) -> None:
        """Tells the server the run is alive. Never raises: a failure to reach the server is
        an outage like any other, and a run the server says has ended (409) or does not know
        (404, or an older server without heartbeats) is not told again."""
        try:
            self.client.transport.request(
                "POST",
                f"/api/v1/runs/{self.id}/heartbeat",
                retries=0,
                timeout=min(HEARTBEAT_TIMEOUT, self.client.transport.http.timeout.read or 60),
            )
        except ModelyardAPIError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                self._heartbeat_interval = None
        except Exception:  # unreachable now, or the client was closed
            pass

    def _check(self) -> None:
        """Raise what the server refused in the background since the last call."""
        if self._error is not None:
            self._raise_background_error()

    def _raise_background_error(self) -> None:
        err, self._error = self._error, None
        if isinstance(err, ModelyardAPIError):
            raise RefusedInBackground(err) from err
        raise RuntimeError(f"sending in the background failed: {err}") from err

    def flush(self, *, full_batches_only: bool = False, timeout: float | None = None) -> bool:
        """Send every buffered point and queued item now, ``batch_size`` points a request;
        True once the server has them all.

        When the server cannot be reached, it keeps trying with backoff for ``timeout``
        seconds (None: the client's ``exit_timeout``), then returns False: nothing is lost,
        everything stays queued (each batch with its idempotency key, so one the server did
        apply is not stored twice) and is sent in the background when the server is back.
        Something the server refuses is dropped and the error raised.
        """
        self._check()
        deadline = time.monotonic() + (self.client.exit_timeout if timeout is None else timeout)
        backoff = FIRST_BACKOFF
        while True:
            if self._send_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
                try:
                    self._send_all(full_only=full_batches_only, deadline=deadline)
                    return True
                except BaseException as exc:
                    if not _transient(exc):
                        raise
                finally:
                    self._send_lock.release()
            pause = backoff * (0.5 + random.random())
            backoff = min(backoff * 2, MAX_BACKOFF)
            if time.monotonic() + pause >= deadline:
                return False
            time.sleep(pause)

    # --- steps, artifacts, lineage
    def step(self, name: str, depends_on: Sequence[str] = ()) -> ActiveStep:
        """A pipeline step; ``with run.step("train", depends_on=["featurize"]):``."""
        return ActiveStep(self, name, list(depends_on))

    def plan(self, steps: Mapping[str, Sequence[str]]) -> None:
        """Declare the pipeline up front (step -> the steps it depends on), all pending."""
        for name, deps in steps.items():
            self._put_step(name, {"depends_on": list(deps), "status": "pending"})

    def _put_step(self, name: str, body: dict[str, Any]) -> StepPublic:
        """Create or update a step; in an outage it is queued and the step is returned as
        it is expected to be. Progress updates queued one after another for the same step
        are sent as one (the latest); a status change is never merged away."""
        progress_only = body.get("status") is None and body.get("depends_on") is None
        known = self._steps.get(name)
        queued = self._outage_since is not None or self._gave_up  # it may replace another
        if progress_only and queued and body.get("message") is None and known is not None:
            body = {**body, "message": known.message}
        item = Pending(uuid.uuid4().hex, STEP, orjson.dumps({"name": name, "body": body}))
        merge = f"progress:{name}" if progress_only else None
        resp = self._now_or_later(item, cut_all=False, merge=merge)
        if resp is not None:
            step = StepPublic.model_validate(resp.json())
        else:
            step = self._expected_step(name, body)
        self._steps[name] = step
        return step

    def _urn_of(self, kind: str, name: str) -> str:
        """The URN of the run's step or artifact ``name`` (the server's are the run's, with
        its type and the name quoted after it)."""
        return self.urn.replace(":run:", f":{kind}:", 1) + ":" + quote(name, safe="")

    def _expected_step(self, name: str, body: dict[str, Any]) -> StepPublic:
        """The step as the server will have it once the update queued is sent."""
        now = _now_ms()
        current = self._steps.get(name) or StepPublic(
            run_id=self.id,
            urn=self._urn_of("step", name),
            name=name,
            position=len(self._steps),
            depends_on=list(dict.fromkeys(body.get("depends_on") or [])),
            status="pending",
            progress=None,
            message=None,
            start_time=None,
            end_time=None,
            error=None,
        )
        status = body.get("status") or current.status
        progress = body["progress"] if body.get("progress") is not None else current.progress
        return current.model_copy(
            update={
                "status": status,
                "progress": 1.0 if status == "finished" else progress,
                "message": body["message"] if body.get("message") is not None else current.message,
                "error": body["error"] if body.get("error") is not None else current.error,
                "start_time": current.start_time
                or (None if status in ("pending", "skipped") else now),
                "end_time": current.end_time or (now if status in TERMINAL_STATUSES else None),
            }
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
        """Upload a file as the run's artifact (made by ``step``). When the server cannot be
        reached, a copy is kept in the spool folder and uploaded when it is back (or by
        ``modelyard sync``); what is returned then is the artifact as it will be."""
        source = Path(local_path)
        size = source.stat().st_size  # a missing file is the caller's mistake: raised here
        path = artifact_path or source.name
        meta = {"path": path, "step": step, "kind": kind, "media_type": media_type}
        item = Pending(uuid.uuid4().hex, ARTIFACT, orjson.dumps(meta), source)
        resp = self._now_or_later(item, cut_all=False)
        if resp is not None:
            return ArtifactPublic.model_validate(resp.json())
        with source.open("rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        return ArtifactPublic(
            run_id=self.id,
            urn=self._urn_of("artifact", path),
            path=path,
            step=step,
            size=size,
            sha256=sha256,
            media_type=media_type or mimetypes.guess_type(path)[0] or "application/octet-stream",
            kind=kind,
            created_at=_now_ms(),
        )

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

    def register_model(
        self, model: str, description: str = "", *, source: str | None = None
    ) -> ModelVersion:
        """Register this run's model as the next version of ``model``; ``source`` names the
        run's artifact that is the model (e.g. "model.pkl"), which must be logged first."""
        return models.register(self.client, self.id, model, description, source=source)

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
        (another process may carry on with it). What cannot be sent within the client's
        ``exit_timeout`` is kept in the spool folder for ``modelyard sync``."""
        self._check()
        self._let_go()

    def _stop_background(self, deadline: float | None) -> None:
        self._stop.set()
        self._wake.set()
        if self._flusher is not threading.current_thread():
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            self._flusher.join(left)

    def _send_before_exit(self, deadline: float) -> bool:
        """Send what is left within ``deadline``; what cannot be sent is written to the
        spool folder. True when the server has everything. An item the server refuses does
        not stop the others: the first refusal is raised once they are sent."""
        refused: ModelyardAPIError | None = None
        try:
            if not self._gave_up and self._send_lock.acquire(
                timeout=max(deadline - time.monotonic(), 0.0)
            ):
                try:
                    while True:
                        try:
                            self._send_all(full_only=False, deadline=deadline)
                        except ModelyardAPIError as exc:
                            if _transient(exc):
                                break
                            refused = refused or exc
                        else:
                            return True
                except httpx.TransportError:
                    pass
                finally:
                    self._send_lock.release()
            return False
        finally:
            self._to_spool(full_only=False, allow_disk=True)  # a no-op when all was sent
            self.spool.spill()
            if refused is not None:
                raise refused

    def _tell_where(self, end: str | None = None) -> None:
        items, _ = self.spool.pending()
        what = self.spool.summary()
        if end is not None:
            what = f"{what} and its end ({end})" if items else f"its end ({end})"
        problem = ""
        if self.spool.disk_error is not None:
            problem = f" ({self.spool.on_disk} of them; the others could not be written: "
            problem += f"{self.spool.disk_error}, and are lost when the process ends)"
        log.warning(
            "modelyard: %s could not be reached; %s of run %s are kept in %s%s. Send them "
            "when the server is back with: modelyard sync %s",
            self.client.uri, what, self.id, self.spool.folder, problem, self.spool.folder,
        )  # fmt: skip

    def end(self, status: str = "finished", error: str | None = None) -> RunPublic:
        """End the run. When the server cannot be reached, what is left and the end are kept
        in the spool folder (the log says where and what to run) and the run is returned as
        last known. It takes at most the client's ``exit_timeout``."""
        if self._ended:
            return self.client.get_run(self.id)
        if self._terminated and status == "finished":
            status, error = "killed", "the process received SIGTERM"
        deadline = time.monotonic() + self.client.exit_timeout
        self._stop_background(deadline)
        sent = False
        try:
            background = self._error
            sent = self._send_before_exit(deadline)
            if background is not None:
                self._raise_background_error()
        except BaseException as exc:
            # Metrics were lost: the run did not finish as logged.
            if status == "finished":
                status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
                error = f"metrics could not be sent: {_describe(exc)}"
            sent = not self.spool.pending()[0] and not self._points
            raise
        finally:
            self._ended = True
            self._release()
            info = self._record_end(status, error, sent, deadline)
        return info

    def _record_end(self, status: str, error: str | None, sent: bool, deadline: float) -> RunPublic:
        """PATCH the run's end, or keep it in the spool for `modelyard sync` (after the
        batches still there, which a run no longer running would refuse)."""
        if sent:
            try:
                return RunPublic.model_validate(
                    self.client.transport.request(
                        "PATCH",
                        f"/api/v1/runs/{self.id}",
                        json={"status": status, "error": error},
                        deadline=deadline,
                    ).json()
                )
            except BaseException as exc:
                if not _transient(exc):
                    raise
        self.spool.write_end(status, error)
        self._tell_where(end=status)
        return self.info

    def _at_exit(self) -> None:
        """At interpreter exit, a run not ended sends (or spools) what it holds; one that
        received SIGTERM ends as killed."""
        if self._ended:
            return
        try:
            if self._terminated:
                self.end("killed", "the process received SIGTERM")
            else:
                self._let_go()
        except Exception:  # nothing can be raised to anyone at exit
            traceback.print_exc()

    def _let_go(self) -> None:
        """Stop the background thread and send or spool what is held; the run stays running."""
        if self._ended:
            return
        deadline = time.monotonic() + self.client.exit_timeout
        self._stop_background(deadline)
        self._ended = True
        self._release()
        if not self._send_before_exit(deadline):
            self._tell_where()

    def _release(self) -> None:
        """Undo what the run set up in the process: its SIGTERM handler and exit hook."""
        self.client._active.discard(self)
        atexit.unregister(self._at_exit)
        if not self._sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._sigterm_installed = False

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            self._previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except (ValueError, OSError):  # not possible here (an embedded interpreter)
            return
        self._sigterm_installed = True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """A SIGTERM ends the run as killed. A handler that was there before is called
        (it may stop the loop its own way); otherwise the process exits as it would have,
        through the run's ``with`` (or the exit hook), which records it as killed."""
        previous = self._previous_sigterm
        if previous == signal.SIG_IGN:
            return
        self._terminated = True
        if callable(previous):
            previous(signum, frame)
            return
        raise Terminated(128 + signum)

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
        killed = isinstance(exc, KeyboardInterrupt) or self._terminated
        try:
            if isinstance(exc, Terminated):
                self.end("killed", error="the process received SIGTERM")
            else:
                self.end("killed" if killed else "failed", error=_describe(exc))
        except Exception:  # the user's own error matters more than a failed flush
            traceback.print_exc()


class RefusedInBackground(ModelyardAPIError, RuntimeError):
    """The server refused something a run sent in the background (a metric batch, a param
    logged again with another value, a step update, an artifact): raised by the run's next
    call, or when it ends. ``status``, ``code`` and ``message`` are the server's."""

    def __init__(self, err: ModelyardAPIError) -> None:
        super().__init__(err.status, err.code, err.message, err.details, retried=err.retried)
        self.args = (f"sending in the background failed: {err}",)


class Terminated(SystemExit):
    """Raised in the main thread by a run's SIGTERM handler: the process exits (status
    128 + 15) after the run was ended as killed."""


def _transient(exc: BaseException) -> bool:
    return transient(exc)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:20_000]


class ActiveStep:
    """A pipeline step: running while inside ``with``, then finished or failed."""

    def __init__(self, run: ActiveRun, name: str, depends_on: list[str]) -> None:
        self.run = run
        self.name = name
        self.depends_on = depends_on

    def _put(self, **body: Any) -> StepPublic:
        """Idempotent PUTs: never raised for an outage (queued, see :class:`ActiveRun`)."""
        return self.run._put_step(self.name, body)

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
