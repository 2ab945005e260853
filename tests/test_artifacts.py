"""Artifacts of a run over the API: byte-exact round trips, immutability, confinement to the
artifact root (paths and symlinks), the size limit, and their records on the backbone."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from modelyard.errors import PayloadTooLarge
from modelyard.metadata.urn import artifact_urn, run_urn, step_urn
from modelyard.services import artifacts as artifact_service
from tests.conftest import ServerThread, in_process_client
from tests.helpers import assert_error, new_run, run_async
from tests.stores import (
    assert_nothing_pending,
    delete_stored,
    local_root,
    read_stored,
    store_of,
    stored,
)

pytestmark = pytest.mark.stores("local", "s3")

API = "/api/v1"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def url(run_id: str, path: str) -> str:
    return f"{API}/runs/{run_id}/artifacts/{quote(path, safe='/')}"


def upload(
    api: httpx.Client,
    run_id: str,
    path: str,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    return api.put(url(run_id, path), content=data, params=params, headers=headers)


def uploaded(api: httpx.Client, run_id: str, path: str, data: bytes, **kw: Any) -> dict[str, Any]:
    resp = upload(api, run_id, path, data, **kw)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def listing(api: httpx.Client, run_id: str, **params: str) -> list[dict[str, Any]]:
    resp = api.get(f"{API}/runs/{run_id}/artifacts", params=params)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def files_under(folder: Path) -> set[str]:
    """Every file and symlink below ``folder`` (database files aside), as relative paths."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            rel = str(Path(dirpath, name).relative_to(folder))
            if not name.startswith("modelyard.db"):
                found.add(rel)
    return found


def snapshot(app: FastAPI, folder: Path) -> set[str]:
    """Every file below ``folder`` and every object of the app's store."""
    return files_under(folder) | {f"store:{key}" for key in stored(app)}


def run_has_files(app: FastAPI, run_id: str) -> bool:
    return any(key.startswith(f"{run_id}/") for key in stored(app))


# --- round trips


def test_upload_and_download_are_byte_exact(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    data = bytes(range(256)) * 4096 + os.urandom(12_345) + b"\x00\r\n\xff"
    meta = uploaded(api, rid, "models/weights.bin", data)

    digest = hashlib.sha256(data).hexdigest()
    assert meta["run_id"] == rid
    assert meta["path"] == "models/weights.bin"
    assert meta["urn"] == artifact_urn(rid, "models/weights.bin")
    assert meta["size"] == len(data)
    assert meta["sha256"] == digest
    assert meta["media_type"] == "application/octet-stream"
    assert meta["step"] is None
    assert meta["kind"] is None

    resp = api.get(url(rid, "models/weights.bin"))
    assert resp.status_code == 200
    assert resp.content == data
    assert hashlib.sha256(resp.content).hexdigest() == digest
    assert resp.headers["x-content-sha256"] == digest
    assert resp.headers["etag"] == f'"{digest}"'
    assert resp.headers["content-type"].startswith("application/octet-stream")
    assert int(resp.headers["content-length"]) == len(data)

    assert read_stored(app, rid, "models/weights.bin") == data
    assert_nothing_pending(app)
    assert listing(api, rid) == [meta]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-1099", 100, 1099),
        ("bytes=5000-", 5000, 5999),
        ("bytes=-10", 5990, 5999),
        ("bytes=5990-99999", 5990, 5999),  # past the end: up to the last byte
        ("bytes=-99999", 0, 5999),
    ],
)
def test_a_byte_range_of_an_artifact_is_sent_alone(
    api: httpx.Client, header: str, first: int, last: int
) -> None:
    rid = new_run(api, "files")
    data = os.urandom(6000)
    uploaded(api, rid, "part.bin", data)
    resp = api.get(url(rid, "part.bin"), headers={"Range": header})
    assert resp.status_code == 206, resp.text
    assert resp.content == data[first : last + 1]
    assert resp.headers["content-range"] == f"bytes {first}-{last}/6000"
    assert resp.headers["content-length"] == str(last - first + 1)
    assert resp.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=6000-", "bytes=7000-8000", "bytes=-0"])
