"""What an app's artifact store holds, seen the same way for the local folder and for S3:
the tests' own window on the store, beside the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from modelyard.artifacts.base import ArtifactStore
from modelyard.artifacts.local import LocalArtifactStore
from modelyard.artifacts.s3 import S3ArtifactStore


def store_of(app: FastAPI) -> ArtifactStore:
    store: ArtifactStore = app.state.artifacts
    return store


def stored(app: FastAPI, *, whole_bucket: bool = False) -> set[str]:
    """Every stored file as ``run_id/path`` (staging areas left out); on S3 with
    ``whole_bucket``, every key of the bucket, in full."""
    store = store_of(app)
    if isinstance(store, LocalArtifactStore):
        if not store.root.exists():
            return set()
        return {
            str(p.relative_to(store.root))
            for p in store.root.rglob("*")
            if (p.is_file() or p.is_symlink()) and p.relative_to(store.root).parts[0] != ".incoming"
        }
    assert isinstance(store, S3ArtifactStore)
    prefix = "" if whole_bucket else store.prefix
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=prefix
    )
    return {o["Key"].removeprefix(prefix) for page in pages for o in page.get("Contents", [])}


def read_stored(app: FastAPI, run_id: str, path: str) -> bytes:
    """The stored bytes, read behind the API's back."""
    store = store_of(app)
    if isinstance(store, LocalArtifactStore):
        return (store.root / run_id / path).read_bytes()
    assert isinstance(store, S3ArtifactStore)
    got = store.client.get_object(Bucket=store.bucket, Key=f"{store.prefix}{run_id}/{path}")
    data: bytes = got["Body"].read()
    return data


def delete_stored(app: FastAPI, run_id: str, path: str) -> None:
    store = store_of(app)
    if isinstance(store, LocalArtifactStore):
        (store.root / run_id / path).unlink()
        return
    assert isinstance(store, S3ArtifactStore)
    store.client.delete_object(Bucket=store.bucket, Key=f"{store.prefix}{run_id}/{path}")


def pending(app: FastAPI) -> list[str]:
    """Uploads left half-done: temporary files, unfinished multipart uploads."""
    store = store_of(app)
    if isinstance(store, LocalArtifactStore):
        incoming = store.root / ".incoming"
        return [p.name for p in incoming.iterdir()] if incoming.exists() else []
    assert isinstance(store, S3ArtifactStore)
    incoming = store.cache_dir / ".incoming"
    temps = [p.name for p in incoming.iterdir()] if incoming.exists() else []
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return temps + [u["Key"] for u in uploads.get("Uploads", [])]


def assert_nothing_pending(app: FastAPI) -> None:
    assert pending(app) == []


def local_root(app: FastAPI) -> Path:
    store = store_of(app)
    assert isinstance(store, LocalArtifactStore)
    return store.root
