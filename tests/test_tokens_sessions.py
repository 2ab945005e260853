"""Tokens and sessions as their holders meet them: a token works until the second it expires,
a revoked one stops within a second in every server process, signing out or changing the
password ends sessions everywhere, failed sign-ins are throttled, no secret is ever written
down, the session cookie is locked down, and a trusted proxy's single sign-on header is
taken from that proxy only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.app import create_app
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.sdk.transport import InProcessTransport
from modelyard.services.access import accounts
from tests.conftest import in_process_client
from tests.helpers import assert_error, run_async
from tests.module_team import API, Workspace, module_workspace
from tests.team import PASSWORD, csrf_of

LIVE = (200, 201, 204)


@pytest.fixture(scope="module")
def workspace(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str | None
) -> Iterator[Workspace]:
    with module_workspace(tmp_path_factory.mktemp("tokens"), pg_template) as built:
        yield built


def now_s() -> float:
    return time.time_ns() / 1e9


def sleep_until(moment_s: float) -> None:
    time.sleep(max(0.0, moment_s - now_s()))


def bearer(app: FastAPI, token: str) -> httpx.Client:
    client = in_process_client(app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def poll_until_refused(call: Callable[[], httpx.Response], since_s: float, most_s: float) -> None:
    """Calls ``call`` until it is refused (401); every call still served must have been sent
    within ``most_s`` of ``since_s`` (it is checked after it is sent, so no later)."""
    while True:
        sent = now_s() - since_s
        resp = call()
        if resp.status_code == 401:
            return
        assert resp.status_code in LIVE, resp.text
        assert sent < most_s, f"a request sent {sent:.3f} s later was still served"
        time.sleep(0.02)


class FromAddress(httpx.BaseTransport):
    """The app in-process, the requests coming from ``address``."""

    def __init__(self, app: FastAPI, address: str) -> None:
        self.asgi = httpx.ASGITransport(app=app, client=(address, 40000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            resp = await self.asgi.handle_async_request(inner)
            content = b"".join([chunk async for chunk in resp.aiter_raw()])
            return httpx.Response(resp.status_code, headers=resp.headers, content=content)

        return run_async(call)


def client_from(app: FastAPI, address: str) -> httpx.Client:
    return httpx.Client(transport=FromAddress(app, address), base_url="http://localhost")


def signed_in(app: FastAPI, user: str, base_url: str = "http://localhost") -> httpx.Client:
    client = httpx.Client(transport=InProcessTransport(app), base_url=base_url)
    resp = client.post("/sign-in", data={"username": user, "password": PASSWORD})
    assert resp.status_code == 303, resp.text
    client.headers["X-CSRF-Token"] = csrf_of(client.get("/").text)
    return client


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_works_until_the_second_it_expires(workspace: Workspace) -> None:
    team = workspace.team
    made = accounts.create_token(
        team.store, user="viewer", name="two seconds", expires_in_days=2 / 86_400, actor="t"
    )
    assert made.info.expires_at is not None
    expires_s = made.info.expires_at / 1000
    viewer = bearer(team.app, made.secret)
    run = f"{API}/runs/{team.run_id}"
    assert viewer.get(run).status_code == 200
    sleep_until(expires_s - 0.3)
    assert viewer.get(run).status_code == 200
    sleep_until(expires_s + 0.02)
    message = assert_error(viewer.get(run), 401, "UNAUTHENTICATED")
    assert "expired" in message
    viewer.close()


def test_a_revoked_token_stops_within_a_second_in_every_server_process(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Two apps on one database stand for two server processes: the token is revoked through
    one while the other has it cached."""
    team = workspace.team
    settings = team.app.state.settings
    second = create_app(settings.model_copy(update={"data_dir": tmp_path / "second"}))
    made = accounts.create_token(team.store, user="editor", name="soon revoked", actor="t")
    in_first, in_second = bearer(team.app, made.secret), bearer(second, made.secret)
    run = f"{API}/runs/{team.run_id}"
    try:
        assert in_first.get(run).status_code == 200
        assert in_second.get(run).status_code == 200  # cached there now
        accounts.revoke_token(team.store, token_id=made.info.id, actor="admin")
        team.app.state.access.forget()  # what the revoking process does for itself
        revoked_s = now_s()
        assert_error(in_first.get(run), 401, "UNAUTHENTICATED")
        poll_until_refused(lambda: in_second.get(run), revoked_s, most_s=1.0)
        assert "revoked" in assert_error(in_second.get(run), 401, "UNAUTHENTICATED")
    finally:
        in_first.close()
        in_second.close()
        second.state.store.engine.dispose()


