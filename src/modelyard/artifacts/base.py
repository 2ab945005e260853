"""What every artifact store does, the one check of artifact paths, and the choice of store.

A store keeps each run's files under the run's own prefix. An upload is *staged* (streamed
somewhere invisible while its size is limited and its SHA-256 computed), then *published*
at its path inside the transaction that records it, before that transaction commits; when
the commit fails the service *discards* it with ``withdraw=True``, which removes what was
published. So no artifact row ever points at content that was never written.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from modelyard.errors import InvalidInput
from modelyard.limits import MAX_ARTIFACT_PATH, MAX_PATH_PART_BYTES

if TYPE_CHECKING:
    from modelyard.settings import Settings

DOWNLOAD_CHUNK = 1024 * 1024
# Percent-encodings that decode to a separator or NUL: a path holding one is refused, since
# some layer (a proxy, a client, the object store's console) may decode it.
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|00)", re.IGNORECASE)


def _decoded(path: str) -> str:
    """``path`` percent-decoded until it stops changing (double encoding included)."""
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    return path


def clean_artifact_path(path: str) -> str:
    """A relative POSIX path with no '..', '.', empty or absolute parts, backslashes, NUL or
    percent-encodings of those; refused with a 400 otherwise."""
    if not path or len(path) > MAX_ARTIFACT_PATH:
        raise InvalidInput(f"artifact paths have 1 to {MAX_ARTIFACT_PATH} characters")
    if "\x00" in path or "\\" in path:
        raise InvalidInput("artifact paths may not contain NUL bytes or backslashes")
    decoded = _decoded(path)
    if (
        _ENCODED_SEPARATOR.search(path)
        or decoded.count("/") != path.count("/")  # a slash encoded more than once
        or "\x00" in decoded
        or "\\" in decoded
    ):
        raise InvalidInput(
            f"artifact path {path!r} may not contain percent-encoded slashes, backslashes or NUL"
        )
    if (
        path.startswith("/")
        or PurePosixPath(path).is_absolute()
        or (len(path) > 1 and path[1] == ":")
    ):
        raise InvalidInput(f"artifact path {path!r} must be relative")
    for parts in (path.split("/"), decoded.split("/")):
        if any(p in ("", ".", "..") for p in parts):
            raise InvalidInput(f"artifact path {path!r} may not contain '..', '.' or empty parts")
    longest = max(len(p.encode()) for p in path.split("/"))
    if longest > MAX_PATH_PART_BYTES:
        raise InvalidInput(
            f"each part of an artifact path is at most {MAX_PATH_PART_BYTES} bytes in UTF-8 "
            f"(a file name's limit); one part of {path[:40]!r}... has {longest}"
        )
    return path


def clean_run_id(run_id: str) -> str:
    """A run id used as a folder or key prefix: one plain path part."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise InvalidInput(f"{run_id!r} is not a run id")
    return run_id


@dataclass
class Staged:
    """An upload held where no reader sees it yet, with what it was found to be.

    ``handle`` is the store's own note of where the content waits; ``published`` what
    publishing wrote (so a withdrawal removes that and nothing newer)."""

    size: int
    sha256: str
    handle: Any
    published: Any = None


