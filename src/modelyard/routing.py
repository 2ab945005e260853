"""Route families and their error shapes.

Every router the app serves comes as a :class:`Routes` family (built-in or from a plugin's
``register_routes``); the family decides how its errors look: the native JSON API answers
``{"error": {"code", "message"}}``, the portal answers an HTML page, and a future
MLflow-compatible mount can answer ``{"error_code", "message"}``. A route carries its family's
renderer (set by its route class, or stamped when its family is mounted), so the exception
handlers ask the route that served the request, never its path. A family mounted under a
prefix also answers unknown paths below that prefix (404, or 405 with ``Allow``) in its shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.routing import Match

from modelyard.body_limits import FORMS, JSON_BODIES, BodyLimit, limit_of
from modelyard.errors import InvalidFields, InvalidInput, ModelyardError
from modelyard.schemas import ErrorBody
from modelyard.services.bodies import NUL_REFUSED, refuse_nul_in_json

log = logging.getLogger("modelyard")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class ErrorInfo:
    """What went wrong, before a family gives it its shape."""

    status: int
    code: str
    message: str
    details: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    no_route: bool = False  # nothing is served at this path


ErrorRenderer = Callable[[Request, ErrorInfo], Response]


def json_errors(request: Request, error: ErrorInfo) -> Response:
    """The native API's shape: ``{"error": {"code", "message", "details"?}}``."""
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return JSONResponse({"error": body}, status_code=error.status, headers=dict(error.headers))


class ShapedRoute(APIRoute):
    """A route that carries the renderer of its errors (``None``: its family's, or the app's)."""

    error_renderer: ErrorRenderer | None = None


def route_class(renderer: ErrorRenderer) -> type[APIRoute]:
    """A route class for ``APIRouter(route_class=...)`` whose routes' errors ``renderer`` shapes."""
    return type("ShapedRoute", (ShapedRoute,), {"error_renderer": staticmethod(renderer)})


@dataclass(frozen=True)
class Routes:
    """A family of routes to mount, as returned by the ``register_routes`` hook.

    ``errors`` is ``"json"`` (the API's shape), ``"page"`` (HTML pages; htmx swaps get a
    fragment) or a renderer of your own; routes whose class carries a renderer keep theirs.
    ``template_dirs`` are added to the portal's template search path.
    """

    router: APIRouter
    errors: Literal["json", "page"] | ErrorRenderer = "json"
    template_dirs: Sequence[Path] = ()


async def refuse_nul(request: Request) -> None:
    """No NUL character reaches a database from any route: not from the path, the query or a
    JSON body the framework parses (bodies a route parses itself go through ``parse_body``).
    An app-wide dependency, so the refusal takes the shape of the route's family."""
    if "\x00" in request.scope.get("path", "") or b"%00" in request.scope.get("query_string", b""):
        raise InvalidInput(f"the address's {NUL_REFUSED}")
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is not None and "json" in request.headers.get(
        "content-type", ""
    ):
        refuse_nul_in_json(await request.body())


def renderer_of(request: Request) -> ErrorRenderer:
    route = request.scope.get("route")
    found: ErrorRenderer | None = getattr(route, "error_renderer", None)
    return found if found is not None else request.app.state.default_errors


def _routes_in(routes: Iterable[Any]) -> Iterable[Any]:
    """Every route among ``routes``, through included routers at any depth."""
    for route in routes:
        nested = getattr(route, "original_router", None)  # an included router (FastAPI 0.16x)
        yield from _routes_in(nested.routes) if nested is not None else (route,)


def mount(app: FastAPI, routes: Routes, renderer: ErrorRenderer) -> None:
    """Serve a family: its routes' errors take ``renderer`` unless their class chose one, and
    their bodies the family's cap (forms for pages, JSON bodies otherwise) unless their
    endpoint chose another (:func:`modelyard.body_limits.body_limit`)."""
    before = len(app.router.routes)
    app.include_router(routes.router)
    family = FORMS if routes.errors == "page" else JSON_BODIES
    # The routes as the app serves them (older FastAPI copies them when including).
    for route in _routes_in(app.router.routes[before:]):
        if isinstance(route, APIRoute):
            if getattr(route, "error_renderer", None) is None:
                route.error_renderer = renderer  # type: ignore[attr-defined]
            limit = limit_of(route, family)
            route.body_limit = limit  # type: ignore[attr-defined]
            _document_413(route, limit, json=renderer is json_errors)


def _document_413(route: APIRoute, limit: BodyLimit, *, json: bool) -> None:
    """A route that takes a body says in the OpenAPI document that too large a body is a 413."""
    extra = route.openapi_extra or {}
    chosen = hasattr(route.endpoint, "body_limit")  # reads its body itself, with its own cap
    if route.body_field is None and "requestBody" not in extra and not chosen:
        return
    doc: dict[str, Any] = {
        "description": f"The body is larger than {limit.variable} allows (refused before it "
        "is read when its Content-Length says so)"
    }
    if json:
        doc["model"] = ErrorBody
    route.responses = {**route.responses, 413: doc}


