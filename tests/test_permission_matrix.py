"""Every route against every kind of caller, the answer predicted from the route's declared
permission alone.

The routes come from the app's own route table, so a route added later is in the matrix the
day it is added (and fails here if it declares no permission, or names a path parameter the
matrix cannot fill). Each request names real things in project alpha: its run, the run's
URN, an evaluation and a model version made when the workspace is built. What a caller is
expected to see follows the design in :mod:`modelyard.authz`:

- public routes answer everyone;
- no valid credentials (none, an expired or revoked token, a disabled user's token): 401,
  which pages show as a redirect to the sign-in page;
- a read-only token on a route that changes things: 403;
- site admins may do everything; others may use signed-in and create routes;
- on a project's things, no role in the project: 404 saying there is nothing there the caller
  may see; a role below the route's level: 403.

An allowed request may still fail for its own reasons (a minimal body is a 422, an absent
tag a 404 of the route's own); what it must not be is any of the refusals above, nor a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI

from modelyard.authz import READ_ONLY_LEVELS, ROLE_LEVEL, Level, Permission, permission_of
from modelyard.guards import accepted_media_types
from modelyard.routing import _served_routes
from modelyard.services.access import accounts
from modelyard.web import page_errors
from tests.helpers import assert_error
from tests.module_team import API, Workspace, module_workspace
from tests.team import ROLES, Team

# What each caller holds in project alpha (None: no role there).
ROLE_OF: dict[str, str | None] = {**{r: r for r in ROLES}, "read-only": "editor", "outsider": None}
NO_CREDENTIALS = ("anonymous", "expired", "revoked", "disabled")
# (who, transport): every token, no credentials at all, and a signed-in browser for each user
# who can sign in (the disabled user cannot).
CALLERS = [
    ("anonymous", "token"),
    *[(who, "token") for who in ("admin", *ROLES, "outsider", "read-only")],
    *[(who, "token") for who in ("expired", "revoked", "disabled")],
    *[(who, "session") for who in ("admin", *ROLES, "outsider")],
]

Outcome = Literal["allow", 401, 403, 404]


@pytest.fixture(scope="module")
def workspace(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str | None
) -> Iterator[Workspace]:
    with module_workspace(tmp_path_factory.mktemp("matrix"), pg_template) as built:
        yield built


# --- the route table ----------------------------------------------------------------------


def skipped(route: Any) -> str | None:
    """Why a route of the table is not one the matrix checks (None: it is)."""
    if getattr(route, "is_fallback", False):
        return "a fallback: it answers 404/405/OPTIONS for paths no route serves"
    if route.path == "/openapi.json":
        return "the framework's API document, public by design and outside the dependencies"
    if route.path.startswith("/static/"):
        return "content-hashed static files, public; their digest is no thing to name"
    return None


def served_routes(app: FastAPI) -> list[Any]:
    return [
        route
        for route in _served_routes(app.router.routes)
        if getattr(route, "endpoint", None) is not None and skipped(route) is None
    ]


def undeclared(app: FastAPI) -> list[str]:
    """Every checked route whose endpoint declares no permission."""
    return [
        f"{','.join(sorted(route.methods))} {route.path}"
        for route in served_routes(app)
        if permission_of(route) is None
    ]


def test_every_route_declares_its_permission(workspace: Workspace) -> None:
    app = workspace.team.app
    assert len(served_routes(app)) > 60  # the walk reaches into the included routers
    assert undeclared(app) == []


def test_a_route_that_declares_none_is_found_and_is_for_admins_only(team: Team) -> None:
    async def forgotten() -> dict[str, str]:
        return {"secret": "s3cr3t"}

    team.app.router.add_api_route("/matrix-forgotten", forgotten, methods=["GET"])
    assert undeclared(team.app) == ["GET /matrix-forgotten"]
    # Outside every family, so its errors are pages: a 401 sends the caller to sign in.
    refused = team.api("owner").get("/matrix-forgotten")
    assert refused.status_code == 403
    assert "s3cr3t" not in refused.text
    anonymous = team.api(None).get("/matrix-forgotten")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/sign-in?next=")
    assert team.api("admin").get("/matrix-forgotten").json() == {"secret": "s3cr3t"}


# --- concrete requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One route, as a concrete request."""

    method: str
    template: str  # the route's path, as declared
    url: str
    params: dict[str, str]
    body: dict[str, Any]  # keyword arguments of httpx's request
    page: bool  # answered in the portal's shape (HTML; a 401 is a redirect to sign in)
    permission: Permission

    def send(self, client: httpx.Client) -> httpx.Response:
        return client.request(self.method, self.url, params=self.params, **self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def path_values(ws: Workspace) -> dict[str, str]:
    return {
        "run_id": ws.team.run_id,
        "urn": ws.run_urn,
        "ref": "alpha",
        "evaluation_id": ws.evaluation_id,
        "model": ws.model,
        "version": str(ws.version),
        "key": "matrix-tag",
        "name": "train",
        "path": "matrix/notes.txt",
        "aspect": "run_properties",
        "query": "thresholds",
        "token_id": str(ws.spare_token_id),
        "kind": "user",
    }


QUERY_SCOPE = re.compile(r"^(runs|evaluations|entity) \?(\w+)=$")


def query_of(permission: Permission, ws: Workspace) -> dict[str, str]:
    """The query parameter a scope reads the project from, naming alpha's thing."""
    found = QUERY_SCOPE.match(permission.scope.describe) if permission.scope else None
    if found is None:
        return {}
    kind, param = found.groups()
    value = {"runs": ws.team.run_id, "evaluations": ws.evaluation_id, "entity": ws.run_urn}
    return {param: value[kind]}


def body_of(route: Any, permission: Permission, method: str) -> dict[str, Any]:
    """A minimal body of a type the route takes (the project, when the body names it)."""
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    types = accepted_media_types(route)
    names_project = permission.scope is not None and "body's" in permission.scope.describe
    if "application/json" in types:
        return {"json": {"project": "alpha"} if names_project else {}}
    if "*/*" in types:
        return {"content": b"matrix", "headers": {"content-type": "application/octet-stream"}}
    if types == ("multipart/form-data",):
        return {"files": {"file": ("m.csv", b"y_true,y_score\n1,0.5\n", "text/csv")}}
    if "application/x-www-form-urlencoded" in types:
        return {"data": {"matrix": "1"}}
    assert not types, f"{method} {route.path} takes {types}; the matrix sends none of them"
    return {}


def cells(ws: Workspace) -> list[Cell]:
    """Every checked route as a request: reads first, then writes, DELETE last, so no write
    takes away what a later read names (the writes change names and add things only)."""
    values = path_values(ws)
    made = []
    for route in served_routes(ws.team.app):
        permission = permission_of(route)
        assert permission is not None, f"{route.path} declares no permission"
        names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{route.path}: the matrix cannot fill {unknown}"
        url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], route.path)
        renderer = getattr(getattr(route, "original_route", route), "error_renderer", None)
        for method in sorted(route.methods):
            body = body_of(route, permission, method)
            query = query_of(permission, ws)
            page = renderer is page_errors
            made.append(Cell(method, route.path, url, query, body, page, permission))
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return sorted(made, key=lambda c: (c.template == "/sign-out", order[c.method]))