def write_temp_file(folder: Path, write: Callable[[Path], None]) -> tuple[Path, int, str]:
    """A file the server writes itself (``write`` gets its path) in a temporary file under
    ``folder``: its path, size and SHA-256; nothing is left behind when ``write`` fails."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder)
    os.close(fd)
    temp = Path(name)
    try:
        write(temp)
        digest = hashlib.sha256()
        with temp.open("rb") as f:
            for chunk in iter(lambda: f.read(DOWNLOAD_CHUNK), b""):
                digest.update(chunk)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp, temp.stat().st_size, digest.hexdigest()


def sweep_old_files(folder: Path, older_than_s: float, *, prefix: str = "") -> int:
    """Remove the files of ``folder`` (whose names start with ``prefix``) not written to for
    ``older_than_s`` seconds: temporary files a killed server left. Returns how many."""
    cutoff = time.time() - older_than_s
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if (
                entry.name.startswith(prefix)
                and entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime < cutoff
            ):
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # finished or removed meanwhile
            continue
    return removed


class ArtifactStore(Protocol):
    """Where artifact contents live. ``description`` names the store in error messages."""

    @property
    def description(self) -> str: ...

    async def stage(
        self, run_id: str, path: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> Staged:
        """Stream an upload meant for ``path`` of the run, hashing it and refusing it with a
        413 past ``max_bytes``; nothing is visible until :meth:`publish`."""
        ...

    def stage_written(self, write: Callable[[Path], None]) -> Staged:
        """Stage a file the server writes itself (``write`` gets a local temporary path)."""
        ...

    def publish(self, staged: Staged, run_id: str, path: str) -> None:
        """Make staged content the run's artifact ``path``; a second call does nothing."""
        ...

    def discard(self, staged: Staged, *, withdraw: bool = False) -> None:
        """Drop what is left of an upload; with ``withdraw`` (its transaction failed) also
        remove what :meth:`publish` wrote, unless something newer replaced it. Never raises
        for store trouble: it runs while another error is on its way."""
        ...

    def size(self, run_id: str, path: str) -> int:
        """The stored size in bytes; NotFound when there is no content."""
        ...

    def open_range(self, run_id: str, path: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (fewer at the end of the file)."""
        ...

    def open_stream(
        self,
        run_id: str,
        path: str,
        *,
        start: int = 0,
        length: int | None = None,
        chunk_size: int = DOWNLOAD_CHUNK,
    ) -> Iterator[bytes]:
        """The content in chunks (``length`` bytes from ``start``, or to the end). The store
        is asked before this returns, so a missing file or an unreachable store raises here,
        not halfway through a response."""
        ...

    def local_copy(self, run_id: str, path: str) -> Path:
        """A local file with the content (the file itself, or a cached download), for
        readers that need one, such as memory-mapped evaluation tables."""
        ...

    def presigned_url(self, run_id: str, path: str, *, media_type: str) -> str | None:
        """A short-lived URL the client can download from directly; None if the store has
        no such thing (the local folder)."""
        ...

    def sweep_incomplete(self, older_than_s: float) -> int:
        """Remove what uploads cut short left behind (a server killed mid-upload): staged
        temporary files, and unfinished multipart uploads on S3, with no activity for
        ``older_than_s`` seconds; an upload still under way is never touched. Returns how
        many were removed."""
        ...


def make_artifact_store(settings: Settings) -> ArtifactStore:
    """The store MODELYARD_ARTIFACT_ROOT names: ``s3://bucket/prefix`` or a local folder."""
    if settings.artifact_root_is_s3:
        from modelyard.artifacts.s3 import S3ArtifactStore  # boto3 only when asked for

        return S3ArtifactStore.from_settings(settings)
    from modelyard.artifacts.local import LocalArtifactStore

    return LocalArtifactStore(settings.resolved_artifact_root)


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over a store's ranged reads."""

    def __init__(self, store: ArtifactStore, run_id: str, path: str, size: int) -> None:
        self._store, self._run_id, self._path, self._size = store, run_id, path, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = self._store.open_range(self._run_id, self._path, self._pos, want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_artifact(
    store: ArtifactStore,
    run_id: str,
    path: str,
    *,
    size: int | None = None,
    buffer_size: int = DOWNLOAD_CHUNK,
) -> io.BufferedReader:
    """A seekable binary file reading the artifact through ranged reads (for readers such
    as pyarrow's that take a file object); each buffer refill is one read of the store.
    ``size``, when the caller knows it, saves asking the store."""
    size = store.size(run_id, path) if size is None else size
    raw = _RangeFile(store, run_id, path, size)
    return io.BufferedReader(raw, buffer_size=buffer_size)
