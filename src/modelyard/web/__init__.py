"""The portal: server-rendered pages over the same services as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from modelyard.routing import ErrorInfo
from modelyard.web.assets import default_assets
from modelyard.web.templating import make_environment, render

TITLES = {
    400: "That request could not be understood",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    415: "That request could not be understood",
    422: "That request could not be understood",
    500: "Something went wrong",
}


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A friendly page with the reason; never a stack trace."""
    context = {"status": status, "title": title, "message": message}
    if request.headers.get("hx-request"):  # an htmx swap shows the reason in place
        return render(request, "_error_fragment.html", context, status=200)
    return render(request, "error.html", context, status=status)


def page_errors(request: Request, error: ErrorInfo) -> Response:
    """The portal's error shape: a page (or an htmx fragment) with the reason."""
    message = f"there is no page at {request.url.path}" if error.no_route else error.message
    title = TITLES.get(error.status, "That did not work")
    response = error_page(request, error.status, title, message)
    response.headers.update(error.headers)
    return response


def install_web(app: FastAPI) -> None:
    """Templates (the portal's and every plugin's) and content-hashed static files."""
    plugins = app.state.plugins
    assets = default_assets(plugins.static_dirs())
    app.state.assets = assets
    app.state.templates = make_environment(assets, plugins.template_dirs())

    @app.get("/static/{digest}/{name:path}", include_in_schema=False)
    def static(request: Request, digest: str, name: str) -> Response:
        return assets.response(request, digest, name)
