"""A team workspace for access tests: one user per role in project "alpha", a site admin, an
outsider, a disabled user, and tokens of every kind.

The ``team`` fixture (in conftest) builds it on the test's app; ``team.api(who)``
is an in-process client sending that principal's Bearer token, ``team.browser(who)`` one
signed in through the sign-in page, with the session cookie and the page's CSRF token.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from modelyard.metadata.store import Store
from modelyard.services.access import accounts
from tests.conftest import in_process_client

PROJECT = "alpha"
OTHER = "beta"
PASSWORD = "correct horse battery"
ROLES = ("viewer", "editor", "reviewer", "owner")
# Principals that hold a token: every role, the admin, an outsider, and tokens that must fail.
PEOPLE = ("admin", *ROLES, "outsider", "disabled")
TOKENS = (*PEOPLE, "read-only", "expired", "revoked")


@dataclass
class Team:
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)
    run_id: str = ""  # a run in PROJECT
    other_run_id: str = ""  # a run in OTHER, where only the admin is a member
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def store(self) -> Store:
        store: Store = self.app.state.store
        return store

    def api(self, who: str | None) -> httpx.Client:
        """A client sending ``who``'s token (one of TOKENS), or none (anonymous)."""
        client = in_process_client(self.app)
        if who is not None:
            client.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        self.clients.append(client)
        return client

    def browser(self, who: str) -> httpx.Client:
        """A client signed in as ``who`` through the sign-in page, sending the CSRF token the
        portal's pages carry on its writes."""
        client = in_process_client(self.app)
        self.clients.append(client)
        resp = client.post("/sign-in", data={"username": who, "password": PASSWORD})
        assert resp.status_code == 303, resp.text
        client.headers["X-CSRF-Token"] = csrf_of(client.get("/").text)
        return client


def csrf_of(page: str) -> str:
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def build_team(app: FastAPI) -> Team:
    store: Store = app.state.store
    team = Team(app)
    local = in_process_client(app)  # before any user exists: local mode, the implicit user
    team.run_id = local.post("/api/v1/runs", json={"project": PROJECT, "name": "r1"}).json()[
        "run_id"
    ]
    team.other_run_id = local.post("/api/v1/runs", json={"project": OTHER}).json()["run_id"]
    local.close()
    for name in PEOPLE:
        accounts.add_user(store, actor="test", name=name, password=PASSWORD, admin=name == "admin")
    for role in ROLES:
        accounts.set_member(
            store, project=PROJECT, kind="user", name=role, role=role, actor="admin"
        )
    accounts.set_member(store, project=OTHER, kind="user", name="admin", role="owner", actor="t")
    for name in PEOPLE:
        team.tokens[name] = accounts.create_token(store, user=name, name=name, actor="t").secret
    team.tokens["read-only"] = accounts.create_token(
        store, user="editor", name="read-only", read_only=True, actor="t"
    ).secret
    expired = accounts.create_token(
        store, user="editor", name="expired", expires_in_days=0.5 / 86_400, actor="t"
    )
    team.tokens["expired"] = expired.secret
    revoked = accounts.create_token(store, user="editor", name="revoked", actor="t")
    accounts.revoke_token(store, token_id=revoked.info.id, actor="t")
    team.tokens["revoked"] = revoked.secret
    accounts.update_user(store, name="disabled", disabled=True, actor="t")
    app.state.access.forget()
    time.sleep(max(0.0, (expired.info.expires_at or 0) / 1000 - time.time()) + 0.01)
    return team
