"""The built-in API and portal, registered through the same hook as plugins' routes."""

from __future__ import annotations

from modelyard.api.v1 import router as api_v1
from modelyard.hookspecs import hookimpl
from modelyard.routing import Routes
from modelyard.web.pages import chart_router
from modelyard.web.pages import router as pages


@hookimpl
def register_routes() -> list[Routes]:
    return [
        Routes(api_v1, errors="json"),
        Routes(chart_router, errors="json"),  # chart data for the pages, as JSON
        Routes(pages, errors="page"),
    ]
