"""Every request body is read through one bounded reader, capped by the route that reads it.

A route's cap is a setting: JSON API bodies (batches included) take ``max_body_bytes``, portal
forms ``max_form_bytes``; an endpoint that takes more says so with :func:`body_limit` (the
evaluation uploads take ``max_table_bytes``, artifact uploads ``max_upload_bytes``). The cap is
stamped on each route when its family is mounted and read from the app's settings, so every
app built in one process keeps its own numbers.

:class:`BoundedBodies` wraps the ASGI ``receive`` of every request: the first time the app
asks for the body (the route is known by then), a declared ``Content-Length`` over the cap is a
413 before a byte of the body is read; a body sent without a length (chunked) is a 413 as soon
as what arrived passes the cap. The 413 is raised where the body is read, inside the route, so
it takes the route family's error shape, and the handler never sees the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """A body cap: the ``Settings`` field holding it, plus ``room`` bytes on top (a form's
    other fields around the file it carries)."""

    setting: str
    room: int = 0

    def bytes_for(self, settings: object) -> int:
        limit: int = getattr(settings, self.setting)
        return limit + self.room

    @property
    def variable(self) -> str:
        return f"MODELYARD_{self.setting.upper()}"


JSON_BODIES = BodyLimit("max_body_bytes")
FORMS = BodyLimit("max_form_bytes")
TABLES = BodyLimit("max_table_bytes")
ARTIFACTS = BodyLimit("max_upload_bytes")
# A multipart form carrying a table: the table's cap, and room for the form's text fields.
TABLE_FORMS = BodyLimit("max_table_bytes", room=64 * 1024)


def body_limit(limit: BodyLimit) -> Callable[[F], F]:
    """Give an endpoint another cap than its family's: ``@body_limit(TABLES)`` under the
    route decorator."""

    def mark(endpoint: F) -> F:
        endpoint.body_limit = limit  # type: ignore[attr-defined]
        return endpoint

    return mark


def limit_of(route: object, family: BodyLimit) -> BodyLimit:
    """The cap of a route of a family whose bodies take ``family``."""
    found: BodyLimit = getattr(getattr(route, "endpoint", None), "body_limit", family)
    return found


class BodyTooLarge(HTTPException):
    """413. An HTTPException so that the framework's body parsing passes it on unchanged (it
    turns other errors raised while reading a body into a 400)."""

    def __init__(self, limit: int, variable: str) -> None:
        super().__init__(
            413,
            detail=f"the request body is larger than the {limit}-byte limit of this endpoint "
            f"(set by {variable})",
        )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BoundedBodies:
    """Pure ASGI middleware: each request's body capped by the route that reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap: BodyLimit | None = None  # not known until the app first asks for the body
        limit = received = 0

        async def bounded() -> Message:
            nonlocal cap, limit, received
            if cap is None:
                cap = getattr(scope.get("route"), "body_limit", JSON_BODIES)
                limit = cap.bytes_for(scope["app"].state.settings)
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit, cap.variable)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, cap.variable)
            return message

        await self.app(scope, bounded, send)
