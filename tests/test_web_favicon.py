"""Every page names the portal's icon, and the server serves it."""

from __future__ import annotations

import re

import httpx

from tests.helpers import get_page


def test_pages_link_the_favicon_and_it_is_served(api: httpx.Client) -> None:
    icons: set[str] = set()
    for path in ("/", "/projects", "/models", "/no-such-page"):
        doc = get_page(api, path, status=404 if path == "/no-such-page" else 200)
        found = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', doc)
        assert len(found) == 1, path
        icons |= set(found)
    assert len(icons) == 1  # one icon, named by every page
    resp = api.get(icons.pop())
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("image/svg+xml")
    assert resp.text.lstrip().startswith("<svg")
