"""What keeps other web pages, open in the browser of someone running modelyard, from acting
on the server or reading it.

- Host names: only the names of ``Settings.answered_hosts`` are answered (400 for others), so a
  page that points its own name at 127.0.0.1 (DNS rebinding) reaches nothing.
- Cross-site writes: a POST, PUT, PATCH or DELETE a page of another origin sends (its
  ``Origin`` header, or ``Sec-Fetch-Site``) is refused with 403 unless that origin is listed in
  MODELYARD_ALLOWED_ORIGINS. Clients that are not browsers (the SDK, curl) send neither header.
- Media types: a write whose body is not of a type its route declares is refused with 415, so a
  form (text/plain, urlencoded, multipart) never passes for JSON or Arrow. A route declares its
  types through its body parameter (a model: JSON; ``Form``: a form; ``File``: multipart) or,
  when it reads the body itself, in ``openapi_extra["requestBody"]["content"]`` (``*/*``: any).
- Headers on every response: a Content-Security-Policy that runs no inline script (pages run
  only the portal's own static files), no framing, no MIME sniffing, no referrer to others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.errors import Forbidden, UnsupportedMediaType
from modelyard.settings import Settings, web_origin

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# Sec-Fetch-Site values of requests a page of the server itself (or the user, typing an
# address) made; "same-site" includes other ports of the same host, so it is refused too.
OWN_SITE = frozenset({"same-origin", "none"})

# Pages run only the portal's own script files; styles may be inline (Plotly and htmx set
# style attributes), images may be data: URLs (Plotly's and Swagger UI's icons).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": PAGE_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


# --- host names -------------------------------------------------------------------------

_HOST = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")


def host_of(header: str | None) -> str | None:
    """The name in a Host header, lower-cased and without port or IPv6 brackets."""
    found = _HOST.fullmatch((header or "").lower())
    return None if found is None else found["v6"] or found["name"]


def host_allowed(name: str, patterns: Sequence[str]) -> bool:
    return any(
        pattern == "*" or name == pattern or (pattern[:2] == "*." and name.endswith(pattern[1:]))
        for pattern in patterns
    )


class HostGuard:
    """Answers only requests naming one of ``hosts`` (any port); others get 400. Starlette's
    TrustedHostMiddleware does the same with a bare "Invalid host header"; this one says what
    to set."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = list(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.hosts:
            header = Headers(scope=scope).get("host")
            name = host_of(header)
            if name is None or not host_allowed(name, self.hosts):
                await _wrong_host(scope, header)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _wrong_host(scope: Scope, header: str | None) -> Response:
    said = f"the name {header!r}" if header else "no name (no Host header)"
    message = (
        f"this server does not answer requests for {said}; if that is a name of this "
        "server, add it to MODELYARD_ALLOWED_HOSTS"
    )
    if str(scope.get("path", "")).startswith("/api/"):
        body = {"error": {"code": "HOST_NOT_ALLOWED", "message": message}}
        return JSONResponse(body, status_code=400)
    return PlainTextResponse(message, status_code=400)


# --- cross-site writes ------------------------------------------------------------------


def own_origin(request: Request) -> str | None:
    """The server's origin as the request reached it: its scheme and Host header."""
    try:
        return web_origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    except ValueError:
        return None


async def refuse_cross_site(request: Request) -> None:
    """A write a page of another origin sends is refused (403), unless that origin is listed
    in MODELYARD_ALLOWED_ORIGINS. An app-wide dependency, so the refusal takes the shape of
    the route's family."""
    if request.method not in WRITES:
        return
    where = f"{request.method} {request.url.path}"
    origin = request.headers.get("origin")
    if origin is not None:
        try:
            theirs = web_origin(origin)
        except ValueError:
            theirs = origin
        settings: Settings = request.app.state.settings
        own = own_origin(request)
        if theirs == own or theirs in settings.allowed_origins or theirs in settings.cors_origins:
            return
        raise Forbidden(
            f"{where} came from a page of {origin}, not of this server ({own}); pages of "
            "other sites may not change anything here (list an origin you trust in "
            "MODELYARD_ALLOWED_ORIGINS)"
        )
    site = request.headers.get("sec-fetch-site", "none").lower()
    if site not in OWN_SITE:
        raise Forbidden(
            f"{where} came from a page of another site (Sec-Fetch-Site: {site}); pages of "
            "other sites may not change anything here"
        )


# --- media types ------------------------------------------------------------------------


def accepted_media_types(route: Any) -> tuple[str, ...]:
    """The media types a route takes as its body; empty when it takes no body."""
    extra = getattr(route, "openapi_extra", None) or {}
    content = extra.get("requestBody", {}).get("content")
    if content:
        return tuple(str(media).lower() for media in content)
    body = getattr(route, "body_field", None)
    if body is None:
        return ()
    media = str(getattr(body.field_info, "media_type", "application/json"))
    return FORMS if media == FORMS[0] else (media,)


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"


def _names(types: Sequence[str]) -> str:
    return types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]


async def refuse_undeclared_media_type(request: Request) -> None:
    """A write whose body is of a type its route does not declare is refused (415)."""
    route = request.scope.get("route")
    if request.method not in WRITES or route is None or getattr(route, "is_fallback", False):
        return
    accepted = accepted_media_types(route)
    if "*/*" in accepted:
        return
    where = f"{request.method} {request.url.path}"
    given = request.headers.get("content-type")
    if not accepted:
        if _has_body(request.headers):
            raise UnsupportedMediaType(f"{where} takes no body; send the request without one")
        return
    if given is None and not _has_body(request.headers):
        return  # nothing to misread; the route says what is missing
    # A body without a type is, for HTTP, application/octet-stream (RFC 9110, 8.3).
    media = (given or "application/octet-stream").split(";")[0].strip().lower()
    if media in accepted:
        return
    sent = f"Content-Type {given}" if given else "no Content-Type"
    raise UnsupportedMediaType(
        f"{where} takes a body of type {_names(accepted)}; this request has {sent}",
        details={"accepted": list(accepted)},
    )


# --- response headers and the API document ----------------------------------------------


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def document_refusals(app: FastAPI) -> None:
    """The API document names the 403 of every write and the 415 of every write with a body."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        error = {"$ref": "#/components/schemas/ErrorBody"}
        has_error = "ErrorBody" in schema.get("components", {}).get("schemas", {})
        content = {"application/json": {"schema": error}} if has_error else {}
        for operations in schema.get("paths", {}).values():
            for method, op in operations.items():
                if method.upper() not in WRITES:
                    continue
                responses = op.setdefault("responses", {})
                responses.setdefault(
                    "403",
                    {
                        "description": "Sent by a web page of another site (Origin or "
                        "Sec-Fetch-Site), which may not change anything here",
                        "content": content,
                    },
                )
                types = list(op.get("requestBody", {}).get("content", {}))
                if types and "*/*" not in types:
                    responses.setdefault(
                        "415",
                        {
                            "description": f"The body is not of a type this endpoint takes "
                            f"({_names(types)}); the message names them",
                            "content": content,
                        },
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_guards(app: FastAPI, settings: Settings) -> None:
    """Before any route is added: the write checks as app-wide dependencies, ahead of the
    others (so their refusals take the shape of the route's family), the host check and the
    security headers (outermost), and the API document's refusals."""
    checks = [Depends(refuse_cross_site), Depends(refuse_undeclared_media_type)]
    app.router.dependencies[:0] = checks
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=list(WRITES | {"GET", "HEAD"}),
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(HostGuard, hosts=settings.answered_hosts)
    app.add_middleware(SecurityHeaders)
    document_refusals(app)