def test_a_range_outside_the_artifact_is_refused_with_its_size(
    api: httpx.Client, header: str
) -> None:
    rid = new_run(api, "files")
    uploaded(api, rid, "part.bin", os.urandom(6000))
    resp = api.get(url(rid, "part.bin"), headers={"Range": header})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == "bytes */6000"
    assert resp.content == b""


# Headers are Latin-1: "²", "³" and "¹" are digits to str.isdigit but not to int().
@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=x-", "", "bytes=-", "bytes=+1-2",
     "bytes=0_1-2", "bytes=\xb2-", "bytes=-\xb2", "bytes=0-\xb9", "bytes=\xb2-\xb3"],
)  # fmt: skip
def test_a_range_the_server_does_not_take_sends_the_whole_artifact(
    api: httpx.Client, header: str
) -> None:
    rid = new_run(api, "files")
    data = os.urandom(600)
    uploaded(api, rid, "part.bin", data)
    resp = api.get(url(rid, "part.bin"), headers={"Range": header.encode("latin-1")})
    assert resp.status_code == 200
    assert resp.content == data


def test_an_empty_artifact(api: httpx.Client) -> None:
    rid = new_run(api, "files")
    meta = uploaded(api, rid, "empty.txt", b"")
    assert (meta["size"], meta["sha256"]) == (0, EMPTY_SHA)
    resp = api.get(url(rid, "empty.txt"))
    assert (resp.status_code, resp.content) == (200, b"")


def test_paths_with_unusual_characters_round_trip(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    paths = ["reports/résumé 1.txt", "100% done.txt", "a?b#c.txt", "ab:cd/z.txt", ".hidden"]
    for i, path in enumerate(paths):
        meta = uploaded(api, rid, path, f"content {i}".encode())
        assert meta["path"] == path
        assert meta["urn"] == artifact_urn(rid, path)
    for i, path in enumerate(paths):
        assert api.get(url(rid, path)).content == f"content {i}".encode()
        assert read_stored(app, rid, path) == f"content {i}".encode()
    assert [a["path"] for a in listing(api, rid)] == sorted(paths)


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        ("metrics.csv", None, "text/csv"),
        ("report.json", None, "application/json"),
        ("notes.txt", None, "text/plain"),
        ("blob.unknownext", None, "application/octet-stream"),
        ("noextension", None, "application/octet-stream"),
        ("plot.dat", "image/png", "image/png"),
        ("metrics.csv", "text/plain; charset=latin-1", "text/plain; charset=latin-1"),
    ],
)
def test_media_type_is_guessed_or_taken_from_the_request(
    api: httpx.Client, path: str, content_type: str | None, expected: str
) -> None:
    rid = new_run(api, "files")
    headers = {"content-type": content_type} if content_type else None
    meta = uploaded(api, rid, path, b"a,b\n1,2\n", headers=headers)
    assert meta["media_type"] == expected
    assert listing(api, rid)[0]["media_type"] == expected
    resp = api.get(url(rid, path))
    assert resp.headers["content-type"].split(";")[0] == expected.split(";")[0]
    assert resp.content == b"a,b\n1,2\n"


def test_an_artifact_attached_to_a_step(api: httpx.Client) -> None:
    rid = new_run(api, "files")
    api.put(f"{API}/runs/{rid}/steps/featurize", json={"status": "running"}).raise_for_status()
    api.put(f"{API}/runs/{rid}/steps/train", json={}).raise_for_status()
    feats = uploaded(api, rid, "features.parquet", b"feats", step="featurize", kind="dataset")
    table = uploaded(api, rid, "a_stats.csv", b"x", step="featurize", kind="table")
    loose = uploaded(api, rid, "loose.txt", b"loose")
    assert (feats["step"], feats["kind"]) == ("featurize", "dataset")
    assert loose["step"] is None

    by_name = {s["name"]: s for s in api.get(f"{API}/runs/{rid}/steps").json()}
    assert by_name["featurize"]["artifacts"] == [table, feats]  # ordered by path
    assert by_name["train"]["artifacts"] == []
    assert api.get(f"{API}/runs/{rid}/steps/featurize").json()["artifacts"] == [table, feats]

    # The backbone records the artifact and the step that made it.
    urn = quote(feats["urn"], safe="")
    props = api.get(f"{API}/entities/{urn}/aspects").json()["artifact_properties"]
    assert props == {
        "run_id": rid,
        "path": "features.parquet",
        "step": "featurize",
        "size": 5,
        "sha256": hashlib.sha256(b"feats").hexdigest(),
        "media_type": "application/octet-stream",
        "kind": "dataset",
    }
    assert step_urn(rid, "featurize") != run_urn(rid)


