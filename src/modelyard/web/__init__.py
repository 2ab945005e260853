"""The portal: server-rendered pages over the same services as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from modelyard.web.assets import default_assets
from modelyard.web.pages import router as pages_router
from modelyard.web.templating import make_environment, render

# Paths that belong to the JSON API and tools; every other path is a page.
NOT_PAGES = ("/api/", "/charts/", "/docs", "/openapi.json", "/healthz", "/static/swagger/")


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A friendly page with the reason; never a stack trace."""
    context = {"status": status, "title": title, "message": message}
    if request.headers.get("hx-request"):  # an htmx swap shows the reason in place
        return render(request, "_error_fragment.html", context, status=200)
    return render(request, "error.html", context, status=status)


def install_web(app: FastAPI) -> None:
    plugins = app.state.plugins
    assets = default_assets(plugins.static_dirs())
    app.state.assets = assets
    app.state.templates = make_environment(assets, plugins.template_dirs())

    @app.get("/static/{digest}/{name:path}", include_in_schema=False)
    def static(request: Request, digest: str, name: str) -> Response:
        return assets.response(request, digest, name)

    app.include_router(pages_router)
