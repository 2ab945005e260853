"""Artifacts on a local folder, confined to their root."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelyard.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from modelyard.metadata.tables import MAX_ARTIFACT_PATH


def clean_artifact_path(path: str) -> str:
    """A relative POSIX path with no '..', '.', empty or absolute parts; refused otherwise."""
    if not path or len(path) > MAX_ARTIFACT_PATH:
        raise InvalidInput(f"artifact paths have 1 to {MAX_ARTIFACT_PATH} characters")
    if "\x00" in path or "\\" in path:
        raise InvalidInput("artifact paths may not contain NUL bytes or backslashes")
    if (
        path.startswith("/")
        or PurePosixPath(path).is_absolute()
        or (len(path) > 1 and path[1] == ":")
    ):
        raise InvalidInput(f"artifact path {path!r} must be relative")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"artifact path {path!r} may not contain '..', '.' or empty parts")
    return path


@dataclass(frozen=True)
class Staged:
    """An upload written to a temporary file, not yet visible."""

    temp: Path
    size: int
    sha256: str


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _dest(self, run_id: str, path: str) -> Path:
        dest = (self.root / run_id / clean_artifact_path(path)).resolve()
        if not dest.is_relative_to(self.root / run_id):
            raise InvalidInput(f"artifact path {path!r} escapes the run's artifact folder")
        return dest

    async def stage(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> Staged:
        """Stream an upload to a temporary file, hashing it and enforcing the size limit."""
        tmp_dir = self.root / ".incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
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
            os.unlink(name)
            raise
        return Staged(Path(name), size, digest.hexdigest())

    def stage_written(self, write: Callable[[Path], None]) -> Staged:
        """Stage a file the server writes itself (``write`` gets the temporary path)."""
        tmp_dir = self.root / ".incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        os.close(fd)
        temp = Path(name)
        try:
            write(temp)
            digest = hashlib.sha256()
            with temp.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Staged(temp, temp.stat().st_size, digest.hexdigest())

    def publish(self, staged: Staged, run_id: str, path: str) -> Path:
        dest = self._dest(run_id, path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.parent.resolve().is_relative_to(self.root / run_id):
                raise InvalidInput(f"artifact path {path!r} escapes the run's artifact folder")
            if staged.temp.exists():  # a retried transaction may already have moved it
                os.replace(staged.temp, dest)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise Conflict(
                f"artifact path {path!r} clashes with a stored file or folder of the run"
            ) from exc
        return dest

    def discard(self, staged: Staged) -> None:
        staged.temp.unlink(missing_ok=True)

    def locate(self, run_id: str, path: str) -> Path:
        dest = self._dest(run_id, path)
        if not dest.is_file():
            raise NotFound(f"artifact {path!r} of run {run_id} has no stored content")
        return dest