def test_an_unknown_kind_is_refused(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    assert_error(upload(api, rid, "a.txt", b"x", kind="weird"), 400, "INVALID_INPUT")
    assert listing(api, rid) == []
    assert not run_has_files(app, rid)


def test_listing_with_a_prefix(api: httpx.Client) -> None:
    rid = new_run(api, "files")
    for path in [
        "data/b.csv",
        "data/a.csv",
        "models/m.bin",
        "data_x.txt",
        "a_b/1.txt",
        "axb/2.txt",
    ]:
        uploaded(api, rid, path, path.encode())
    assert [a["path"] for a in listing(api, rid)] == [
        "a_b/1.txt",
        "axb/2.txt",
        "data/a.csv",
        "data/b.csv",
        "data_x.txt",
        "models/m.bin",
    ]
    assert [a["path"] for a in listing(api, rid, prefix="data/")] == ["data/a.csv", "data/b.csv"]
    assert [a["path"] for a in listing(api, rid, prefix="data")] == [
        "data/a.csv",
        "data/b.csv",
        "data_x.txt",
    ]
    # LIKE wildcards in the prefix are literal.
    assert [a["path"] for a in listing(api, rid, prefix="a_")] == ["a_b/1.txt"]
    assert [a["path"] for a in listing(api, rid, prefix="%")] == []
    assert listing(api, rid, prefix="zzz") == []
    assert len(listing(api, rid, prefix="")) == 6


def test_artifacts_of_other_runs_are_separate(api: httpx.Client) -> None:
    a, b = new_run(api, "files"), new_run(api, "files")
    uploaded(api, a, "same.txt", b"from a")
    uploaded(api, b, "same.txt", b"from b")
    assert api.get(url(a, "same.txt")).content == b"from a"
    assert api.get(url(b, "same.txt")).content == b"from b"
    assert [x["run_id"] for x in listing(api, a)] == [a]


# --- immutability


def test_re_uploading_identical_content_is_a_no_op(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    first = uploaded(api, rid, "model.bin", b"weights")
    again = uploaded(api, rid, "model.bin", b"weights")
    assert again == first
    assert listing(api, rid) == [first]
    urn = first["urn"]
    versions = api.get(
        f"{API}/entities/{quote(urn, safe='')}/aspects/artifact_properties/versions"
    ).json()
    assert len(versions) == 1
    assert len(api.get(f"{API}/changes", params={"urn": urn}).json()) == 1
    assert_nothing_pending(app)


def test_re_uploading_other_content_is_a_conflict(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    first = uploaded(api, rid, "model.bin", b"weights v1")
    resp = upload(api, rid, "model.bin", b"weights v2")
    assert_error(resp, 409, "CONFLICT")
    assert "immutable" in resp.json()["error"]["message"]
    assert api.get(url(rid, "model.bin")).content == b"weights v1"
    assert read_stored(app, rid, "model.bin") == b"weights v1"
    assert listing(api, rid) == [first]
    assert_nothing_pending(app)


@pytest.mark.parametrize(("first", "second"), [("a", "a/b.txt"), ("x/y.txt", "x"), ("p", "p/q/r")])
def test_a_path_cannot_be_both_a_file_and_a_folder(
    api: httpx.Client, app: FastAPI, first: str, second: str
) -> None:
    rid = new_run(api, "files")
    meta = uploaded(api, rid, first, b"first")
    assert_error(upload(api, rid, second, b"second"), 409, "CONFLICT")
    assert listing(api, rid) == [meta]
    assert api.get(url(rid, first)).content == b"first"
    assert_nothing_pending(app)


# --- refusals that must leave nothing behind


def test_an_unknown_step_is_a_404_and_writes_nothing(
    api: httpx.Client, app: FastAPI, tmp_path: Path
) -> None:
    rid = new_run(api, "files")
    before = snapshot(app, tmp_path)
    resp = upload(api, rid, "features.parquet", b"data", step="featurize")
    assert_error(resp, 404, "NOT_FOUND")
    assert listing(api, rid) == []
    assert snapshot(app, tmp_path) == before
    assert_nothing_pending(app)


BAD_PATHS = [
    "%2E%2E/%2E%2E/escape.txt",
    "..%2F..%2Fescape.txt",
    "x/%2E%2E/%2E%2E/%2E%2E/escape.txt",
    "%2E%2E",
    "/tmp/escape.txt",
    "%2Ftmp%2Fescape.txt",
    "a%5C..%5C..%5Cescape.txt",
    "a\\b.txt",
    "a//b.txt",
    "a/%2E/b.txt",
    "%2E",
    "a/",
    "C:escape.txt",
    "C:%5Cescape.txt",
    "%00nul.txt",
    "a" * 501,
]


@pytest.mark.parametrize("raw", BAD_PATHS)
def test_bad_paths_are_refused_and_write_nothing(
    api: httpx.Client, app: FastAPI, tmp_path: Path, raw: str
) -> None:
    rid = new_run(api, "files")
    uploaded(api, rid, "ok.txt", b"fine")
    before = snapshot(app, tmp_path)
    base = f"{API}/runs/{rid}/artifacts/"
    resp = api.put(base + raw, content=b"evil")
    assert_error(resp, 400, "INVALID_INPUT")
    assert_error(api.get(base + raw), 400, "INVALID_INPUT")
    assert snapshot(app, tmp_path) == before
    assert not any("escape" in f for f in files_under(tmp_path.parent))
    assert not any("escape" in key for key in stored(app, whole_bucket=True))
    assert [a["path"] for a in listing(api, rid)] == ["ok.txt"]
    assert_nothing_pending(app)


def test_the_longest_path_is_accepted(api: httpx.Client) -> None:
    rid = new_run(api, "files")
    path = "/".join(["d" * 9] * 50)  # 499 characters
    path += "x"
    assert len(path) == 500
    assert uploaded(api, rid, path, b"deep")["path"] == path
    assert api.get(url(rid, path)).content == b"deep"


def test_a_long_non_ascii_path_is_accepted_or_refused_cleanly(
    api: httpx.Client, app: FastAPI
) -> None:
    # 500 characters, but its URN (percent-encoded UTF-8) is far longer.
    rid = new_run(api, "files")
    path = "é" * 500
    resp = upload(api, rid, path, b"x")
    assert resp.status_code in (201, 400), resp.text
    if resp.status_code == 201:
        assert api.get(url(rid, path)).content == b"x"
    else:
        assert listing(api, rid) == []
        assert not run_has_files(app, rid)
    assert_nothing_pending(app)


# --- symlinks planted in the artifact folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the artifact root, with a secret in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"TOP SECRET")
    return folder


@pytest.mark.stores("local")  # symlinks are a folder's matter
def test_uploads_through_a_symlinked_folder_cannot_escape(
    api: httpx.Client, app: FastAPI, outside: Path
) -> None:
    rid = new_run(api, "files")
    run_dir = local_root(app) / rid
    run_dir.mkdir(parents=True)
    (run_dir / "link").symlink_to(outside, target_is_directory=True)

    for path in ("link/escape.txt", "link/secret.txt", "link/sub/escape.txt"):
        resp = upload(api, rid, path, b"evil")
        assert 400 <= resp.status_code < 500, (path, resp.text)
        assert resp.status_code != 404
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"TOP SECRET"
    assert listing(api, rid) == []
    assert_nothing_pending(app)


@pytest.mark.stores("local")  # symlinks are a folder's matter
def test_uploads_into_a_symlinked_run_folder_cannot_escape(
    api: httpx.Client, app: FastAPI, outside: Path
) -> None:
    rid = new_run(api, "files")
    local_root(app).mkdir(parents=True, exist_ok=True)
    (local_root(app) / rid).symlink_to(outside, target_is_directory=True)
    resp = upload(api, rid, "escape.txt", b"evil")
    assert 400 <= resp.status_code < 500, resp.text
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert listing(api, rid) == []


@pytest.mark.stores("local")  # symlinks are a folder's matter
def test_uploads_cannot_reach_another_run_through_a_symlink(
    api: httpx.Client, app: FastAPI
) -> None:
    a, b = new_run(api, "files"), new_run(api, "files")
    uploaded(api, b, "model.bin", b"b's model")
    (local_root(app) / a).mkdir(parents=True)
    (local_root(app) / a / "other").symlink_to(local_root(app) / b, target_is_directory=True)
    resp = upload(api, a, "other/model.bin", b"overwrite")
    assert 400 <= resp.status_code < 500, resp.text
    resp = upload(api, a, "other/new.bin", b"plant")
    assert 400 <= resp.status_code < 500, resp.text
    assert api.get(url(b, "model.bin")).content == b"b's model"
    assert sorted(p.name for p in (local_root(app) / b).iterdir()) == ["model.bin"]


@pytest.mark.stores("local")  # symlinks are a folder's matter
def test_downloads_through_a_symlinked_folder_cannot_escape(
    api: httpx.Client, app: FastAPI, outside: Path
) -> None:
    rid = new_run(api, "files")
    uploaded(api, rid, "data/secret.txt", b"inside")
    data_dir = local_root(app) / rid / "data"
    (data_dir / "secret.txt").unlink()
    data_dir.rmdir()
    data_dir.symlink_to(outside, target_is_directory=True)

    resp = api.get(url(rid, "data/secret.txt"))
    assert 400 <= resp.status_code < 500, resp.text
    assert b"TOP SECRET" not in resp.content


@pytest.mark.stores("local")  # symlinks are a folder's matter
def test_downloads_through_a_symlinked_file_cannot_escape(
    api: httpx.Client, app: FastAPI, outside: Path
) -> None:
    rid = new_run(api, "files")
    uploaded(api, rid, "report.txt", b"inside")
    stored = local_root(app) / rid / "report.txt"
    stored.unlink()
    stored.symlink_to(outside / "secret.txt")

    resp = api.get(url(rid, "report.txt"))
    assert 400 <= resp.status_code < 500, resp.text
    assert b"TOP SECRET" not in resp.content


# --- the size limit


@pytest.fixture
def small_app(app_with: Callable[..., FastAPI]) -> FastAPI:
    """An app that takes artifacts of at most 1 KiB."""
    return app_with(max_upload_bytes=1024)


@pytest.fixture
def small_api(small_app: FastAPI) -> Iterator[httpx.Client]:
    with in_process_client(small_app) as client:
        yield client


def test_an_oversized_upload_is_a_413_and_leaves_nothing(
    small_api: httpx.Client, small_app: FastAPI, tmp_path: Path
) -> None:
    rid = new_run(small_api, "files")
    before = snapshot(small_app, tmp_path)
    resp = upload(small_api, rid, "big.bin", b"x" * 1025)
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
    assert listing(small_api, rid) == []
    assert small_api.get(url(rid, "big.bin")).status_code == 404
    assert snapshot(small_app, tmp_path) == before
    assert_nothing_pending(small_app)
    # Exactly at the limit is fine.
    assert uploaded(small_api, rid, "big.bin", b"x" * 1024)["size"] == 1024


def test_an_oversized_streamed_upload_is_a_413_and_leaves_nothing(
    small_app: FastAPI, tmp_path: Path
) -> None:
    """Without a Content-Length, the limit is enforced while the body streams in."""
    with ServerThread(small_app) as server, httpx.Client(base_url=server.url) as http:
        rid = new_run(http)
        before = snapshot(small_app, tmp_path)

        def chunks(n: int) -> Iterator[bytes]:
            for _ in range(n):
                yield b"y" * 512

        resp = http.put(url(rid, "streamed.bin"), content=chunks(3))
        assert "content-length" not in resp.request.headers
        assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
        assert listing(http, rid) == []
        assert snapshot(small_app, tmp_path) == before
        assert_nothing_pending(small_app)

        ok = http.put(url(rid, "streamed.bin"), content=chunks(2))
        assert ok.status_code == 201, ok.text
        assert ok.json()["size"] == 1024
        assert http.get(url(rid, "streamed.bin")).content == b"y" * 1024


def test_the_stream_limit_cleans_up_its_temporary_file(small_app: FastAPI) -> None:
    files = store_of(small_app)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"z" * 300

    async def stage() -> None:
        await files.stage("0" * 32, "big.bin", body(), max_bytes=1024)

    with pytest.raises(PayloadTooLarge):
        run_async(stage)
    assert_nothing_pending(small_app)
    assert stored(small_app) == set()


def test_the_service_refuses_an_oversized_stream(
    small_api: httpx.Client, small_app: FastAPI
) -> None:
    rid = new_run(small_api, "files")

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"z" * 300

    async def run() -> None:
        await artifact_service.upload_artifact(
            small_app.state.store,
            small_app.state.artifacts,
            run_id=rid,
            path="big.bin",
            chunks=body(),
            max_bytes=1024,
            step=None,
            kind=None,
            media_type=None,
            actor="tester",
        )

    with pytest.raises(PayloadTooLarge):
        run_async(run)
    assert listing(small_api, rid) == []
    assert not run_has_files(small_app, rid)
    assert_nothing_pending(small_app)


# --- run state and unknowns


@pytest.mark.parametrize("status", ["finished", "failed", "killed"])
def test_uploads_to_an_ended_run_are_refused(
    api: httpx.Client, app: FastAPI, tmp_path: Path, status: str
) -> None:
    rid = new_run(api, "files")
    kept = uploaded(api, rid, "before.txt", b"kept")
    api.patch(f"{API}/runs/{rid}", json={"status": status}).raise_for_status()
    before = snapshot(app, tmp_path)
    assert_error(upload(api, rid, "after.txt", b"late"), 409, "INVALID_STATE")
    assert_error(upload(api, rid, "before.txt", b"kept"), 409, "INVALID_STATE")
    assert snapshot(app, tmp_path) == before
    assert_nothing_pending(app)
    # What was uploaded before the end stays readable.
    assert listing(api, rid) == [kept]
    assert api.get(url(rid, "before.txt")).content == b"kept"


def test_unknown_artifacts_and_runs_are_404(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    assert_error(api.get(url(rid, "missing.txt")), 404, "NOT_FOUND")
    uploaded(api, rid, "dir/file.txt", b"x")
    assert_error(api.get(url(rid, "dir")), 404, "NOT_FOUND")
    ghost = "0" * 32
    assert_error(api.get(url(ghost, "a.txt")), 404, "NOT_FOUND")
    assert_error(api.get(f"{API}/runs/{ghost}/artifacts"), 404, "NOT_FOUND")
    assert_error(upload(api, ghost, "a.txt", b"x"), 404, "NOT_FOUND")
    assert not run_has_files(app, ghost)


def test_a_record_whose_file_is_gone_is_a_404(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    uploaded(api, rid, "gone.txt", b"x")
    delete_stored(app, rid, "gone.txt")
    assert_error(api.get(url(rid, "gone.txt")), 404, "NOT_FOUND")


# --- concurrent writers


def test_concurrent_uploads_to_one_path_keep_one_consistent_artifact(
    api: httpx.Client, app: FastAPI
) -> None:
    rid = new_run(api, "files")
    bodies = [f"version {i}".encode() * 1000 for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda b: upload(api, rid, "model.bin", b), bodies))
    codes = sorted(r.status_code for r in resps)
    assert codes == [201] + [409] * 7, [r.text for r in resps]
    [meta] = listing(api, rid)
    content = api.get(url(rid, "model.bin")).content
    assert hashlib.sha256(content).hexdigest() == meta["sha256"]
    assert content in bodies
    assert_nothing_pending(app)


def test_concurrent_uploads_to_different_paths_all_land(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api, "files")
    paths = [f"shards/part-{i:02d}.bin" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda p: upload(api, rid, p, p.encode()), paths))
    assert [r.status_code for r in resps] == [201] * len(paths)
    assert [a["path"] for a in listing(api, rid)] == paths
    for p in paths:
        assert api.get(url(rid, p)).content == p.encode()
    assert_nothing_pending(app)


def test_downloads_cannot_run_scripts_on_the_portal(api: httpx.Client) -> None:
    run_id = new_run(api)
    page = b"<html><script>document.cookie</script></html>"
    resp = api.put(
        f"{API}/runs/{run_id}/artifacts/report.html",
        content=page,
        headers={"Content-Type": "text/html"},
    )
    assert resp.status_code == 201, resp.text
    got = api.get(f"{API}/runs/{run_id}/artifacts/report.html")
    assert got.content == page
    policy = got.headers["content-security-policy"]
    assert "sandbox" in policy
    assert "default-src 'none'" in policy
    assert got.headers["x-content-type-options"] == "nosniff"
