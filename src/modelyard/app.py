"""The application factory: nothing connects or reads configuration at import."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Match
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from modelyard._version import __version__
from modelyard.api.v1 import router as api_v1
from modelyard.artifacts.base import make_artifact_store
from modelyard.errors import ModelyardError
from modelyard.metadata.engine import ensure_schema, make_engine
from modelyard.metadata.store import Store
from modelyard.plugins import make_plugins
from modelyard.settings import Settings
from modelyard.web import error_page, install_web, is_page

log = logging.getLogger("modelyard")


TITLES = {
    400: "That request could not be understood",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "That request could not be understood",
    500: "Something went wrong",
}


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: object = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if is_page(request):
        title = TITLES.get(status, "That did not work")
        response = error_page(request, status, title, message)
        response.headers.update(headers or {})
        return response
    body: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, object]]]:
    details: list[dict[str, object]] = []
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":  # its loc is a character offset, not a field
            why = err.get("ctx", {}).get("error", "cannot be decoded")
            loc, msg = "", f"the body is not valid JSON: {why} at character {loc}"
        elif not loc and err.get("type") == "missing":
            msg = "a JSON body is required"
        parts.append(f"{loc}: {msg}" if loc else msg)
        details.append({"field": loc, "message": msg})
    return "; ".join(parts) or "invalid request", details


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path; Starlette's 405 names one route's only."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def domain_error(request: Request, exc: ModelyardError) -> Response:
        return _error(request, exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, details = _validation_message(exc)
        return _error(request, 422, "INVALID_INPUT", message, details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = str(exc.detail)
        where = f"{request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":  # no route matched
            message = f"there is no endpoint {where}"
        elif exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
            message = f"{where} is not allowed; this path takes {headers['Allow']}"
        code = codes.get(exc.status_code, "HTTP_ERROR")
        if is_page(request) and exc.status_code == 404 and message.startswith("there is no"):
            message = f"there is no page at {request.url.path}"
        return _error(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return _error(
            request, 500, "INTERNAL_ERROR", "the server hit an unexpected error; see its log"
        )


def install_docs(app: FastAPI) -> None:
    """Interactive API docs at /docs, served from the installed swagger-ui-bundle package so
    they work with no internet access."""
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="modelyard API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: engine, schema (migrated on first start), stores and routes."""
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
    if settings.auto_migrate:
        ensure_schema(engine)
    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Tracking, evaluation, review, deployment and health of ML models.",
        docs_url=None,
    )
    app.state.settings = settings
    app.state.store = Store(engine)
    app.state.artifacts = make_artifact_store(settings)
    app.state.plugins = make_plugins()
    install_error_handlers(app)
    app.include_router(api_v1)
    install_docs(app)
    install_web(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
