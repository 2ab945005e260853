"""Artifacts in S3-compatible object storage: ``s3://bucket/prefix/<run id>/<path>``.

Uploads stream: below one part they are kept in memory and written with one PUT at publish;
above, a multipart upload of the final key is started and parts are sent while the request
body arrives (one part in flight while the next is read), and publishing completes it, so a
half-received upload is never visible and the server holds at most two parts. Endpoint,
region and credentials come from the usual AWS variables (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, ...), which boto3 reads itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.loaders import Loader, create_loader

from modelyard.artifacts.base import (
    DOWNLOAD_CHUNK,
    Staged,
    clean_artifact_path,
    clean_run_id,
    sweep_old_files,
    write_temp_file,
)
from modelyard.errors import (
    ArtifactStoreFailed,
    ArtifactStoreUnavailable,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from modelyard.settings import Settings

log = logging.getLogger("modelyard.artifacts")

PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
PRESIGNED_SECONDS = 300
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidToken",
        "ExpiredToken",
    }
)
_BUSY = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "500", "503"}
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Bucket and key prefix ("" or ending in "/") of ``s3://bucket/prefix``."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"MODELYARD_ARTIFACT_ROOT {url!r} names no bucket")
    prefix = prefix.strip("/")
    if prefix:
        clean_artifact_path(prefix)
    return bucket, f"{prefix}/" if prefix else ""


_LOADER: list[Loader] = []


def make_client(config: Config) -> Any:
    """An S3 client configured from the AWS environment as it is now. The service model
    files are loaded once per process (the slow part), shared by every new client."""
    if not _LOADER:
        _LOADER.append(create_loader())
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER[0])
    return boto3.session.Session(botocore_session=session).client("s3", config=config)


@dataclass
class _Pending:
    """An upload on its way: small ones in memory, larger ones as a multipart upload."""

    key: str
    data: bytes = b""
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    file: Path | None = None


class S3ArtifactStore:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        cache_dir: Path,
        cache_bytes: int,
        timeout: float = 10.0,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.cache_dir, self.cache_bytes, self.part_size = cache_dir, cache_bytes, part_size
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=32,
            signature_version="s3v4",
        )
        self.client: Any = make_client(config)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ArtifactStore:
        bucket, prefix = parse_s3_url(settings.artifact_root or "")
        return cls(
            bucket,
            prefix,
            cache_dir=(settings.data_dir / "artifact-cache").resolve(),
            cache_bytes=settings.artifact_cache_bytes,
            timeout=settings.artifact_store_timeout,
        )

    @property
    def description(self) -> str:
        return f"the artifact store s3://{self.bucket}/{self.prefix}"

    def _key(self, run_id: str, path: str) -> str:
        return f"{self.prefix}{clean_run_id(run_id)}/{clean_artifact_path(path)}"

    # --- errors
    @contextmanager
    def _calling(self, what: str, key: str = "") -> Iterator[None]:
        """Turn botocore's errors into ones that name the store problem."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, what, key) from exc
        except (ConnectionError, HTTPClientError) as exc:
            raise ArtifactStoreUnavailable(
                f"{self.description} did not answer while trying to {what}: {exc}"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ArtifactStoreFailed(
                f"{self.description} needs credentials (AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY): {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise ArtifactStoreFailed(f"{self.description} failed to {what}: {exc}") from exc

    def _client_error(self, exc: ClientError, what: str, key: str) -> Exception:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = err.get("Message") or code
        if code == "NoSuchBucket":
            return ArtifactStoreFailed(f"{self.description}: the bucket {self.bucket!r} is missing")
        if code in _DENIED:
            return ArtifactStoreFailed(
                f"{self.description} denied access while trying to {what} ({code}: {message})"
            )
        if code in _MISSING:
            if self._bucket_missing():
                return ArtifactStoreFailed(
                    f"{self.description}: the bucket {self.bucket!r} is missing"
                )
            run_id, _, path = key.removeprefix(self.prefix).partition("/")
            return NotFound(f"artifact {path!r} of run {run_id} has no stored content")
        if code in _BUSY:
            return ArtifactStoreUnavailable(
                f"{self.description} is unavailable ({code}: {message}); try again"
            )
        return ArtifactStoreFailed(f"{self.description} refused to {what} ({code}: {message})")

    def _bucket_missing(self) -> bool:
        """After a bare 404 (HEAD has no body): is it the bucket that is missing?"""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except ClientError as exc:
            return exc.response.get("Error", {}).get("Code") in ("NoSuchBucket", "404")
        except BotoCoreError:
            return False
        return False

    # --- uploads
    def _part_size(self, max_bytes: int) -> int:
        return max(self.part_size, -(-max_bytes // (MAX_PARTS - 1)))

    async def stage(
        self, run_id: str, path: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> Staged:
        pending = _Pending(self._key(run_id, path))
        part_size = self._part_size(max_bytes)
        digest, size = hashlib.sha256(), 0
        buffer: list[bytes] = []
        buffered = 0
        sending: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"artifact is larger than the {max_bytes}-byte limit")
                digest.update(chunk)
                buffer.append(chunk)
                buffered += len(chunk)
                if buffered >= part_size:
                    if sending is not None:
                        await sending
                    part, buffer, buffered = b"".join(buffer), [], 0
                    sending = asyncio.ensure_future(asyncio.to_thread(self._send, pending, part))
            if sending is not None:
                await sending
            if pending.upload_id is not None and buffer:
                await asyncio.to_thread(self._send, pending, b"".join(buffer))
            elif pending.upload_id is None:
                pending.data = b"".join(buffer)
        except BaseException:
            if sending is not None:
                await asyncio.gather(sending, return_exceptions=True)
            await asyncio.to_thread(self._abort, pending)
            raise
        return Staged(size, digest.hexdigest(), pending)

    def _send(self, pending: _Pending, part: bytes) -> None:
        """Send one part, starting the multipart upload with the first."""
        with self._calling("store an upload", pending.key):
            if pending.upload_id is None:
                made = self.client.create_multipart_upload(Bucket=self.bucket, Key=pending.key)
                pending.upload_id = made["UploadId"]
            number = len(pending.parts) + 1
            sent = self.client.upload_part(
                Bucket=self.bucket,
                Key=pending.key,
                UploadId=pending.upload_id,
                PartNumber=number,
                Body=part,
            )
        pending.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def _abort(self, pending: _Pending) -> None:
        if pending.upload_id is None:
            return
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=pending.key, UploadId=pending.upload_id
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not abort the upload of %s: %s", pending.key, exc)
        pending.upload_id = None

    def stage_written(self, write: Callable[[Path], None]) -> Staged:
        temp, size, sha256 = write_temp_file(self.cache_dir / ".incoming", write)
        return Staged(size, sha256, _Pending("", file=temp))

    def publish(self, staged: Staged, run_id: str, path: str) -> None:
        if staged.published is not None:  # a retried transaction publishes again
            return
        pending: _Pending = staged.handle
        key = self._key(run_id, path)
        if pending.key and pending.key != key:
            raise InvalidInput(f"the upload was staged for {pending.key!r}, not for {path!r}")
        pending.key = key
        with self._calling("store an artifact", key):
            if pending.file is not None:
                self._put_file(pending)
            if pending.upload_id is not None:
                done = self._complete(pending, staged.size)
            else:
                done = self.client.put_object(Bucket=self.bucket, Key=key, Body=pending.data)
        staged.published = (key, done["ETag"])

    def _complete(self, pending: _Pending, size: int) -> dict[str, Any]:
        """Complete a multipart upload. A completion retried after a timeout finds the
        upload gone: then the object is looked at, and taken if it has the upload's size."""
        try:
            done: dict[str, Any] = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=pending.key,
                UploadId=pending.upload_id,
                MultipartUpload={"Parts": pending.parts},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            done = self.client.head_object(Bucket=self.bucket, Key=pending.key)
            if done["ContentLength"] != size:
                raise
        pending.upload_id = None
        return done

    def _put_file(self, pending: _Pending) -> None:
        """Read a server-written file into the pending upload (in parts when large)."""
        assert pending.file is not None
        with pending.file.open("rb") as f:
            first = f.read(self.part_size)
            if len(first) < self.part_size:
                pending.data = first
                return
            for part in iter(lambda: f.read(self.part_size), b""):
                self._send(pending, first)
                first = part
            self._send(pending, first)

    def discard(self, staged: Staged, *, withdraw: bool = False) -> None:
        pending: _Pending = staged.handle
        self._abort(pending)
        pending.data = b""
        if pending.file is not None:
            pending.file.unlink(missing_ok=True)
        if withdraw and staged.published is not None:
            key, etag = staged.published
            try:
                now = self.client.head_object(Bucket=self.bucket, Key=key)
                if now["ETag"] == etag:  # still what this upload wrote
                    self.client.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError) as exc:
                log.warning("could not remove %s after a failed transaction: %s", key, exc)

    # --- reads
    def size(self, run_id: str, path: str) -> int:
        key = self._key(run_id, path)
        with self._calling("read an artifact's size", key):
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def open_range(self, run_id: str, path: str, start: int, length: int) -> bytes:
        key = self._key(run_id, path)
        if length <= 0:
            return b""
        with self._calling("read an artifact", key):
            try:
                got = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # at or past the end
                raise
            data: bytes = got["Body"].read()
        return data

    def open_stream(
        self,
        run_id: str,
        path: str,
        *,
        start: int = 0,
        length: int | None = None,
        chunk_size: int = DOWNLOAD_CHUNK,
    ) -> Iterator[bytes]:
        key = self._key(run_id, path)
        ranged = {}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            ranged = {"Range": f"bytes={start}-{end}"}
        with self._calling("read an artifact", key):
            body = self.client.get_object(Bucket=self.bucket, Key=key, **ranged)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def local_copy(self, run_id: str, path: str) -> Path:
        key = self._key(run_id, path)
        name = hashlib.sha256(key.encode()).hexdigest() + PurePosixPath(path).suffix[:16]
        copy = self.cache_dir / name
        if copy.is_file():
            os.utime(copy)  # recently used: kept longest
            return copy
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.cache_dir, prefix=".download-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.open_stream(run_id, path):
                    out.write(chunk)
            os.replace(temp, copy)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._trim_cache(keep=copy)
        return copy

    def _trim_cache(self, *, keep: Path) -> None:
        """Remove the least recently used copies beyond the cache's room."""
        try:
            found = [
                (p.stat(), p)
                for p in self.cache_dir.iterdir()
                if p.is_file() and p != keep and not p.name.startswith(".")
            ]
            total = keep.stat().st_size + sum(s.st_size for s, _ in found)
            for stat, old in sorted(found, key=lambda f: f[0].st_mtime):
                if total <= self.cache_bytes:
                    break
                total -= stat.st_size
                old.unlink(missing_ok=True)
        except OSError as exc:  # another process trimming at the same time
            log.warning("could not trim the artifact cache: %s", exc)

    # --- leftovers of uploads cut short
    def sweep_incomplete(self, older_than_s: float) -> int:
        removed = sweep_old_files(self.cache_dir / ".incoming", older_than_s)
        removed += sweep_old_files(self.cache_dir, older_than_s, prefix=".download-")
        cutoff = time.time() - older_than_s
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    started = upload["Initiated"].timestamp()
                    if started < cutoff and self._last_part_at(upload, started) < cutoff:
                        self._abort(_Pending(upload["Key"], upload_id=upload["UploadId"]))
                        removed += 1
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not look for unfinished uploads in %s: %s", self.description, exc)
        return removed

    def _last_part_at(self, upload: dict[str, Any], started: float) -> float:
        """When the multipart upload last received a part (its start when none)."""
        latest = started
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        for page in pages:
            for part in page.get("Parts", []):
                latest = max(latest, part["LastModified"].timestamp())
        return latest

    def presigned_url(self, run_id: str, path: str, *, media_type: str) -> str | None:
        key = self._key(run_id, path)
        with self._calling("sign a download", key):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": media_type},
                ExpiresIn=PRESIGNED_SECONDS,
            )
        return url
