"""Metric batches waiting for the server, oldest first: a bounded number in memory, the rest in
files of a spool folder (one per run), each with the Idempotency-Key it was first sent with, so
sending it again, now or later with ``modelyard sync``, stores it exactly once.

A run's folder holds ``run.json`` (the run and the server to send to), one
``<stamp>-<counter>-<key>.batch`` file per batch (its JSON body as sent) and, when the run
ended while the server was away, ``end.json`` (the status to record once the batches are in).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from modelyard.sdk.transport import ModelyardAPIError

if TYPE_CHECKING:
    from modelyard.sdk.client import Client

SPOOL_ENV = "MODELYARD_SPOOL_DIR"
MANIFEST = "run.json"
END = "end.json"
SUFFIX = ".batch"
REFUSED = ".refused"


def default_spool_dir() -> Path:
    """``MODELYARD_SPOOL_DIR``, else ``~/.modelyard/spool``."""
    given = os.environ.get(SPOOL_ENV)
    return Path(given).expanduser() if given else Path.home() / ".modelyard" / "spool"


def transient(exc: BaseException) -> bool:
    """Whether sending may work later: the server was unreachable or briefly failing."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ModelyardAPIError) and (exc.status >= 500 or exc.status == 429)


@dataclass
class _Batch:
    key: str
    points: int
    body: bytes | None = None  # None once it is in a file
    path: Path | None = None


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Spool:
    """The batches of one run not yet acknowledged, in the order they were cut. At most
    ``memory`` of them are held in memory; the others are written to ``folder``."""

    def __init__(self, folder: Path, *, memory: int, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.memory = max(memory, 0)
        self._manifest = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        self._batches: deque[_Batch] = deque()
        self._in_memory = 0
        self._on_disk = 0
        self._lock = threading.Lock()
        self._stamp = time.time_ns()
        self._counter = itertools.count()
        self.disk_error: OSError | None = None  # the last write that failed (kept in memory)

    # --- state
    def room(self) -> int:
        """How many more batches fit in memory."""
        return max(self.memory - self._in_memory, 0)

    def pending(self) -> tuple[int, int]:
        """Batches and points waiting."""
        with self._lock:
            return len(self._batches), sum(b.points for b in self._batches)

    @property
    def on_disk(self) -> int:
        return self._on_disk

    def __len__(self) -> int:
        return len(self._batches)

    # --- adding, sending, acknowledging
    def put(self, key: str, body: bytes, points: int) -> None:
        with self._lock:
            batch = _Batch(key, points, body)
            if self._in_memory >= self.memory:
                self._to_disk(batch)
            if batch.body is not None:
                self._in_memory += 1
            self._batches.append(batch)

    def first(self) -> tuple[str, bytes] | None:
        """The oldest batch waiting (its key and body), or None."""
        with self._lock:
            while self._batches:
                batch = self._batches[0]
                if batch.body is not None:
                    return batch.key, batch.body
                assert batch.path is not None
                try:
                    return batch.key, batch.path.read_bytes()
                except FileNotFoundError:  # sent meanwhile by `modelyard sync`
                    self._batches.popleft()
                    self._on_disk -= 1
            return None

    def ack(self, key: str) -> None:
        """The server has the batch under ``key``: forget it (and delete its file)."""
        with self._lock:
            for i, batch in enumerate(self._batches):
                if batch.key == key:
                    del self._batches[i]
                    break
            else:
                return
            if batch.path is None:
                self._in_memory -= 1
                return
            batch.path.unlink(missing_ok=True)
            self._on_disk -= 1
            if self._on_disk == 0:
                self._tidy()

    def spill(self) -> None:
        """Write every batch held in memory to the folder (the process is about to end)."""
        with self._lock:
            for batch in self._batches:
                if batch.body is not None:
                    self._to_disk(batch)
                    if batch.body is None:
                        self._in_memory -= 1

    def write_end(self, status: str, error: str | None) -> None:
        """Record how the run ended, for ``modelyard sync`` to send after the batches."""
        with self._lock:
            self._prepare()
            _write_atomically(self.folder / END, orjson.dumps({"status": status, "error": error}))

    # --- files
    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            _write_atomically(manifest, self._manifest)

    def _to_disk(self, batch: _Batch) -> None:
        """Move ``batch`` into a file; on a failed write it stays in memory (and the error
        is kept to be reported)."""
        assert batch.body is not None
        name = f"{self._stamp:020d}-{next(self._counter):09d}-{batch.key}{SUFFIX}"
        path = self.folder / name
        for attempt in range(2):
            try:
                self._prepare()
                _write_atomically(path, batch.body)
            except FileNotFoundError as exc:  # the folder was tidied away meanwhile
                if attempt:
                    self.disk_error = exc
                    return
            except OSError as exc:  # full disk, no permission: better in memory than lost
                self.disk_error = exc
                return
            else:
                break
        batch.body, batch.path = None, path
        self._on_disk += 1

    def _tidy(self) -> None:
        """Remove the folder once nothing but its manifest is left in it."""
        try:
            if {p.name for p in self.folder.iterdir()} == {MANIFEST}:
                (self.folder / MANIFEST).unlink()
                self.folder.rmdir()
        except OSError:
            pass  # another process is writing to it, or it is gone already


# --- sending spooled batches later


@dataclass
class SyncReport:
    """What ``sync`` did with one run's folder."""

    folder: Path
    run_id: str = ""
    uri: str = ""
    sent_batches: int = 0
    sent_points: int = 0
    left_batches: int = 0
    refused: list[str] = field(default_factory=list)  # "<file>: <error>"
    ended: str | None = None  # the status recorded
    problem: str | None = None  # why it stopped early (the server is unreachable)

    @property
    def done(self) -> bool:
        return self.left_batches == 0 and not self.refused and self.problem is None


def run_folders(folder: Path) -> list[Path]:
    """``folder`` itself when it is a run's spool folder, else the run folders in it."""
    if (folder / MANIFEST).is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())


