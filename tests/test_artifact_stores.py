"""The artifact stores themselves: paths that try to leave their prefix, large streamed
uploads, presigned redirects, a failed commit, and an object store that is unreachable,
silent, missing its bucket or refusing access: a clear 502/503 naming the store problem,
and never an artifact row pointing at content that was not written."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer

from modelyard.artifacts.base import clean_artifact_path
from modelyard.artifacts.s3 import S3ArtifactStore
from modelyard.errors import InvalidInput
from modelyard.sdk.client import Client
from modelyard.services import artifacts as artifact_service
from tests.conftest import MotoServer, ServerThread, free_port, in_process_client
from tests.helpers import API, assert_error, new_run, run_async
from tests.stores import assert_nothing_pending, read_stored, store_of, stored

MIB = 1024 * 1024


def url(run_id: str, path: str) -> str:
    return f"{API}/runs/{run_id}/artifacts/{path}"


def listing(api: httpx.Client, run_id: str) -> list[str]:
    resp = api.get(f"{API}/runs/{run_id}/artifacts")
    assert resp.status_code == 200, resp.text
    return [a["path"] for a in resp.json()]


# --- paths


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "a/../b",
        "./a",
        "a//b",
        "/etc/passwd",
        "C:x",
        "a\\b",
        "a\x00b",
        "a%2Fb",
        "a%2fb",
        "%2e%2e",
        "%2E%2e/x",
        ".%2e/x",
        "x/%2e",
        "a%5Cb",
        "a%00b",
        "%252e%252e/x",  # encoded twice
        "a%252Fb",
        "x/%25252e%25252e",
    ],
)
def test_paths_that_leave_their_prefix_are_refused(path: str) -> None:
    with pytest.raises(InvalidInput):
        clean_artifact_path(path)


@pytest.mark.parametrize("path", ["100% done.txt", "a%20b.txt", "x/%41.txt", "...", "a..b/c"])
def test_percent_signs_that_decode_to_nothing_dangerous_are_kept(path: str) -> None:
    assert clean_artifact_path(path) == path


@pytest.mark.stores("local", "s3")
@pytest.mark.parametrize(
    ("run_id", "path"),
    [("0" * 32, "../x"), ("0" * 32, "a/%2e%2e/%2e%2e/x"), ("..", "x"), ("a/b", "x"), ("", "x")],
)
def test_every_store_read_refuses_an_escaping_path(app: FastAPI, run_id: str, path: str) -> None:
    files = store_of(app)
    reads: list[Callable[[], object]] = [
        lambda: files.size(run_id, path),
        lambda: files.open_range(run_id, path, 0, 10),
        lambda: files.open_stream(run_id, path),
        lambda: files.local_copy(run_id, path),
    ]
    for read in reads:
        with pytest.raises(InvalidInput):
            read()


# --- streaming, redirects, commit failures (both stores)


@pytest.mark.stores("local", "s3")
def test_a_large_streamed_upload_round_trips_in_parts(app: FastAPI) -> None:
    """20 MiB without a Content-Length: on S3 a multipart upload of three parts."""
    block = os.urandom(MIB)
    digest = hashlib.sha256(block * 20).hexdigest()
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        rid = new_run(http)
        resp = http.put(url(rid, "big.bin"), content=(block for _ in range(20)))
        assert resp.status_code == 201, resp.text
        assert (resp.json()["size"], resp.json()["sha256"]) == (20 * MIB, digest)
        with http.stream("GET", url(rid, "big.bin")) as got:
            h = hashlib.sha256()
            for chunk in got.iter_bytes():
                h.update(chunk)
        assert h.hexdigest() == digest
    assert hashlib.sha256(read_stored(app, rid, "big.bin")).hexdigest() == digest
    files = store_of(app)
    if isinstance(files, S3ArtifactStore):
        head = files.client.head_object(Bucket=files.bucket, Key=f"{files.prefix}{rid}/big.bin")
        assert head["ETag"].strip('"').endswith("-3")  # 8 + 8 + 4 MiB
    assert_nothing_pending(app)


@pytest.mark.stores("local", "s3")
def test_a_failed_commit_leaves_no_content_and_no_row(
    api: httpx.Client, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content is written before the row; when the commit then fails it is withdrawn."""
    rid = new_run(api)
    api.put(url(rid, "kept.txt"), content=b"kept").raise_for_status()
    files = store_of(app)
    publish = files.publish

    def publish_then_fail(*args: Any) -> None:
        publish(*args)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(files, "publish", publish_then_fail)
    with pytest.raises(RuntimeError):
        run_async(lambda: _upload(app, rid, "lost.txt", b"never recorded"))
    assert listing(api, rid) == ["kept.txt"]
    assert stored(app) == {f"{rid}/kept.txt"}
    assert_nothing_pending(app)


