"""The portal: server-rendered pages over the same services as the JSON API."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelyard.authz import SESSION_COOKIE, Level, allow, readable_projects
from modelyard.routing import ErrorInfo
from modelyard.schemas import RunSearch
from modelyard.services import search
from modelyard.services.liveness import silent_for
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
RECENT_RUNS = 6
log = logging.getLogger("modelyard")


def way_back(request: Request) -> dict[str, Any]:
    """For a page that is not there: a search for what the address named, and recent runs."""
    last = unquote(request.url.path.rstrip("/").rpartition("/")[2])
    context: dict[str, Any] = {"guess": last if last.isprintable() else "", "recent": []}
    try:
        latest = RunSearch(order_by=["start_time desc"], page_size=RECENT_RUNS)
        readable = readable_projects(request)
        store = request.app.state.store
        context["recent"] = search.search_runs(store, req=latest, readable=readable).runs
    except Exception:  # the error page itself must not fail; it shows no recent runs then
        log.exception("recent runs for a not-found page")
    return context


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A friendly page with the reason; never a stack trace."""
    context: dict[str, Any] = {"status": status, "title": title, "message": message}
    if request.headers.get("hx-request"):  # an htmx swap shows the reason in place
        return render(request, "_error_fragment.html", context, status=200)
    if status == 404:
        context.update(way_back(request))
    return render(request, "error.html", context, status=status)


def page_errors(request: Request, error: ErrorInfo) -> Response:
    """The portal's error shape: a page (or an htmx fragment) with the reason. Someone not
    signed in is sent to the sign-in page, and back here after it."""
    if error.status == 401:
        return to_sign_in(request)
    message = f"there is no page at {request.url.path}" if error.no_route else error.message
    title = TITLES.get(error.status, "That did not work")
    response = error_page(request, error.status, title, message)
    response.headers.update(error.headers)
    return response


def to_sign_in(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in ("GET", "HEAD"):
        here = "/"
    target = "/sign-in?" + urlencode({"next": here})
    response: Response
    if request.headers.get("hx-request"):  # htmx follows HX-Redirect with a full page load
        response = Response(status_code=200, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if SESSION_COOKIE in request.cookies:  # it has ended: the browser may forget it
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def install_web(app: FastAPI) -> None:
    """Templates (the portal's and every plugin's) and content-hashed static files."""
    plugins = app.state.plugins
    assets = default_assets(plugins.static_dirs())
    app.state.assets = assets
    app.state.templates = make_environment(assets, plugins.template_dirs())
    # Whether a running run has been silent long enough to flag, as every page shows runs.
    stale_after_ms = int(app.state.settings.run_stale_after_seconds * 1000)
    app.state.templates.globals["silent_for"] = partial(silent_for, stale_after_ms=stale_after_ms)

    @app.get("/static/{digest}/{name:path}", include_in_schema=False)
    @allow(Level.PUBLIC)
    def static(request: Request, digest: str, name: str) -> Response:
        return assets.response(request, digest, name)
