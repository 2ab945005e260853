"""HTTP transports for the SDK: remote (httpx) or local (the app in-process), with retries."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IN_PROCESS_HOST = "modelyard.local"  # the host name of the local mode's in-process app


class ModelyardAPIError(Exception):
    """An error answered by the server: HTTP status, error code and message.

    ``retried`` is true when the answer came to a retry, so an earlier attempt of the same
    request may have been applied (its reply was lost): a 409 may then be that attempt's doing.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retried: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retried = retried


def raise_for_error(resp: httpx.Response, *, retried: bool = False) -> None:
    if resp.status_code < 400:
        return
    try:
        err = resp.json()["error"]
        code, message, details = err["code"], err["message"], err.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "HTTP_ERROR", resp.text[:500], None
    if resp.status_code == 401:
        message = f"{message} ({SIGN_IN_HINT})"
    raise ModelyardAPIError(resp.status_code, code, message, details, retried=retried)


# What a 401 from a server in team mode asks of an SDK user (never the token itself).
SIGN_IN_HINT = (
    "this server asks who you are: set MODELYARD_TOKEN to an API token, or pass "
    "Client(uri, token=...); `modelyard tokens create --user NAME` or the portal makes one"
)


class Transport:
    """Sends requests; transient failures are retried, which every endpoint makes safe
    (client-chosen run ids, identical points and params are no-ops, steps are PUTs)."""

    def __init__(self, http: httpx.Client, *, retries: int = 5, backoff: float = 0.2) -> None:
        self.http = http
        self.retries = retries
        self.backoff = backoff

    def request(
        self,
        method: str,
        path: str,
        *,
        content_factory: Callable[[], Any] | None = None,
        retries: int | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """``retries`` overrides the transport's own count (0: a single attempt). With a
        ``deadline`` (a ``time.monotonic()`` value) no attempt runs past it and no pause
        between attempts does: the last failure is raised instead."""
        retries = self.retries if retries is None else retries
        timeout = kwargs.pop("timeout", None)
        if timeout is not None:
            kwargs["timeout"] = timeout
        for attempt in range(retries + 1):
            if content_factory is not None:
                kwargs["content"] = content_factory()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise httpx.TimeoutException(f"no time left to send {method} {path}")
                most = timeout if timeout is not None else self.http.timeout.read
                kwargs["timeout"] = left if most is None else min(left, most)
            failure: httpx.TransportError | None = None
            try:
                resp = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == retries:
                    raise
                failure = exc
            else:
                if resp.status_code not in RETRY_STATUSES or attempt == retries:
                    raise_for_error(resp, retried=attempt > 0)
                    return resp
            pause = self.backoff * 2**attempt * (0.5 + random.random())
            if deadline is not None and time.monotonic() + pause >= deadline:
                if failure is not None:
                    raise failure
                raise_for_error(resp, retried=attempt > 0)
            time.sleep(pause)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


def remote_transport(
    uri: str, *, timeout: float, retries: int, token: str | None = None
) -> Transport:
    """HTTP to a server; ``token`` goes with every request as ``Authorization: Bearer``
    (httpx shows it as ``[secure]`` in reprs, and no error message carries it)."""
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        # Said without the value: a message must never carry a credential.
        raise ValueError("the API token holds spaces or characters no token has; copy it again")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http = httpx.Client(
        base_url=uri.rstrip("/"),
        timeout=timeout,
        limits=httpx.Limits(max_keepalive_connections=8),
        headers=headers,
    )
    return Transport(http, retries=retries)


class InProcessTransport(httpx.BaseTransport):
    """Serves requests with the ASGI app on a private event loop thread: no socket, no server."""

    def __init__(self, app: Any, *, on_close: Callable[[], None] | None = None) -> None:
        self._on_close = on_close
        self._loop = asyncio.new_event_loop()
        # A daemon thread: a client nobody closed must not keep the interpreter alive.
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="modelyard-in-process"
        )
        self._thread.start()
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            resp = await self._asgi.handle_async_request(inner)
            # The body as sent (still compressed if it was): the outer response decodes it.
            content = b"".join([chunk async for chunk in resp.aiter_raw()])
            return httpx.Response(resp.status_code, headers=resp.headers, content=content)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()
        if self._on_close is not None:
            self._on_close()


class ServerExtraMissing(ImportError):
    """A command or a local-mode client needs the server, which this install does not have."""


def server_missing(
    what: str, exc: ModuleNotFoundError, extras: str = "server"
) -> ServerExtraMissing:
    """The clear error for ``what`` needing ``extras``, of which ``exc.name`` is missing."""
    named = f"the {extras} extras" if "," in extras else f"the {extras} extra"
    return ServerExtraMissing(
        f"{what} needs {named}, which this install lacks (no module {exc.name!r}): "
        f"pip install 'modelyard[{extras}]'",
        name=exc.name,
    )


def is_missing_dependency(exc: ModuleNotFoundError) -> bool:
    """True when a third-party package is missing, not a module of modelyard itself."""
    return exc.name is not None and exc.name.partition(".")[0] != "modelyard"


def local_transport(data_dir: str, *, retries: int) -> Transport:
    """The same app, in-process, on a local data directory: no server needed, but the server
    extra is (a client-only install talks to a server by URL)."""
    try:
        from modelyard.app import create_app
        from modelyard.settings import Settings
    except ModuleNotFoundError as exc:
        if not is_missing_dependency(exc):
            raise
        what = f"Local mode (a data folder, {data_dir!r}, in place of a server URL)"
        raise server_missing(what, exc) from exc

    settings = Settings(data_dir=Path(data_dir))
    # No socket reaches the in-process app, so no browser does: it answers the name its own
    # client uses, besides those the settings list.
    hosts = [*settings.allowed_hosts, IN_PROCESS_HOST]
    app = create_app(settings.model_copy(update={"allowed_hosts": hosts}))
    # Whoever opens the data folder can read and change the database anyway, and nothing but
    # this client reaches the app (it has no socket): it acts for the implicit local user even
    # once users exist.
    app.state.folder = True
    transport = InProcessTransport(app, on_close=app.state.store.engine.dispose)
    http = httpx.Client(transport=transport, base_url=f"http://{IN_PROCESS_HOST}")
    return Transport(http, retries=retries)