class _AnyPath(Convertor[str]):
    """Like ``path``, and across line breaks: Starlette's ``path`` stops at a %0A, so a path
    holding one would match no route at all and get the app's default error shape."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())


def add_fallback(app: FastAPI, prefix: str, renderer: ErrorRenderer) -> None:
    """Answer unknown paths under ``prefix`` in the family's shape; add after every family."""

    async def no_route(request: Request) -> Response:
        allowed = allowed_methods(request)
        if allowed:
            raise HTTPException(405, headers={"Allow": allowed})
        raise HTTPException(404)

    app.router.add_api_route(
        f"{prefix}/{{rest:anypath}}",
        no_route,
        methods=list(METHODS),
        include_in_schema=False,
        route_class_override=route_class(renderer),
    )
    app.router.routes[-1].is_fallback = True  # type: ignore[attr-defined]
    add_options(app, f"{prefix}/{{rest:anypath}}", renderer)


def add_options(app: FastAPI, path: str, renderer: ErrorRenderer | None = None) -> None:
    """Answer ``OPTIONS`` on every path matching ``path``: 204 with ``Allow`` naming the
    methods of the resource the path names, or 404 (in the shape of ``renderer``, the app's
    default when ``None``) when nothing is served there."""

    async def options(request: Request) -> Response:
        allowed = allowed_methods(request)
        if not allowed:
            raise HTTPException(404)
        return Response(status_code=204, headers={"Allow": allowed})

    base = route_class(renderer) if renderer else ShapedRoute

    def matches(self: APIRoute, scope: Any) -> tuple[Match, Any]:
        # Only OPTIONS: another method must not match in part (a 405 instead of a 404).
        if scope.get("method") != "OPTIONS":
            return Match.NONE, {}
        return base.matches(self, scope)

    app.router.add_api_route(
        path,
        options,
        methods=["OPTIONS"],
        include_in_schema=False,
        route_class_override=type("OptionsRoute", (base,), {"matches": matches}),
    )
    app.router.routes[-1].is_fallback = True  # type: ignore[attr-defined]


def _served_routes(routes: Iterable[Any]) -> Iterable[Any]:
    """Every route in serving order, with included routers' prefixes applied (FastAPI 0.16x
    keeps an included router whole; its effective candidates carry the full path)."""
    for route in routes:
        expand = getattr(route, "effective_candidates", None)
        yield from _served_routes(expand()) if expand is not None else (route,)


def allowed_methods(request: Request) -> str:
    """The methods of the resource this path names: those of every route sharing the path of
    the first route (in serving order) that takes this path with any method. ``/runs/search``
    names the search, not a run called "search", so its ``Allow`` is POST only. Starlette's
    405 names one route's methods only."""
    routes = [
        r
        for r in _served_routes(request.app.router.routes)
        if getattr(r, "methods", None) and not getattr(r, "is_fallback", False)
    ]
    for route in routes:
        probe = {**request.scope, "method": next(iter(route.methods))}
        if route.matches(probe)[0] == Match.FULL:
            taken = {m for r in routes if r.path == route.path for m in r.methods}
            return ", ".join(m for m in METHODS if m in taken)
    return ""


def _http_error(request: Request, exc: HTTPException) -> ErrorInfo:
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
    message = str(exc.detail)
    where = f"{request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    no_route = exc.status_code == 404 and message == "Not Found"
    if no_route:
        message = f"there is no endpoint {where}"
    elif exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
        message = f"{where} is not allowed; this path takes {headers['Allow']}"
    code = codes.get(exc.status_code, "HTTP_ERROR")
    return ErrorInfo(exc.status_code, code, message, headers=headers, no_route=no_route)


def install_error_handlers(app: FastAPI, *, default: ErrorRenderer) -> None:
    """Errors take the shape of the route that served the request (``default`` when none)."""
    app.state.default_errors = default

    def render(request: Request, error: ErrorInfo) -> Response:
        return renderer_of(request)(request, error)

    @app.exception_handler(ModelyardError)
    async def domain_error(request: Request, exc: ModelyardError) -> Response:
        return render(request, ErrorInfo(exc.status, exc.code, exc.message, exc.details))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        err = InvalidFields.from_errors(exc.errors())
        return render(request, ErrorInfo(err.status, err.code, err.message, err.details))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, _http_error(request, exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        message = "the server hit an unexpected error; see its log"
        return render(request, ErrorInfo(500, "INTERNAL_ERROR", message))