def _batch_files(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.glob("*" + SUFFIX))


def _points_in(body: bytes) -> int:
    try:
        return len(orjson.loads(body)["columns"]["key"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0


def sync_folder(
    folder: Path, *, uri: str | None = None, client: Callable[[str], Client] | None = None
) -> SyncReport:
    """Send one run's spooled batches, oldest first, each under its own Idempotency-Key
    (a batch the server already has is a no-op), deleting each file the server
    acknowledged; then record the run's end if it was spooled. Stops at the first batch the
    server cannot be reached for; a batch it refuses is renamed ``*.refused`` and kept."""
    from modelyard.sdk.client import Client

    report = SyncReport(folder=folder)
    manifest = orjson.loads((folder / MANIFEST).read_bytes())
    report.run_id = str(manifest["run_id"])
    report.uri = uri or str(manifest["uri"])
    make = client or (lambda target: Client(target, retries=2, heartbeat_interval=None))
    files = list(_batch_files(folder))
    with make(report.uri) as api:
        for n, path in enumerate(files):
            key = path.name.removesuffix(SUFFIX).rsplit("-", 1)[-1]
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue  # sent meanwhile by its own process
            try:
                api.transport.request(
                    "POST",
                    f"/api/v1/runs/{report.run_id}/batch",
                    content=body,
                    headers={"Idempotency-Key": key, "Content-Type": "application/json"},
                )
            except Exception as exc:
                if not transient(exc):
                    report.refused.append(f"{path.name}{REFUSED}: {exc}")
                    path.rename(path.with_name(path.name + REFUSED))
                    continue
                report.problem = f"cannot reach {report.uri}: {exc}"
                report.left_batches = len(files) - n
                return report
            path.unlink(missing_ok=True)
            report.sent_batches += 1
            report.sent_points += _points_in(body)
        end = folder / END
        if end.is_file() and not report.refused:
            status = orjson.loads(end.read_bytes())
            try:
                api.transport.request(
                    "PATCH", f"/api/v1/runs/{report.run_id}", json=status
                ).raise_for_status()
            except ModelyardAPIError as exc:
                if transient(exc) or exc.status != 409:
                    report.problem = f"could not record the run's end: {exc}"
                    return report
                report.ended = f"not {status['status']}: {exc.message}"  # it ended meanwhile
            except httpx.TransportError as exc:
                report.problem = f"cannot reach {report.uri}: {exc}"
                return report
            else:
                report.ended = str(status["status"])
            end.unlink()
    if {p.name for p in folder.iterdir()} == {MANIFEST}:
        (folder / MANIFEST).unlink()
        folder.rmdir()
    return report
