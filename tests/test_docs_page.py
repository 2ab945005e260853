"""The interactive API docs work with no internet access, on a viewer that reads OpenAPI 3.1."""

from __future__ import annotations

import re

import httpx


def test_docs_page_loads_its_assets_from_the_server(api: httpx.Client) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text  # nothing from a CDN
    assert "http://" not in page.text
    scripts = re.findall(r'src="(/static/[0-9a-f]{12}/[^"]+)"', page.text)
    styles = re.findall(r'href="(/static/[0-9a-f]{12}/[^"]+\.css)"', page.text)
    viewer = [u for u in scripts + styles if "swagger-ui-5." in u]
    assert len(viewer) == 2, viewer  # the bundle and its stylesheet, versioned in their names
    for url in scripts + styles:
        got = api.get(url)
        assert got.status_code == 200, url
    bundle = next(u for u in viewer if u.endswith(".js"))
    assert len(api.get(bundle).content) > 1_000_000
    # The document it reads is OpenAPI 3.1, which Swagger UI reads from version 5.
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/runs/search" in spec["paths"]
    assert "/api/v1/runs/{run_id}/batch" in spec["paths"]


def test_no_docs_page_reaches_for_a_cdn(api: httpx.Client) -> None:
    # FastAPI's ReDoc page loads its script from a CDN: it is not served.
    assert api.get("/redoc").status_code == 404
