"""The interactive API docs work with no internet access."""

from __future__ import annotations

import httpx


def test_docs_page_loads_its_assets_from_the_server(api: httpx.Client) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text  # nothing from a CDN
    assert "http://" not in page.text
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert asset in page.text
        got = api.get(asset)
        assert got.status_code == 200
        assert len(got.content) > 10_000
    spec = api.get("/openapi.json").json()
    assert "/api/v1/runs/search" in spec["paths"]
    assert "/api/v1/runs/{run_id}/batch" in spec["paths"]
