"""Request bodies are capped by size before they are read, per route family: one request with
a huge body cannot hold the server up or fill its memory."""

from __future__ import annotations

import select
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.conftest import ServerThread, in_process_client
from tests.helpers import API, assert_error, new_run, run_async

CAP = 4_000
JSON = [(b"content-type", b"application/json")]


async def _asgi(
    app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, dict[str, str], bytes, int]:
    """One request straight through the ASGI app: its status, headers, body, and how many
    times the app asked for the request's body."""
    asked = 0
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000), "server": ("localhost", 80), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"], asked


def _declaring(length: int) -> list[tuple[bytes, bytes]]:
    return [*JSON, (b"content-length", str(length).encode())]


def _batch(points: int) -> dict[str, object]:
    return {"columns": {"key": "loss", "value": [0.5] * points, "step": list(range(points))}}


def test_a_declared_length_over_the_cap_is_a_413_before_the_body_is_read(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(max_body_bytes=CAP)
    with in_process_client(app) as api:
        run_id = new_run(api, "caps")
        for path in (f"{API}/runs/{run_id}/batch", f"{API}/runs", f"{API}/series/urn:x:1/batch"):
            status, headers, body, asked = run_async(
                partial(_asgi, app, "POST", path, _declaring(100 * 1024**2), b"")
            )
            assert (status, asked) == (413, 0), body
            assert headers["content-type"] == "application/json"
            error = orjson.loads(body)["error"]
            assert error["code"] == "PAYLOAD_TOO_LARGE"
            assert f"{CAP}-byte limit" in error["message"]
            assert "MODELYARD_MAX_BODY_BYTES" in error["message"]
        # Nothing was stored: no run besides the first, no points.
        runs = api.post(f"{API}/runs/search", json={"project": "caps"}).json()["runs"]
        assert [r["run_id"] for r in runs] == [run_id]
        assert api.get(f"{API}/runs/{run_id}").json()["metrics"] == {}


def test_a_body_streamed_without_a_length_is_refused_once_it_passes_the_cap(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(max_body_bytes=CAP)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"metrics": ['
        for i in range(10_000):  # far more than the cap
            sent += 1
            yield b'{"key": "loss", "value": 0.5, "step": %d},' % i
        yield b'{"key": "loss", "value": 0.5}]}'

    async def send(run_id: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            request = client.build_request(
                "POST", f"{API}/runs/{run_id}/batch", content=chunks(), headers=dict(JSON)
            )
            assert "content-length" not in request.headers
            return await client.send(request)

    with in_process_client(app) as api:
        run_id = new_run(api, "caps")
        assert "MODELYARD_MAX_BODY_BYTES" in assert_error(
            run_async(lambda: send(run_id)), 413, "PAYLOAD_TOO_LARGE"
        )
        assert sent < 200  # refused while the body was arriving, not after all of it
        assert api.get(f"{API}/runs/{run_id}").json()["metrics"] == {}


def test_a_body_under_the_cap_is_taken_and_the_setting_moves_the_cap(
    app_with: Callable[..., FastAPI],
) -> None:
    body = orjson.dumps(_batch(1_000))
    assert len(body) > CAP
    with in_process_client(app_with(max_body_bytes=CAP)) as small:
        run_id = new_run(small, "caps")
        resp = small.post(f"{API}/runs/{run_id}/batch", content=body, headers=dict(JSON))
        assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
        assert small.post(f"{API}/runs/{run_id}/batch", json=_batch(10)).status_code == 204
        assert small.get(f"{API}/runs/{run_id}").json()["metrics"]["loss"]["step"] == 9
    with in_process_client(app_with(max_body_bytes=len(body))) as exact:
        run_id = new_run(exact, "caps")
        resp = exact.post(f"{API}/runs/{run_id}/batch", content=body, headers=dict(JSON))
        assert resp.status_code == 204, resp.text


def test_the_default_cap_takes_a_full_batch(api: httpx.Client) -> None:
    run_id = new_run(api, "caps")
    body = orjson.dumps(_batch(100_000))  # max_batch_points
    resp = api.post(f"{API}/runs/{run_id}/batch", content=body, headers=dict(JSON))
    assert resp.status_code == 204, resp.text


def test_a_portal_form_over_its_cap_is_a_page(app_with: Callable[..., FastAPI]) -> None:
    """The portal's upload form takes a table of max_table_bytes and room for its fields."""
    app = app_with(max_table_bytes=CAP)
    with in_process_client(app) as api:
        run_id = new_run(api, "caps")
        headers = [(b"content-type", b"multipart/form-data; boundary=x")]
        headers.append((b"content-length", str(10 * 1024**2).encode()))
        status, got, body, asked = run_async(
            lambda: _asgi(app, "POST", f"/runs/{run_id}/evaluations", headers, b"")
        )
        assert (status, asked) == (413, 0)
        assert got["content-type"].startswith("text/html")
        assert b"MODELYARD_MAX_TABLE_BYTES" in body
        assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []


def test_the_api_documents_the_413_of_routes_that_take_bodies(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path, method, setting in (
        ("/api/v1/runs", "post", "MODELYARD_MAX_BODY_BYTES"),
        ("/api/v1/runs/{run_id}/batch", "post", "MODELYARD_MAX_BODY_BYTES"),
        ("/api/v1/series/{urn}/batch", "post", "MODELYARD_MAX_BODY_BYTES"),
        ("/api/v1/runs/{run_id}/evaluations", "post", "MODELYARD_MAX_TABLE_BYTES"),
        ("/api/v1/runs/{run_id}/artifacts/{path}", "put", "MODELYARD_MAX_UPLOAD_BYTES"),
    ):
        doc = paths[path][method]["responses"]["413"]
        assert setting in doc["description"]
        schema = doc["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorBody")
    assert "413" not in paths["/api/v1/runs/{run_id}"]["get"]["responses"]


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_real_server_answers_413_without_waiting_for_the_body(
    app_with: Callable[..., FastAPI],
) -> None:
    """Over HTTP: the 413 comes back while the client has sent nothing but the headers, and
    a chunked body is cut short once it passes the cap."""
    app = app_with(max_body_bytes=CAP)
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as http:
        run_id = new_run(http, "caps")
        target = f"{API}/runs/{run_id}/batch".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (target, 100 * 1024**2)
            )
            answer = _read_response(sock)  # no body sent at all
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"PAYLOAD_TOO_LARGE" in answer

        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" % target
            )
            chunk, sent = b"x" * 1024, 0
            while sent < 1024**2 and not select.select([sock], [], [], 0.01)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            answer = _read_response(sock)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 1024**2
        assert http.get(f"{API}/runs/{run_id}").json()["metrics"] == {}


@pytest.mark.parametrize("points", [6, 7])
def test_a_batch_over_the_point_limit_is_refused_before_its_points_are_checked(
    app_with: Callable[..., FastAPI], points: int
) -> None:
    """Too many points is a 413 whatever the points hold: they are counted before they are
    validated, so a huge batch costs no validation."""
    with in_process_client(app_with(max_batch_points=5)) as api:
        run_id = new_run(api, "caps")
        rows = [{"key": "loss", "value": "not a number"}] * points
        resp = api.post(f"{API}/runs/{run_id}/batch", json={"metrics": rows})
        assert f"{points} metric points" in assert_error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_a_bad_row_deep_in_a_large_batch_is_named_by_its_place(api: httpx.Client) -> None:
    run_id = new_run(api, "caps")
    rows: list[dict[str, object]] = [{"key": "loss", "value": 0.5, "step": i} for i in range(5000)]
    rows[4321] = {"key": "loss", "value": "high"}
    resp = api.post(f"{API}/runs/{run_id}/batch", json={"metrics": rows})
    assert "metrics.4321.value" in assert_error(resp, 422, "INVALID_INPUT")
    assert api.get(f"{API}/runs/{run_id}").json()["metrics"] == {}
