"""The API reference page: the OpenAPI document in a vendored Swagger UI, offline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.authz import (
    Level,
    allow,
)
from modelyard.web.templating import render

router = APIRouter()


@router.get("/docs", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def api_docs(request: Request) -> HTMLResponse:
    openapi_url = request.app.openapi_url or "/openapi.json"
    return render(request, "docs.html", {"nav": "api", "openapi_url": openapi_url})