# --- what each caller should see -------------------------------------------------------------


def expected(permission: Permission, who: str) -> Outcome:
    """The answer the design gives ``who`` on a route declaring ``permission``, on a thing of
    project alpha."""
    level = permission.level
    if level == Level.PUBLIC:
        return "allow"
    if who in NO_CREDENTIALS:
        return 401
    if who == "read-only" and level not in READ_ONLY_LEVELS:
        return 403
    if who == "admin":
        return "allow"
    if level == Level.ADMIN:
        return 403
    if level in (Level.SIGNED_IN, Level.CREATE):
        return "allow"
    role = ROLE_OF[who]
    if role is None:
        return 404
    return "allow" if ROLE_LEVEL[role] >= level else 403


NOTHING_HERE = "there is nothing at {path} that you may see"


def json_message(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""


def refused_as(resp: httpx.Response, cell: Cell) -> Outcome:
    """What the caller saw, read as the design's outcomes."""
    path = httpx.URL(cell.url).path
    if cell.page:
        location = resp.headers.get("location", "")
        if resp.status_code == 303 and location.startswith("/sign-in?next="):
            return 401
        if resp.status_code == 404 and escape(NOTHING_HERE.format(path=path)) in resp.text:
            return 404
    elif resp.status_code == 404 and json_message(resp) == NOTHING_HERE.format(path=path):
        return 404
    if resp.status_code in (401, 403):
        return resp.status_code  # type: ignore[return-value]
    return "allow"


def check(cell: Cell, resp: httpx.Response, want: Outcome) -> str | None:
    """What is wrong with ``resp`` (None: nothing)."""
    seen = refused_as(resp, cell)
    if resp.status_code >= 500:
        return f"a server error {resp.status_code}: {resp.text[:200]}"
    if seen != want:
        return f"expected {want}, saw {seen} ({resp.status_code} {resp.text[:160]!r})"
    if want in (401, 403) and not cell.page:
        code = "UNAUTHENTICATED" if want == 401 else "FORBIDDEN"
        assert_error(resp, want, code)
    return None


def client_for(team: Team, who: str, transport: str) -> httpx.Client:
    if transport == "session":
        return team.browser(who)
    return team.api(None if who == "anonymous" else who)


@pytest.mark.parametrize(("who", "transport"), CALLERS, ids=[f"{w}-{t}" for w, t in CALLERS])
def test_each_caller_gets_what_each_route_declares(
    workspace: Workspace, who: str, transport: str
) -> None:
    team = workspace.team
    client = client_for(team, who, transport)
    wrong = []
    for cell in cells(workspace):
        if cell.template == "/sign-out" and transport == "session":
            client = client_for(team, who, transport)  # its own session: it ends it
        problem = check(cell, cell.send(client), expected(cell.permission, who))
        if problem:
            wrong.append(f"{cell}: {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_level_and_both_refusals(workspace: Workspace) -> None:
    """The matrix would prove little if every route were public: it meets each level the
    design has routes for, and each kind of refusal."""
    made = cells(workspace)
    levels = {cell.permission.level for cell in made}
    assert levels >= {Level.PUBLIC, Level.SIGNED_IN, Level.CREATE, Level.READ, Level.WRITE}
    outcomes = {expected(c.permission, who) for c in made for who, _ in CALLERS}
    assert outcomes == {"allow", 401, 403, 404}
    assert {c.page for c in made} == {True, False}


# --- a few cells written out by hand ------------------------------------------------------------


def test_cells_written_out(workspace: Workspace) -> None:
    team = workspace.team
    run = f"{API}/runs/{team.run_id}"
    message = assert_error(team.api("viewer").patch(run, json={"name": "v"}), 403, "FORBIDDEN")
    assert "needs the editor role" in message
    page = team.api("outsider").get(f"/runs/{team.run_id}")
    assert page.status_code == 404
    assert f"there is nothing at /runs/{team.run_id} that you may see" in page.text
    created = team.api("read-only").post(f"{API}/runs", json={"project": "alpha"})
    assert "read-only" in assert_error(created, 403, "FORBIDDEN")
    assert_error(team.api(None).get(f"{API}/models"), 401, "UNAUTHENTICATED")
    admin = team.api("admin")
    tagged = admin.post(f"{run}/tags", json={"tags": {"by-hand": "1"}})
    assert tagged.status_code in (200, 201, 204), tagged.text
    assert admin.get(run).json()["tags"].get("by-hand") == "1"
    assert admin.delete(f"{run}/tags/by-hand").status_code == 204
    assert "by-hand" not in admin.get(run).json()["tags"]
    # The owner of alpha is no member of beta: its run is not there for them.
    other = team.api("owner").get(f"{API}/runs/{team.other_run_id}")
    assert assert_error(other, 404, "NOT_FOUND") == (
        f"there is nothing at {API}/runs/{team.other_run_id} that you may see"
    )
    assert team.api("admin").get(f"{API}/runs/{team.other_run_id}").status_code == 200
    # Anyone may revoke their own tokens, and no one else's that way.
    theirs = accounts.create_token(team.store, user="viewer", name="not yours", actor="t")
    revoke = team.api("outsider").post(f"/me/tokens/{theirs.info.id}/revoke", data={})
    assert revoke.status_code >= 400
    victim = team.api(None)
    victim.headers["Authorization"] = f"Bearer {theirs.secret}"
    assert victim.get(run).status_code == 200
    # A reviewer may not change the project's settings; its owner may.
    project = f"{API}/projects/alpha"
    assert_error(team.api("reviewer").patch(project, json={"description": "r"}), 403)
    assert team.api("owner").patch(project, json={"description": "o"}).status_code == 200


def test_the_matrix_answers_are_read_from_what_the_caller_sees() -> None:
    """The reading of answers tells an authorization 404 from a route's own 404."""
    cell = Cell("GET", "/api/v1/x", "/api/v1/x", {}, {}, False, Permission(Level.SIGNED_IN))
    own = httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no run x"}})
    authz = httpx.Response(
        404, json={"error": {"code": "NOT_FOUND", "message": NOTHING_HERE.format(path="/api/v1/x")}}
    )
    assert refused_as(own, cell) == "allow"
    assert refused_as(authz, cell) == 404


def test_a_not_found_page_lists_no_run_the_caller_may_not_read(workspace: Workspace) -> None:
    """A page's 404 suggests recent runs: only those the caller may read."""
    team = workspace.team
    for who, path in [(None, "/no-such-page"), ("outsider", f"/runs/{team.run_id}")]:
        page = team.api(who).get(path)
        assert page.status_code == 404
        # Neither may read any project: no run of any is theirs to be shown.
        assert 'href="/runs/' not in page.text, who
    # The list is there for those who may read runs.
    assert 'href="/runs/' in team.api("viewer").get(f"/runs/{'0' * 32}").text
