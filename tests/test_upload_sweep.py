"""What uploads cut short leave behind (a server killed mid-upload) is removed at start and
periodically, once it has received nothing for the grace period; uploads under way are kept."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from modelyard.artifacts.local import LocalArtifactStore
from modelyard.artifacts.s3 import S3ArtifactStore
from modelyard.services.upload_sweeper import UploadSweeper
from tests.conftest import in_process_client
from tests.helpers import API, new_run
from tests.stores import read_stored, store_of
from tests.test_events import lifespan

HOUR = 3600.0


def staged_file(folder: Path, name: str, *, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x" * 1000)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def wait_until(done: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_stale_upload_is_removed_at_start_and_a_fresh_one_kept(app: FastAPI) -> None:
    store = store_of(app)
    assert isinstance(store, LocalArtifactStore)
    incoming = store.root / ".incoming"
    stale = staged_file(incoming, "tmp-killed", age_s=2 * HOUR)
    fresh = staged_file(incoming, "tmp-live", age_s=60)
    with lifespan(app) as http:
        assert wait_until(lambda: not stale.exists())
        assert fresh.exists()
        rid = new_run(http)
        http.put(f"{API}/runs/{rid}/artifacts/a.txt", content=b"still works").raise_for_status()
        assert read_stored(app, rid, "a.txt") == b"still works"
    assert fresh.read_bytes() == b"x" * 1000


def test_the_sweep_runs_again_periodically(app: FastAPI) -> None:
    store = store_of(app)
    assert isinstance(store, LocalArtifactStore)
    sweeper = UploadSweeper(store, grace_s=HOUR, interval_s=0.05)
    sweeper.start()
    try:
        later = staged_file(store.root / ".incoming", "tmp-later", age_s=2 * HOUR)
        kept = staged_file(store.root / ".incoming", "tmp-kept", age_s=10)
        assert wait_until(lambda: not later.exists())
        assert kept.exists()
    finally:
        sweeper.stop()


@pytest.mark.stores("s3")
def test_a_stale_multipart_upload_is_aborted_and_a_fresh_one_kept(app: FastAPI) -> None:
    store = store_of(app)
    assert isinstance(store, S3ArtifactStore)
    client, bucket = store.client, store.bucket

    def start_upload(key: str) -> str:
        upload_id: str = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p")
        return upload_id

    def open_uploads(prefix: str) -> set[str]:
        found = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return {u["UploadId"] for u in found.get("Uploads", [])}

    mine = start_upload(f"{store.prefix}run1/model.bin")
    elsewhere = start_upload(f"not-{store.prefix}run1/model.bin")  # another store's prefix
    stale_temp = staged_file(store.cache_dir / ".incoming", "tmp-killed", age_s=2 * HOUR)
    stale_download = staged_file(store.cache_dir, ".download-killed", age_s=2 * HOUR)
    cached = staged_file(store.cache_dir, "cached-copy.bin", age_s=2 * HOUR)
    try:
        assert store.sweep_incomplete(HOUR) == 2  # the two stale files, not the live upload
        assert mine in open_uploads(store.prefix)
        assert not stale_temp.exists()
        assert not stale_download.exists()
        assert cached.exists()  # the download cache is trimmed by size, not here
        time.sleep(1.1)  # moto's Initiated has whole seconds
        assert store.sweep_incomplete(0) == 1
        assert mine not in open_uploads(store.prefix)
        assert elsewhere in open_uploads(f"not-{store.prefix}")
    finally:
        client.abort_multipart_upload(
            Bucket=bucket, Key=f"not-{store.prefix}run1/model.bin", UploadId=elsewhere
        )


@pytest.mark.stores("s3")
def test_an_upload_at_start_on_s3_still_works(app: FastAPI) -> None:
    with lifespan(app) as http:
        rid = new_run(http)
        http.put(f"{API}/runs/{rid}/artifacts/a.txt", content=b"ok").raise_for_status()
    with in_process_client(app) as http:
        assert http.get(f"{API}/runs/{rid}/artifacts/a.txt").content == b"ok"


@pytest.mark.slow
def test_a_server_killed_mid_upload_leaves_nothing_after_a_restart(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_concurrency import Server

    incoming = tmp_path / "data" / "artifacts" / ".incoming"
    server = Server(tmp_path, database_url, "first")
    try:
        with httpx.Client(base_url=server.url) as http:
            rid = new_run(http)
        stop = threading.Event()

        def body() -> Iterator[bytes]:
            for _ in range(300):
                if stop.is_set():
                    return
                yield b"m" * 1024 * 1024
                time.sleep(0.01)

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.put(f"{server.url}{API}/runs/{rid}/artifacts/big.bin", content=body())

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        assert wait_until(
            lambda: any(p.stat().st_size > 20 * 1024**2 for p in incoming.glob("*")), 60
        )
        server.kill()
        stop.set()
        sender.join(30)
    finally:
        server.kill()
    assert [p.stat().st_size > 0 for p in incoming.iterdir()] == [True]  # the orphan

    monkeypatch.setenv("MODELYARD_UPLOAD_GRACE_SECONDS", "0")
    restarted = Server(tmp_path, database_url, "second")
    try:
        assert wait_until(lambda: not any(incoming.iterdir()), 30)
        with httpx.Client(base_url=restarted.url) as http:
            assert http.get(f"{API}/runs/{rid}/artifacts").json() == []
    finally:
        restarted.kill()
