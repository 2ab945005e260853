"""Helpers the API tests share."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

API = "/api/v1"


T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run`` on a thread of its own, so an async client in a test never depends on
    what the test process's main thread holds (a test once found it marked as running a loop);
    ``make`` builds the coroutine there, so none is left un-awaited if the run cannot start."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def assert_error(
    resp: httpx.Response, status: int | tuple[int, ...], code: str | None = None
) -> str:
    """``resp`` is an error in the API's one JSON shape; returns its message."""
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message"} <= set(err) <= {"code", "message", "details"}, err
    assert isinstance(err["code"], str)
    assert err["code"]
    assert isinstance(err["message"], str)
    assert err["message"].strip()
    if code:
        assert err["code"] == code, err
    return str(err["message"])


def new_run(api: httpx.Client, project: str = "p", **body: Any) -> str:
    """Start a run through the API; returns its id."""
    resp = api.post(f"{API}/runs", json={"project": project, **body})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["run_id"])


def get_page(api: httpx.Client, path: str, status: int = 200, **params: Any) -> str:
    """A portal page: HTML with the expected status and never a stack trace."""
    resp = api.get(path, params=params) if params else api.get(path)
    assert resp.status_code == status, resp.text[:2000]
    assert resp.headers["content-type"].startswith("text/html")
    assert "Traceback" not in resp.text
    return resp.text


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for a server process to answer ``/healthz``; fail with its log if it exits first.
    A server that never answers is killed and reaped before the test fails, so the failure is
    this test's alone (an orphaned process would be reported in whichever test runs next)."""
    deadline = time.monotonic() + 120  # generous: CI machines are shared and can be loaded
    while proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=30)
            raise AssertionError(f"the server did not start in 120 s:\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