# --- sessions -----------------------------------------------------------------------------------


def test_signing_out_ends_the_session_in_every_tab(workspace: Workspace) -> None:
    team = workspace.team
    first = signed_in(team.app, "editor")
    second = httpx.Client(transport=InProcessTransport(team.app), base_url="http://localhost")
    second.cookies.update(first.cookies)  # another tab of the same browser
    page = f"/runs/{team.run_id}"
    assert second.get(page).status_code == 200
    assert first.post("/sign-out").status_code == 303
    away = second.get(page)
    assert away.status_code == 303
    assert away.headers["location"] == f"/sign-in?next=%2Fruns%2F{team.run_id}"
    # The stale cookie does not keep the tab from the sign-in page, nor from signing in.
    assert second.get(away.headers["location"]).status_code == 200
    again = second.post("/sign-in", data={"username": "editor", "password": PASSWORD})
    assert again.status_code == 303
    assert second.get(page).status_code == 200
    first.close()
    second.close()


def test_a_password_change_ends_the_sessions_signed_in_before_it(workspace: Workspace) -> None:
    team = workspace.team
    browser = signed_in(team.app, "reviewer")
    page = f"/runs/{team.run_id}"
    assert browser.get(page).status_code == 200
    # The same password again: a change all the same, and the team's sign-ins keep working.
    accounts.set_password(team.store, name="reviewer", password=PASSWORD, actor="reviewer")
    changed_s = now_s()

    def visit() -> httpx.Response:
        resp = browser.get(page)
        if resp.status_code == 303 and resp.headers["location"].startswith("/sign-in?"):
            return httpx.Response(401)
        return resp

    poll_until_refused(visit, changed_s, most_s=1.0)
    assert_error(browser.get(f"{API}/runs/{team.run_id}"), 401, "UNAUTHENTICATED")
    fresh = signed_in(team.app, "reviewer")
    assert fresh.get(page).status_code == 200
    browser.close()
    fresh.close()


def test_failed_sign_ins_are_throttled_per_user_and_per_address(workspace: Workspace) -> None:
    store = workspace.team.store
    app = workspace.team.app
    for name in ("throttled", "bystander"):
        accounts.add_user(store, actor="t", name=name, password=PASSWORD)

    def attempt(address: str, user: str, password: str) -> httpx.Response:
        with client_from(app, address) as client:
            return client.post("/sign-in", data={"username": user, "password": password})

    for _ in range(5):
        assert attempt("10.0.0.1", "throttled", "wrong password").status_code == 401
    # The sixth, with the right password and from elsewhere: the user is throttled.
    sixth = attempt("10.0.0.2", "throttled", PASSWORD)
    assert sixth.status_code == 429
    assert "too many failed sign-ins for this user" in sixth.text
    # One address trying many names is throttled too, for every name.
    for n in range(20):
        assert attempt("10.0.0.3", f"guess-{n}", "wrong password").status_code == 401
    from_there = attempt("10.0.0.3", "bystander", PASSWORD)
    assert from_there.status_code == 429
    assert "too many failed sign-ins for this address" in from_there.text
    assert attempt("10.0.0.4", "bystander", PASSWORD).status_code == 303


def test_the_session_cookie_is_locked_down(workspace: Workspace) -> None:
    app = workspace.team.app
    for base_url, secure in (("https://localhost", True), ("http://localhost", False)):
        with httpx.Client(transport=InProcessTransport(app), base_url=base_url) as client:
            resp = client.post("/sign-in", data={"username": "viewer", "password": PASSWORD})
            assert resp.status_code == 303
            cookie = resp.headers["set-cookie"]
            flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert "httponly" in flags
            assert "samesite=lax" in cookie.lower()
            assert ("secure" in flags) is secure, cookie


# --- secrets are never written down -----------------------------------------------------------


def database_text(store: Store) -> str:
    """Every value of every table, as text."""
    parts = []
    with store.read() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    parts.append(text)
    return "\n".join(parts)