async def _upload(app: FastAPI, run_id: str, path: str, data: bytes) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield data

    await artifact_service.upload_artifact(
        app.state.store, app.state.artifacts, run_id=run_id, path=path, chunks=body(),
        max_bytes=1024, step=None, kind=None, media_type=None, actor="tester",
    )  # fmt: skip


@pytest.mark.stores("s3")
def test_downloads_redirect_to_a_presigned_url_when_asked(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(artifact_redirect_downloads=True)
    with in_process_client(app) as api:
        rid = new_run(api)
        api.put(url(rid, "r.csv"), content=b"a,b\n1,2\n").raise_for_status()
        resp = api.get(url(rid, "r.csv"))
    assert resp.status_code == 307
    location = resp.headers["location"]
    assert "X-Amz-Signature=" in location
    direct = httpx.get(location)
    assert direct.status_code == 200
    assert direct.content == b"a,b\n1,2\n"
    assert direct.headers["content-type"] == "text/csv"


@pytest.mark.stores("local")
def test_the_local_folder_streams_even_when_redirects_are_asked(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(artifact_redirect_downloads=True)
    with in_process_client(app) as api:
        rid = new_run(api)
        api.put(url(rid, "r.txt"), content=b"hello").raise_for_status()
        resp = api.get(url(rid, "r.txt"))
    assert (resp.status_code, resp.content) == (200, b"hello")


@pytest.mark.stores("s3")
def test_local_copies_are_cached_and_trimmed(app_with: Callable[..., FastAPI]) -> None:
    app = app_with(artifact_cache_bytes=2500)
    files = store_of(app)
    with in_process_client(app) as api:
        rid = new_run(api)
        for name in "abc":
            api.put(url(rid, f"{name}.bin"), content=name.encode() * 1000).raise_for_status()
    a = files.local_copy(rid, "a.bin")
    assert a.read_bytes() == b"a" * 1000
    assert files.local_copy(rid, "a.bin") == a  # a cache hit: the same file
    b = files.local_copy(rid, "b.bin")
    time.sleep(0.01)
    os.utime(a)  # a used more recently than b
    c = files.local_copy(rid, "c.bin")
    assert a.exists()
    assert c.exists()
    assert not b.exists()  # 3000 bytes would not fit in 2500: the least recently used went


# --- the object store failing


@pytest.fixture
def s3_app(
    s3_server: MotoServer, app_with: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FastAPI]:
    """Apps on S3 whose AWS environment the test changes first."""

    def make(*, bucket: str = s3_server.bucket, **env: str) -> FastAPI:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return app_with(artifact_root=f"s3://{bucket}/faults", artifact_store_timeout=0.3)

    return make


def _working(app_with: Callable[..., FastAPI], s3_server: MotoServer) -> FastAPI:
    return app_with(artifact_root=f"s3://{s3_server.bucket}/faults")


def assert_store_error(resp: httpx.Response, status: int, *words: str) -> None:
    code = "ARTIFACT_STORE_UNAVAILABLE" if status == 503 else "ARTIFACT_STORE_ERROR"
    assert_error(resp, status, code)
    message = resp.json()["error"]["message"]
    assert "artifact store s3://" in message
    for word in words:
        assert word in message, message


def test_an_unreachable_store_is_a_503_and_records_nothing(
    s3_app: Callable[..., FastAPI], s3_server: MotoServer, app_with: Callable[..., FastAPI]
) -> None:
    ok = _working(app_with, s3_server)
    with in_process_client(ok) as api:
        rid = new_run(api)
        api.put(url(rid, "there.txt"), content=b"there").raise_for_status()
    down = s3_app(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    with in_process_client(down) as api:
        assert_store_error(api.put(url(rid, "new.txt"), content=b"x"), 503, "did not answer")
        assert listing(api, rid) == ["there.txt"]
        assert_store_error(api.get(url(rid, "there.txt")), 503, "did not answer")
        page = api.get(f"/runs/{rid}/artifacts/there.txt", headers={"accept": "text/html"})
        assert page.status_code == 503
        assert "did not answer" in page.text


def test_a_store_that_stops_is_a_503(s3_app: Callable[..., FastAPI], s3_server: MotoServer) -> None:
    port = free_port()
    own = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    own.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="stopping")
        app = s3_app(bucket="stopping", AWS_ENDPOINT_URL=endpoint)
        with in_process_client(app) as api:
            rid = new_run(api)
            api.put(url(rid, "a.txt"), content=b"a").raise_for_status()
            own.stop()
            assert_store_error(api.get(url(rid, "a.txt")), 503, "did not answer")
            assert_store_error(api.put(url(rid, "b.txt"), content=b"b"), 503)
            assert listing(api, rid) == ["a.txt"]
    finally:
        own.stop()


def test_a_store_that_never_answers_times_out_as_a_503(s3_app: Callable[..., FastAPI]) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        app = s3_app(AWS_ENDPOINT_URL=f"http://127.0.0.1:{silent.getsockname()[1]}")
        with in_process_client(app) as api:
            rid = new_run(api)
            started = time.monotonic()
            resp = api.put(url(rid, "slow.txt"), content=b"x")
            assert_store_error(resp, 503, "did not answer", "timeout")
            assert time.monotonic() - started < 15
            assert listing(api, rid) == []


def test_a_missing_bucket_is_a_502_naming_it(s3_app: Callable[..., FastAPI]) -> None:
    app = s3_app(bucket="no-such-bucket")
    with in_process_client(app) as api:
        rid = new_run(api)
        resp = api.put(url(rid, "a.txt"), content=b"a")
        assert_store_error(resp, 502, "'no-such-bucket' is missing")
        assert listing(api, rid) == []


@pytest.fixture
def enforcing_access(s3_server: MotoServer) -> Iterator[dict[str, str]]:
    """Keys of a user with no permissions, while the moto server checks every request
    against IAM (it checks nothing by default)."""
    iam = boto3.client("iam", endpoint_url=s3_server.endpoint)
    name = f"nobody-{os.getpid()}-{time.monotonic_ns()}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    httpx.post(f"{s3_server.endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    try:
        yield {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
    finally:
        httpx.post(f"{s3_server.endpoint}/moto-api/reset-auth", content=b"inf").raise_for_status()


def test_denied_access_is_a_502_and_records_nothing(
    s3_app: Callable[..., FastAPI], enforcing_access: dict[str, str], tmp_path: Path
) -> None:
    app = s3_app(**enforcing_access)
    with in_process_client(app) as api:
        rid = new_run(api)
        resp = api.put(url(rid, "a.txt"), content=b"a")
        assert_store_error(resp, 502, "denied access", "AccessDenied")
        assert listing(api, rid) == []


@pytest.mark.stores("s3")
def test_a_completion_retried_after_a_timeout_takes_the_finished_object(app: FastAPI) -> None:
    """The store completed the upload but its answer was lost; the retry finds no upload."""
    files = store_of(app)
    assert isinstance(files, S3ArtifactStore)
    data = os.urandom(9 * MIB)

    async def body() -> AsyncIterator[bytes]:
        yield data

    rid = "0" * 32
    staged = run_async(lambda: files.stage(rid, "m.bin", body(), max_bytes=20 * MIB))
    pending = staged.handle
    files.client.complete_multipart_upload(
        Bucket=files.bucket, Key=pending.key, UploadId=pending.upload_id,
        MultipartUpload={"Parts": pending.parts},
    )  # fmt: skip
    files.publish(staged, rid, "m.bin")
    files.discard(staged)
    assert staged.published is not None
    assert read_stored(app, rid, "m.bin") == data
    assert_nothing_pending(app)


@pytest.mark.stores("s3")
def test_the_sdk_follows_a_download_redirect(
    app_with: Callable[..., FastAPI], tmp_path: Path
) -> None:
    app = app_with(artifact_redirect_downloads=True)
    with ServerThread(app) as server, Client(server.url) as sdk:
        rid = new_run(sdk.transport.http)
        sdk.transport.http.put(url(rid, "w.bin"), content=b"weights").raise_for_status()
        out = sdk.download_artifact(rid, "w.bin", tmp_path / "w.bin")
    assert out.read_bytes() == b"weights"
