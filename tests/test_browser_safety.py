"""Pages of other sites, open in the browser of someone running modelyard, can neither change
anything (403 cross-site, 415 for bodies of undeclared types) nor reach the server under
another name (400 for an unlisted Host); pages run no inline script (Content-Security-Policy),
and uploaded HTML or SVG never opens as a page of the portal."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from modelyard.demo import build_demo
from modelyard.sdk.client import Client
from modelyard.settings import Settings
from tests.conftest import in_process_client
from tests.helpers import API, assert_error, new_run
from tests.team import csrf_of

BATCH = {"metrics": [{"key": "loss", "value": 0.5, "step": 1}], "params": {"lr": "0.1"}}
ARROW = "application/vnd.apache.arrow.stream"


def _parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"y_true": [0, 1, 1, 0], "y_score": [0.1, 0.8, 0.7, 0.3]}), buf)
    return buf.getvalue()


def _nothing_logged(api: httpx.Client, run_id: str) -> None:
    run = api.get(f"{API}/runs/{run_id}").json()
    assert (run["metrics"], run["params"], run["tags"]) == ({}, {}, {})


def _upload_form(api: httpx.Client, run_id: str, csrf: str = "", **headers: str) -> httpx.Response:
    return api.post(
        f"/runs/{run_id}/evaluations",
        files={"predictions": ("preds.parquet", _parquet())},
        data={"dataset": "holdout", **({"csrf_token": csrf} if csrf else {})},
        headers=headers,
    )


# --- 415: bodies of types the route does not declare ------------------------------------


def test_a_text_plain_form_cannot_pass_for_a_json_batch(api: httpx.Client) -> None:
    run_id = new_run(api)
    resp = api.post(
        f"{API}/runs/{run_id}/batch",
        content=json.dumps(BATCH),
        headers={"content-type": "text/plain"},
    )
    message = assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json or application/vnd.apache.arrow.stream" in message
    assert "text/plain" in message
    assert resp.json()["error"]["details"] == {"accepted": ["application/json", ARROW]}
    _nothing_logged(api, run_id)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a no-cors fetch of an untyped body: application/octet-stream to HTTP
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
    ],
)
def test_bodies_no_route_declares_are_refused(api: httpx.Client, headers: dict[str, str]) -> None:
    run_id = new_run(api)
    body = json.dumps(BATCH).encode()
    resp = api.post(f"{API}/runs/{run_id}/batch", content=body, headers=headers)
    assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    tags = api.post(f"{API}/runs/{run_id}/tags", content=b'{"tags": {"a": "b"}}', headers=headers)
    assert "takes a body of type application/json;" in assert_error(tags, 415)
    _nothing_logged(api, run_id)


def test_declared_types_pass_with_their_parameters(api: httpx.Client) -> None:
    run_id = new_run(api)
    resp = api.post(
        f"{API}/runs/{run_id}/batch",
        content=json.dumps(BATCH),
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert resp.status_code == 204, resp.text
    assert api.get(f"{API}/runs/{run_id}").json()["params"] == {"lr": "0.1"}


def test_a_route_without_a_body_refuses_one(api: httpx.Client) -> None:
    run_id = new_run(api)
    api.post(f"{API}/runs/{run_id}/tags", json={"tags": {"a": "b"}})
    plain = {"content-type": "text/plain"}
    resp = api.request("DELETE", f"{API}/runs/{run_id}/tags/a", content=b"x", headers=plain)
    assert "takes no body" in assert_error(resp, 415)
    assert api.delete(f"{API}/runs/{run_id}/tags/a").status_code == 204


def test_artifact_uploads_take_any_type(api: httpx.Client) -> None:
    run_id = new_run(api)
    for path, headers in [("a.txt", {"content-type": "text/plain"}), ("b.bin", {})]:
        resp = api.put(f"{API}/runs/{run_id}/artifacts/{path}", content=b"hi", headers=headers)
        assert resp.status_code == 201, resp.text


def test_the_portal_upload_form_refuses_a_text_plain_post(api: httpx.Client) -> None:
    run_id = new_run(api)
    resp = api.post(
        f"/runs/{run_id}/evaluations",
        content=b"dataset=holdout",
        headers={"content-type": "text/plain"},
    )
    assert resp.status_code == 415
    assert resp.headers["content-type"].startswith("text/html")
    assert "takes a body of type multipart/form-data" in resp.text
    assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []


def test_the_api_document_names_415_and_403(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    batch = spec["paths"]["/api/v1/runs/{run_id}/batch"]["post"]["responses"]
    assert "application/json or application/vnd.apache.arrow.stream" in batch["415"]["description"]
    assert "403" in batch
    tags = spec["paths"]["/api/v1/runs/{run_id}/tags"]["post"]["responses"]
    assert "application/json" in tags["415"]["description"]
    upload = spec["paths"]["/api/v1/runs/{run_id}/artifacts/{path}"]["put"]
    assert "415" not in upload["responses"]  # any type is an artifact
    assert "415" not in spec["paths"]["/api/v1/runs/{run_id}"]["get"]["responses"]


# --- 403: writes sent by pages of other sites ----------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://localhost:8000"},  # another port is another origin
        {"origin": "null"},  # a sandboxed frame or a file:// page
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://localhost", "sec-fetch-site": "same-origin", "host": "127.0.0.1"},
    ],
)
def test_writes_from_other_sites_are_refused(api: httpx.Client, headers: dict[str, str]) -> None:
    run_id = new_run(api)
    resp = api.post(f"{API}/runs/{run_id}/batch", json=BATCH, headers=headers)
    message = assert_error(resp, 403, "FORBIDDEN")
    assert "pages of other sites may not change anything here" in message
    _nothing_logged(api, run_id)
    page = _upload_form(api, run_id, **headers)
    assert page.status_code == 403
    assert "Refused" in page.text
    assert "pages of other sites may not change anything here" in page.text
    assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://localhost", "sec-fetch-site": "same-origin"},  # the portal itself
        {"sec-fetch-site": "none"},  # typed by the user
        {},  # not a browser: the SDK, curl
    ],
)
def test_writes_from_the_server_itself_pass(api: httpx.Client, headers: dict[str, str]) -> None:
    """The portal's own pages carry their CSRF token on every write (htmx sends it as a
    header, forms as a field); clients that are not browsers need none."""
    run_id = new_run(api)
    token = csrf_of(api.get("/").text) if headers else ""
    sent = {**headers, "x-csrf-token": token} if token else headers
    assert api.post(f"{API}/runs/{run_id}/batch", json=BATCH, headers=sent).status_code == 204
    assert _upload_form(api, run_id, csrf=token, **headers).status_code == 303


def test_a_browser_write_without_the_pages_token_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api)
    own = {"origin": "http://localhost", "sec-fetch-site": "same-origin"}
    api.get("/")  # the browser holds the portal's CSRF cookie, but not the page's token
    for token in (None, "0" * 64):
        sent = {**own, "x-csrf-token": token} if token else own
        resp = api.post(f"{API}/runs/{run_id}/batch", json=BATCH, headers=sent)
        assert "CSRF token" in assert_error(resp, 403), token
        assert _upload_form(api, run_id, csrf=token or "", **own).status_code == 403
    _nothing_logged(api, run_id)


def test_reads_from_other_sites_are_answered(api: httpx.Client) -> None:
    resp = api.get(f"{API}/projects", headers={"origin": "http://evil.example"})
    assert resp.status_code == 200


def test_listed_origins_may_write(app_with: Callable[..., FastAPI]) -> None:
    app = app_with(allowed_origins="http://localhost:8888, https://Notebooks.example.com/")
    with in_process_client(app) as api:
        run_id = new_run(api)
        for origin in ("http://localhost:8888", "https://notebooks.example.com:443"):
            headers = {"origin": origin, "sec-fetch-site": "same-site"}
            resp = api.post(f"{API}/runs/{run_id}/tags", json={"tags": {"a": "b"}}, headers=headers)
            assert resp.status_code == 204, resp.text
        other = {"origin": "http://localhost:8889"}
        resp = api.post(f"{API}/runs/{run_id}/tags", json={"tags": {"a": "c"}}, headers=other)
        assert_error(resp, 403)


# --- 400: host names the server does not answer --------------------------------------------


def test_an_unlisted_host_name_is_not_answered(api: httpx.Client) -> None:
    message = assert_error(
        api.get(f"{API}/projects", headers={"host": "evil.example"}), 400, "HOST_NOT_ALLOWED"
    )
    assert "'evil.example'" in message
    assert "MODELYARD_ALLOWED_HOSTS" in message
    page = api.get("/", headers={"host": "evil.example:5170"})
    assert page.status_code == 400
    assert "MODELYARD_ALLOWED_HOSTS" in page.text
    assert api.get("/static/x/modelyard.css", headers={"host": "evil.example"}).status_code == 400
    assert api.get("/", headers={"host": "localhost.evil.example"}).status_code == 400


@pytest.mark.parametrize("host", ["localhost", "localhost:5170", "127.0.0.1:80", "[::1]:5170"])
def test_loopback_names_are_answered_in_local_mode(api: httpx.Client, host: str) -> None:
    assert api.get(f"{API}/projects", headers={"host": host}).status_code == 200


def test_listed_host_names_are_answered(app_with: Callable[..., FastAPI]) -> None:
    app = app_with(allowed_hosts="modelyard.example.com,*.corp.example")
    with in_process_client(app) as api:
        for host in ("modelyard.example.com", "ml.corp.example:8443", "localhost"):
            assert api.get(f"{API}/projects", headers={"host": host}).status_code == 200, host
        assert api.get(f"{API}/projects", headers={"host": "corp.example"}).status_code == 400


def test_a_server_on_another_address_answers_that_address_and_listed_names() -> None:
    settings = Settings(host="10.0.0.5", secret_key="s" * 40, allowed_hosts="ml.example.com")
    assert settings.answered_hosts == ["10.0.0.5", "ml.example.com"]
    assert Settings().answered_hosts == ["localhost", "127.0.0.1", "::1"]
    assert Settings(allowed_hosts="[::1],Example.com").allowed_hosts == ["::1", "example.com"]


def test_serving_on_every_address_needs_the_names_to_answer() -> None:
    with pytest.raises(ValidationError, match="MODELYARD_ALLOWED_HOSTS"):
        Settings(host="0.0.0.0", secret_key="s" * 40)
    assert Settings(host="0.0.0.0", secret_key="s" * 40, allowed_hosts="*").answered_hosts == ["*"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_hosts", "http://example.com"),
        ("allowed_hosts", "example.com:80"),
        ("allowed_hosts", "*bad*.com"),
        ("allowed_origins", "example.com"),
        ("allowed_origins", "https://example.com/path"),
        ("allowed_origins", "ftp://example.com"),
    ],
)
def test_malformed_names_and_origins_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="is not a"):
        Settings(**{field: value})


def test_the_local_mode_client_still_works(tmp_path: Path) -> None:
    with Client(str(tmp_path)) as client:
        run = client.start_run("p")
        run.log_metric("loss", 0.5, step=1)
        run.end()
        assert client.get_run(run.id).metrics["loss"].value == 0.5


# --- pages: security headers, no inline script; artifacts as files -------------------------


def test_pages_carry_a_policy_without_inline_script(api: httpx.Client) -> None:
    for path in ("/", "/docs", f"{API}/projects", "/no-such-page"):
        headers = api.get(path).headers
        policy = dict(
            part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'", path
        assert policy["frame-ancestors"] == "'none'"
        assert "unsafe" not in policy["default-src"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize(
    ("path", "media", "disposition"),
    [
        ("report.html", "text/html", 'attachment; filename="report.html"'),
        ("plot.svg", "image/svg+xml", 'attachment; filename="plot.svg"'),
        ("page.xhtml", "application/xhtml+xml", 'attachment; filename="page.xhtml"'),
        ("curve.png", "image/png", 'inline; filename="curve.png"'),
        ("notes.txt", "text/plain; charset=utf-8", 'inline; filename="notes.txt"'),
        ('r"ep ort.html', "text/html", "attachment; filename*=utf-8''r%22ep%20ort.html"),
    ],
)
def test_uploaded_html_and_svg_download_as_files(
    api: httpx.Client, path: str, media: str, disposition: str
) -> None:
    run_id = new_run(api)
    body = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    url = f"{API}/runs/{run_id}/artifacts/{path}"
    assert api.put(url, content=body, headers={"content-type": media}).status_code == 201
    got = api.get(url)
    assert got.headers["content-disposition"] == disposition
    assert got.headers["content-security-policy"].startswith("sandbox;")
    assert got.headers["x-content-type-options"] == "nosniff"


def test_an_svg_preview_is_an_image_not_a_document(api: httpx.Client) -> None:
    run_id = new_run(api)
    url = f"{API}/runs/{run_id}/artifacts/plot.svg"
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    api.put(url, content=svg, headers={"content-type": "image/svg+xml"})
    page = api.get(f"/runs/{run_id}/artifacts/plot.svg").text
    assert f'<img class="preview-image" src="{url}"' in page
    for element in ("<iframe", "<object", "<embed"):
        assert element not in page


class _Scripts(HTMLParser):
    """Inline scripts, inline event handlers and javascript: URLs of a page, and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.links: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}={value}>")
            if name in ("href", "hx-get") and value:
                self.links.append(value)
        data = named.get("type") in ("application/json",)
        self._in_script = tag == "script" and "src" not in named and not data

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"<script>{data.strip()[:80]}")


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The demo workspace (it trains real models), built once for the module, on SQLite."""
    from modelyard.app import create_app

    data = tmp_path_factory.mktemp("demo")
    with Client(str(data)) as client:
        build_demo(client)
    app = create_app(Settings(data_dir=data))
    with in_process_client(app) as api:
        yield api
    app.state.store.engine.dispose()


def test_no_demo_page_runs_inline_script(demo_api: httpx.Client) -> None:
    seen: set[str] = set()
    todo = ["/", "/docs"]
    found: list[str] = []
    while todo and len(seen) < 400:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        resp = demo_api.get(path)
        if not resp.headers.get("content-type", "").startswith("text/html"):
            continue
        assert (
            "'unsafe-inline'"
            not in resp.headers["content-security-policy"].split("script-src")[1].split(";")[0]
        )
        parser = _Scripts()
        parser.feed(resp.text)
        found += [f"{path}: {snippet}" for snippet in parser.inline]
        for link in parser.links:
            url = urlsplit(urljoin(f"http://localhost{path}", link))
            target = url.path + (f"?{url.query}" if url.query else "")
            if url.netloc == "localhost" and not url.path.startswith(("/api/", "/static/")):
                todo.append(target)
    assert len(seen) > 40, sorted(seen)  # the crawl reached runs, evaluations, models...
    assert any(p.startswith("/evaluations/") for p in seen)
    assert any(p.startswith("/runs/") for p in seen)
    assert not found, "\n".join(found)


def test_serve_hands_its_address_to_the_app_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn builds the app from the environment: it must know the address it serves on."""
    import uvicorn
    from click.testing import CliRunner

    from modelyard.cli import main

    for name in ("HOST", "PORT", "DATA_DIR", "DATABASE_URL"):  # restored after the test
        monkeypatch.setenv(f"MODELYARD_{name}", "")
        monkeypatch.delenv(f"MODELYARD_{name}")
    monkeypatch.setenv("MODELYARD_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("MODELYARD_ALLOWED_HOSTS", "ml.example.com")
    started: list[Settings] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(Settings()))
    args = ["serve", "--host", "10.0.0.5", "--port", "6001", "--data-dir", str(tmp_path)]
    # Beyond loopback it serves only once a site admin exists.
    admin = ["users", "add", "ada", "--admin", "--password-stdin", "--data-dir", str(tmp_path)]
    assert CliRunner().invoke(main, admin, input="a long password\n").exit_code == 0
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert started[0].answered_hosts == ["10.0.0.5", "ml.example.com"]
    assert started[0].port == 6001


def test_cors_is_closed_unless_origins_are_listed(app_with: Callable[..., FastAPI]) -> None:
    notebook = {"origin": "http://localhost:8888", "access-control-request-method": "GET"}
    with in_process_client(app_with()) as api:
        resp = api.options(f"{API}/projects", headers=notebook)
        assert "access-control-allow-origin" not in resp.headers
        assert (
            "access-control-allow-origin"
            not in api.get(f"{API}/projects", headers=notebook).headers
        )
    with in_process_client(app_with(cors_origins="http://localhost:8888")) as api:
        preflight = api.options(f"{API}/projects", headers=notebook)
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:8888"
        assert "access-control-allow-credentials" not in preflight.headers
        answer = api.get(f"{API}/projects", headers={"origin": "http://localhost:8888"})
        assert answer.headers["access-control-allow-origin"] == "http://localhost:8888"
        other = api.get(f"{API}/projects", headers={"origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