def test_tokens_and_session_secrets_appear_in_no_log_page_or_record(
    workspace: Workspace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = workspace.team
    caplog.set_level(logging.DEBUG)
    made = accounts.create_token(team.store, user="editor", name="secret keeper", actor="t")
    secret = made.secret.split("_", 2)[2]
    client = bearer(team.app, made.secret)
    answers = [
        client.post(f"{API}/runs", json={"project": "alpha", "name": "kept"}),
        client.patch(f"{API}/runs/{team.run_id}", json={"name": "renamed by token"}),
        client.post(f"{API}/runs/{team.run_id}/tags", json={"tags": {"by": "token"}}),
        client.get(f"/runs/{team.run_id}"),
        client.post(f"{API}/runs/search", json={"project": "alpha", "filter": "((("}),
    ]
    # A server error while the token is in hand: its log has the traceback, not the token.
    from modelyard.services import runs

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(runs, "get_run", broken)
    answers.append(client.get(f"{API}/runs/{team.run_id}"))
    assert answers[-1].status_code == 500
    monkeypatch.undo()
    # Refusals: a token of the wrong shape, a wrong secret, a revoked one, and a page.
    wrong = made.secret[:-4] + "AAAA"
    answers.append(bearer(team.app, wrong).get(f"{API}/runs/{team.run_id}"))
    answers.append(bearer(team.app, wrong).get(f"/runs/{team.run_id}"))
    answers.append(client.get(f"{API}/runs/{team.run_id}", headers={"Authorization": secret}))
    accounts.revoke_token(team.store, token_id=made.info.id, actor="t")
    team.app.state.access.forget()
    answers.append(client.get(f"{API}/runs/{team.run_id}"))
    assert [a.status_code for a in answers[:5]] == [201, 200, 204, 200, 400]
    assert [a.status_code for a in answers[-4:]] == [401, 303, 401, 401]
    browser = signed_in(team.app, "owner")
    session = browser.cookies["modelyard_session"].rsplit(".", 1)[0]
    answers.append(browser.patch(f"{API}/runs/{team.run_id}", json={"name": "by browser"}))
    assert answers[-1].status_code == 200
    browser.close()
    client.close()
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r} {vars(r)!r}" for r in caplog.records
    )
    assert caplog.records, "the requests logged nothing at all: the check would prove nothing"
    written = database_text(team.store)
    assert "renamed by token" in written  # the dump holds what the token's requests wrote
    for needle in (secret, wrong.split("_", 2)[2], session):
        assert needle not in logged
        assert needle not in written
        for answer in answers:
            assert needle not in answer.text
            assert needle not in str(answer.headers.get("location", ""))


# --- single sign-on behind a proxy ---------------------------------------------------------------


def test_the_proxy_header_signs_in_only_from_a_trusted_proxy(
    app_with: Callable[..., FastAPI],
) -> None:
    # The in-process transport's requests come from 127.0.0.1 (httpx's ASGI transport).
    app = app_with(proxy_user_header="X-Forwarded-Email", trusted_proxies=["127.0.0.1"])
    store: Store = app.state.store
    accounts.add_user(store, actor="t", name="root", password=PASSWORD, admin=True)
    app.state.access.forget()
    header = {"X-Forwarded-Email": "ann.lee@example.com"}
    with in_process_client(app) as proxied:
        made = proxied.post(f"{API}/runs", json={"project": "sso"}, headers=header)
        assert made.status_code == 201, made.text
        assert made.json()["created_by"] == "ann.lee"
        assert proxied.get(f"{API}/runs/{made.json()['run_id']}", headers=header).status_code == 200
    user = accounts.get_user(store, name="ann.lee")
    assert user.email == "ann.lee@example.com"
    with store.read() as conn:
        actor, via = conn.execute(
            select(t.change_log.c.actor, t.change_log.c.via).order_by(t.change_log.c.id.desc())
        ).first()  # type: ignore[misc]
    assert actor == "ann.lee"
    assert via.split()[0] == "proxy"
    assert "ann.lee@example.com" in via  # the identity the proxy sent
    with client_from(app, "10.9.9.9") as elsewhere:
        forged = elsewhere.get(f"{API}/runs/{made.json()['run_id']}", headers=header)
        assert "MODELYARD_TRUSTED_PROXIES" in assert_error(forged, 403, "FORBIDDEN")
        root = {**header, "X-Forwarded-Email": "root"}
        assert_error(elsewhere.post(f"{API}/runs", json={"project": "x"}, headers=root), 403)
        assert_error(elsewhere.get(f"{API}/runs/{made.json()['run_id']}"), 401)
