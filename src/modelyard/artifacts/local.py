"""Artifacts on a local folder, confined to their root: ``<root>/<run id>/<path>``."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from modelyard.artifacts.base import (
    DOWNLOAD_CHUNK,
    Staged,
    clean_artifact_path,
    clean_run_id,
    sweep_old_files,
    write_temp_file,
)
from modelyard.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge

log = logging.getLogger("modelyard.artifacts")


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def description(self) -> str:
        return f"the artifact folder {self.root}"

    def _dest(self, run_id: str, path: str) -> Path:
        folder = self.root / clean_run_id(run_id)
        dest = (folder / clean_artifact_path(path)).resolve()
        if not dest.is_relative_to(folder):
            raise InvalidInput(f"artifact path {path!r} escapes the run's artifact folder")
        return dest

    def _temp(self) -> tuple[int, Path]:
        tmp_dir = self.root / ".incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        return fd, Path(name)

    async def stage(
        self, run_id: str, path: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> Staged:
        """Stream an upload to a temporary file, hashing it and enforcing the size limit."""
        self._dest(run_id, path)
        fd, temp = self._temp()
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"artifact is larger than the {max_bytes}-byte limit")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            temp.unlink()
            raise
        return Staged(size, digest.hexdigest(), temp)

    def stage_written(self, write: Callable[[Path], None]) -> Staged:
        temp, size, sha256 = write_temp_file(self.root / ".incoming", write)
        return Staged(size, sha256, temp)

    def publish(self, staged: Staged, run_id: str, path: str) -> None:
        if staged.published is not None:  # a retried transaction publishes again
            return
        dest = self._dest(run_id, path)
        folder = self.root / run_id
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.parent.resolve().is_relative_to(folder):
                raise InvalidInput(f"artifact path {path!r} escapes the run's artifact folder")
            os.replace(staged.handle, dest)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise Conflict(
                f"artifact path {path!r} clashes with a stored file or folder of the run"
            ) from exc
        stat = dest.stat()
        staged.published = (dest, stat.st_dev, stat.st_ino)

    def discard(self, staged: Staged, *, withdraw: bool = False) -> None:
        Path(staged.handle).unlink(missing_ok=True)
        if withdraw and staged.published is not None:
            dest, dev, ino = staged.published
            try:
                stat = dest.stat()
                if (stat.st_dev, stat.st_ino) == (dev, ino):  # still the file we put there
                    dest.unlink()
            except OSError as exc:
                log.warning("could not remove %s after a failed transaction: %s", dest, exc)

    def _file(self, run_id: str, path: str) -> Path:
        dest = self._dest(run_id, path)
        if not dest.is_file():
            raise NotFound(f"artifact {path!r} of run {run_id} has no stored content")
        return dest

    def size(self, run_id: str, path: str) -> int:
        return self._file(run_id, path).stat().st_size

    def open_range(self, run_id: str, path: str, start: int, length: int) -> bytes:
        with self._file(run_id, path).open("rb") as f:
            f.seek(start)
            return f.read(length)

    def open_stream(
        self,
        run_id: str,
        path: str,
        *,
        start: int = 0,
        length: int | None = None,
        chunk_size: int = DOWNLOAD_CHUNK,
    ) -> Iterator[bytes]:
        f = self._file(run_id, path).open("rb")
        f.seek(start)

        def chunks() -> Iterator[bytes]:
            left = length
            with f:
                while left is None or left > 0:
                    chunk = f.read(chunk_size if left is None else min(chunk_size, left))
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk

        return chunks()

    def local_copy(self, run_id: str, path: str) -> Path:
        return self._file(run_id, path)

    def sweep_incomplete(self, older_than_s: float) -> int:
        return sweep_old_files(self.root / ".incoming", older_than_s)

    def presigned_url(self, run_id: str, path: str, *, media_type: str) -> str | None:
        return None
