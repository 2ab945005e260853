"""What a run could not send yet, oldest first: metric batches (with params and tags), step
updates and artifacts. A bounded number of batches is held in memory, the rest in files of a
spool folder (one per run); each batch keeps the Idempotency-Key it was first sent with, so
sending it again, now or later with ``modelyard sync``, stores it exactly once. Step updates
are idempotent PUTs, and an artifact sent again with the same content is a no-op.

A run's folder holds ``run.json`` (the run and the server to send to), one
``<stamp>-<counter>-<key>.<kind>`` file per item in the order they were logged: ``.batch``
(the batch's JSON body as sent), ``.step`` (the step's name and update) or ``.artifact`` (its
path, step, kind and media type; the content is in the ``.data`` file of the same name) and,
when the run ended while the server was away, ``end.json`` (the status to record last).
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from modelyard.sdk.transport import ModelyardAPIError, Transport

if TYPE_CHECKING:
    from modelyard.sdk.client import Client

SPOOL_ENV = "MODELYARD_SPOOL_DIR"
MANIFEST = "run.json"
END = "end.json"
BATCH, STEP, ARTIFACT = "batch", "step", "artifact"
KINDS = (BATCH, STEP, ARTIFACT)
SUFFIX = ".batch"
DATA = ".data"
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


@dataclass(frozen=True)
class Pending:
    """An item waiting to be sent: its key, kind, body and (an artifact's) content file."""

    key: str
    kind: str
    body: bytes
    data: Path | None = None


def send_item(transport: Transport, run_id: str, item: Pending, **kwargs: Any) -> httpx.Response:
    """Send one item to the server, as the SDK would have when it was logged."""
    if item.kind == BATCH:
        return transport.request(
            "POST",
            f"/api/v1/runs/{run_id}/batch",
            content=item.body,
            headers={"Idempotency-Key": item.key, "Content-Type": "application/json"},
            **kwargs,
        )
    meta = orjson.loads(item.body)
    if item.kind == STEP:
        return transport.request(
            "PUT", f"/api/v1/runs/{run_id}/steps/{meta['name']}", json=meta["body"], **kwargs
        )
    if item.kind != ARTIFACT or item.data is None:
        raise ValueError(f"cannot send a spooled {item.kind!r}")
    params = {k: meta[k] for k in ("step", "kind") if meta.get(k) is not None}
    headers = {"Content-Type": meta["media_type"]} if meta.get("media_type") else {}
    return transport.request(
        "PUT",
        f"/api/v1/runs/{run_id}/artifacts/{meta['path']}",
        params=params,
        headers=headers,
        content_factory=item.data.read_bytes,
        **kwargs,
    )


@dataclass
class _Item:
    key: str
    kind: str
    points: int
    body: bytes | None  # None once it is in a file
    number: int = 0  # its place in the queue, kept in its file's name (they sort that way)
    path: Path | None = None
    data: Path | None = None  # an artifact's content: its copy here, else the file logged
    merge: str | None = None  # a later item with the same tag may replace it (progress)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Spool:
    """The items of one run not yet acknowledged, in the order they were logged. At most
    ``memory`` of them are held in memory; the others (and every artifact) are written to
    ``folder``."""

    def __init__(self, folder: Path, *, memory: int, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.memory = max(memory, 0)
        self._manifest = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        self._items: deque[_Item] = deque()
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
        """Items and metric points waiting."""
        with self._lock:
            return len(self._items), sum(b.points for b in self._items)

    def summary(self) -> str:
        """What is waiting, in words: "3 batches (300 points), 2 step updates"."""
        with self._lock:
            counts = {kind: sum(1 for i in self._items if i.kind == kind) for kind in KINDS}
            points = sum(i.points for i in self._items)
        return describe(counts[BATCH], points, counts[STEP], counts[ARTIFACT])

    @property
    def on_disk(self) -> int:
        return self._on_disk

    def __len__(self) -> int:
        return len(self._items)

    # --- adding, sending, acknowledging
    def put(
        self,
        key: str,
        body: bytes,
        points: int = 0,
        *,
        kind: str = BATCH,
        data: Path | None = None,
        merge: str | None = None,
    ) -> None:
        """Queue an item. An artifact's ``data`` is copied into the folder at once (the file
        logged may change or go); an item with a ``merge`` tag replaces the last one queued
        when it has the same tag and is not the one being sent."""
        with self._lock:
            if merge is not None and len(self._items) > 1 and self._items[-1].merge == merge:
                self._forget(self._items.pop())
            item = _Item(key, kind, points, body, next(self._counter), data=data, merge=merge)
            if data is not None or self._in_memory >= self.memory:
                self._to_disk(item)
            if item.body is not None:
                self._in_memory += 1
            self._items.append(item)

    def first(self) -> Pending | None:
        """The oldest item waiting, or None."""
        with self._lock:
            while self._items:
                item = self._items[0]
                if item.body is not None:
                    return Pending(item.key, item.kind, item.body, item.data)
                assert item.path is not None
                try:
                    return Pending(item.key, item.kind, item.path.read_bytes(), item.data)
                except FileNotFoundError:  # sent meanwhile by `modelyard sync`
                    self._items.popleft()
                    self._on_disk -= 1
            return None

    def ack(self, key: str) -> None:
        """The server has the item under ``key``: forget it (and delete its files)."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item.key == key:
                    del self._items[i]
                    break
            else:
                return
            self._forget(item)
            if self._on_disk == 0:
                self._tidy()

    def spill(self) -> None:
        """Write every item held in memory to the folder (the process is about to end)."""
        with self._lock:
            for item in self._items:
                if item.body is not None:
                    self._to_disk(item)
                    if item.body is None:
                        self._in_memory -= 1

    def write_end(self, status: str, error: str | None) -> None:
        """Record how the run ended, for ``modelyard sync`` to send after the rest."""
        with self._lock:
            self._prepare()
            _write_atomically(self.folder / END, orjson.dumps({"status": status, "error": error}))

    # --- files
    def _forget(self, item: _Item) -> None:
        if item.path is None:
            self._in_memory -= 1
            return
        item.path.unlink(missing_ok=True)
        if item.data is not None and item.data.parent == self.folder:
            item.data.unlink(missing_ok=True)
        self._on_disk -= 1

    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            _write_atomically(manifest, self._manifest)

    def _to_disk(self, item: _Item) -> None:
        """Move ``item`` into a file (an artifact's content into a second one); on a failed
        write it stays in memory (and the error is kept to be reported)."""
        assert item.body is not None
        name = f"{self._stamp:020d}-{item.number:09d}-{item.key}.{item.kind}"
        path = self.folder / name
        copy = path.with_suffix(DATA) if item.data is not None else None
        for attempt in range(2):
            try:
                self._prepare()
                if copy is not None and item.data is not None and item.data != copy:
                    # A copy, not a hard link: a file rewritten in place would change its link.
                    tmp = copy.with_name(copy.name + ".tmp")
                    shutil.copyfile(item.data, tmp)
                    os.replace(tmp, copy)
                    item.data = copy
                _write_atomically(path, item.body)
            except FileNotFoundError as exc:  # the folder was tidied away meanwhile
                if attempt or (item.data is not None and not item.data.exists()):
                    self.disk_error = exc
                    return
            except OSError as exc:  # full disk, no permission: better in memory than lost
                self.disk_error = exc
                return
            else:
                break
        item.body, item.path = None, path
        self._on_disk += 1

    def _tidy(self) -> None:
        """Remove the folder once nothing but its manifest is left in it."""
        try:
            if {p.name for p in self.folder.iterdir()} == {MANIFEST}:
                (self.folder / MANIFEST).unlink()
                self.folder.rmdir()
        except OSError:
            pass  # another process is writing to it, or it is gone already


def describe(batches: int, points: int, steps: int = 0, artifacts: int = 0) -> str:
    """What was sent or is waiting, in words: "3 batches (300 points) and 2 step updates"."""
    parts = [f"{batches} batches ({points} points)"] if batches or not (steps or artifacts) else []
    if steps:
        parts.append(f"{steps} step update{'s' if steps != 1 else ''}")
    if artifacts:
        parts.append(f"{artifacts} artifact{'s' if artifacts != 1 else ''}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- sending spooled batches later


@dataclass
class SyncReport:
    """What ``sync`` did with one run's folder."""

    folder: Path
    run_id: str = ""
    uri: str = ""
    sent_batches: int = 0
    sent_points: int = 0
    sent_steps: int = 0
    sent_artifacts: int = 0
    left: int = 0  # items not sent (the server could not be reached)
    refused: list[str] = field(default_factory=list)  # "<file>: <error>"
    ended: str | None = None  # the status recorded
    problem: str | None = None  # why it stopped early (the server is unreachable)

    @property
    def done(self) -> bool:
        return self.left == 0 and not self.refused and self.problem is None

    @property
    def sent(self) -> str:
        return describe(self.sent_batches, self.sent_points, self.sent_steps, self.sent_artifacts)


def run_folders(folder: Path) -> list[Path]:
    """``folder`` itself when it is a run's spool folder, else the run folders in it."""
    if (folder / MANIFEST).is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())


def _item_files(folder: Path) -> Iterator[Path]:
    """The folder's items in the order they were logged (their names sort that way)."""
    yield from sorted(p for p in folder.iterdir() if p.suffix.removeprefix(".") in KINDS)


def _points_in(body: bytes) -> int:
    try:
        return len(orjson.loads(body)["columns"]["key"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0


def sync_folder(
    folder: Path, *, uri: str | None = None, client: Callable[[str], Client] | None = None
) -> SyncReport:
    """Send one run's spooled items in the order they were logged: batches each under its
    own Idempotency-Key (a batch the server already has is a no-op), step updates (PUTs) and
    artifacts (the same content again is a no-op), deleting each file the server
    acknowledged; then record the run's end if it was spooled. Stops at the first item the
    server cannot be reached for; one it refuses is renamed ``*.refused`` and kept."""
    from modelyard.sdk.client import Client

    report = SyncReport(folder=folder)
    manifest = orjson.loads((folder / MANIFEST).read_bytes())
    report.run_id = str(manifest["run_id"])
    report.uri = uri or str(manifest["uri"])
    make = client or (lambda target: Client(target, retries=2, heartbeat_interval=None))
    files = list(_item_files(folder))
    with make(report.uri) as api:
        for n, path in enumerate(files):
            kind = path.suffix.removeprefix(".")
            key = path.stem.rsplit("-", 1)[-1]
            data = path.with_suffix(DATA) if kind == ARTIFACT else None
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue  # sent meanwhile by its own process
            try:
                send_item(api.transport, report.run_id, Pending(key, kind, body, data))
            except Exception as exc:
                if not transient(exc):
                    report.refused.append(f"{path.name}{REFUSED}: {exc}")
                    path.rename(path.with_name(path.name + REFUSED))
                    continue
                report.problem = f"cannot reach {report.uri}: {exc}"
                report.left = len(files) - n
                return report
            path.unlink(missing_ok=True)
            if data is not None:
                data.unlink(missing_ok=True)
            if kind == BATCH:
                report.sent_batches += 1
                report.sent_points += _points_in(body)
            elif kind == STEP:
                report.sent_steps += 1
            else:
                report.sent_artifacts += 1
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
