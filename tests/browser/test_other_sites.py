"""A page of another site, open in the browser of someone running modelyard, tries what a
browser lets any page do: a text/plain form posting JSON, a no-cors fetch, a multipart form to
the portal's upload, and reading the server under its own name (DNS rebinding). Nothing it
sends is written, and the server does not answer the rebound name."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from modelyard.app import create_app
from modelyard.settings import Settings
from tests.browser.conftest import CHROMIUM, FLAGS
from tests.conftest import ServerThread

API = "/api/v1"
EVIL = "evil.example"  # resolved to 127.0.0.1 by this test's browser, as a rebinding would

ATTACK = """<!doctype html>
<html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="plain" method="post" enctype="text/plain" target="sink1"
      action="{server}/api/v1/runs/{run_id}/batch">
  <input name='{{"metrics": [{{"key": "pwned", "value": 1, "step": 0}}], "params": {{"x": "'
         value='y"}}, "tags": {{"pwned": "form"}}}}'>
</form>
<form id="upload" method="post" enctype="multipart/form-data" target="sink2"
      action="{server}/runs/{run_id}/evaluations">
  <input type="file" name="predictions"><input name="dataset" value="pwned">
</form>
<script>
window.framed = 0;
window.fetched = 0;
document.querySelectorAll("iframe").forEach((f) => f.addEventListener("load", () => {{
  window.framed += 1;
}}));
const finished = () => {{ window.fetched += 1; }};
const batch = JSON.stringify({{metrics: [{{key: "pwned", value: 2, step: 1}}],
                              tags: {{pwned: "fetch"}}}});
fetch("{server}/api/v1/runs/{run_id}/batch", {{method: "POST", mode: "no-cors",
      headers: {{"Content-Type": "text/plain"}}, body: batch}}).finally(finished);
fetch("{server}/api/v1/runs/{run_id}/batch", {{method: "POST", mode: "no-cors",
      body: new Blob([batch])}}).finally(finished);
const csv = "y_true,y_score\\n0,0.1\\n1,0.9\\n1,0.8\\n0,0.2\\n";
const files = new DataTransfer();
files.items.add(new File([csv], "preds.csv", {{type: "text/csv"}}));
document.querySelector("#upload input[type=file]").files = files.files;
document.getElementById("plain").submit();
document.getElementById("upload").submit();
</script>
</body></html>
"""


class _AttackPage:
    """An HTTP server on another loopback port serving one page."""

    def __init__(self) -> None:
        self.html = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A modelyard server on an empty workspace (local mode, on 127.0.0.1)."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("target")))
    with ServerThread(app) as running:
        yield running.url
    app.state.store.engine.dispose()


@pytest.fixture(scope="module")
def attacker() -> Iterator[_AttackPage]:
    page = _AttackPage()
    yield page
    page.close()


@pytest.fixture(scope="module")
def rebinding_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium resolving evil.example to this machine, as DNS rebinding makes it do."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; `apt-get install chromium`")
    rules = f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, rules])
    yield browser
    browser.close()


@pytest.fixture
def tab(rebinding_browser: Browser) -> Iterator[Page]:
    context = rebinding_browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.mark.parametrize("attacker_host", ["127.0.0.1", EVIL], ids=["other-port", "other-site"])
def test_a_page_of_another_origin_writes_nothing(
    tab: Page, server: str, attacker: _AttackPage, attacker_host: str
) -> None:
    with httpx.Client(base_url=server) as api:
        run = api.post(f"{API}/runs", json={"project": "victim"})
        assert run.status_code == 201, run.text
        run_id = run.json()["run_id"]
        attacker.html = ATTACK.format(server=server, run_id=run_id)
        tab.goto(f"http://{attacker_host}:{attacker.port}/")
        tab.wait_for_function("window.fetched >= 2")  # both fetches settled
        # Both forms answered (a 204 would load no frame: then give it time).
        with contextlib.suppress(PlaywrightTimeout):
            tab.wait_for_function("window.framed >= 2", timeout=5_000)
        got = api.get(f"{API}/runs/{run_id}").json()
        assert (got["metrics"], got["params"], got["tags"]) == ({}, {}, {})
        assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []


def test_the_server_does_not_answer_a_rebound_name(tab: Page, server: str) -> None:
    port = server.rsplit(":", 1)[1]
    resp = tab.goto(f"http://{EVIL}:{port}/")
    assert resp is not None
    assert resp.status == 400
    expect(tab.locator("body")).to_contain_text("MODELYARD_ALLOWED_HOSTS")
    read = tab.evaluate(f"fetch('{API}/projects').then((r) => r.status)")
    assert read == 400
    assert tab.goto(f"http://localhost:{port}/") is not None  # its own names still work
    expect(tab.get_by_role("heading", name="Welcome")).to_be_visible()


SVG = (
    b"<svg xmlns='http://www.w3.org/2000/svg' width='120' height='60'>"
    b"<rect width='120' height='60' fill='teal'/><script>document.title='ran'</script></svg>"
)


def test_an_uploaded_svg_previews_as_an_image_and_opens_as_a_download(
    tab: Page, server: str
) -> None:
    with httpx.Client(base_url=server) as api:
        run_id = api.post(f"{API}/runs", json={"project": "svg"}).json()["run_id"]
        url = f"{API}/runs/{run_id}/artifacts/plot.svg"
        assert api.put(url, content=SVG, headers={"content-type": "image/svg+xml"}).is_success
    tab.goto(f"{server}/runs/{run_id}/artifacts/plot.svg")
    image = tab.locator("img.preview-image")
    tab.wait_for_function("document.querySelector('img.preview-image').complete")
    assert image.evaluate("(img) => img.naturalWidth") == 120  # shown, as an image
    with tab.expect_download() as download:  # opened directly: a file to save, not a page
        tab.evaluate(f"location.href = '{url}'")
    assert download.value.suggested_filename == "plot.svg"
    assert tab.title() != "ran"
