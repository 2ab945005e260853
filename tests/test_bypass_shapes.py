"""A refused request stays refused however its address is spelled.

The requests go to the app as an HTTP server hands them over (``path`` percent-decoded,
``raw_path`` as sent, nothing normalised), not through a client that would tidy the address
first: trailing and doubled slashes, other letter cases, ``.`` and ``..`` segments, encoded
separators, HEAD and OPTIONS, and other addresses of the same things (the run's URN, its
lineage, a comparison naming it among others). Whatever the spelling, an anonymous caller and
an outsider (no role in project alpha) never see the run's data: the answer is a 401, 403,
404 or 405, a redirect to something that is refused in turn, or, for OPTIONS, the methods of
the path and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from fastapi import FastAPI

from tests.helpers import assert_error, run_async
from tests.module_team import API, Workspace, module_workspace
from tests.team import Team

SECRET = "matrix-secret-7f3a"  # the run's name, a param and a tag: its data
REFUSED = frozenset({401, 403, 404, 405})


@pytest.fixture(scope="module")
def workspace(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str | None
) -> Iterator[Workspace]:
    with module_workspace(tmp_path_factory.mktemp("bypass"), pg_template) as built:
        team = built.team
        admin = team.api("admin")
        for run_id in (team.run_id, team.other_run_id):
            run = f"{API}/runs/{run_id}"
            assert admin.patch(run, json={"name": SECRET}).status_code == 200
            assert admin.post(f"{run}/params", json={"params": {"p": SECRET}}).status_code < 300
            assert admin.post(f"{run}/tags", json={"tags": {"t": SECRET}}).status_code < 300
        yield built


# --- a raw HTTP request -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Caller:
    name: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def send(app: FastAPI, caller: Caller, method: str, target: str) -> Answer:
    """``target`` (path and query) exactly as a server would receive it in the request line."""
    raw_path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),  # what uvicorn does: decoded, not normalised
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(b"host", b"localhost"), *caller.headers],
        "client": ("127.0.0.1", 40000),
        "server": ("localhost", 80),
    }
    answer = Answer(0, {})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send_message(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    run_async(lambda: app(scope, receive, send_message))
    return answer


def bearer(name: str, token: str) -> Caller:
    return Caller(name, [(b"authorization", f"Bearer {token}".encode())])


def callers(team: Team) -> list[Caller]:
    session = team.browser("outsider").cookies
    cookie = "; ".join(f"{name}={value}" for name, value in session.items())
    return [
        Caller("anonymous"),
        bearer("outsider-token", team.tokens["outsider"]),
        Caller("outsider-session", [(b"cookie", cookie.encode())]),
    ]


def problem(app: FastAPI, caller: Caller, method: str, target: str, depth: int = 0) -> str | None:
    """What is wrong with the answer to this request (None: it is a refusal)."""
    answer = send(app, caller, method, target)
    where = f"{caller.name} {method} {target}: {answer.status}"
    if SECRET in answer.text:
        return f"{where} answered with the run's data"
    if answer.status in REFUSED:
        return None
    location = answer.headers.get("location", "").removeprefix("http://localhost")
    if answer.status in (301, 302, 303, 307, 308) and location.startswith("/"):
        if location.startswith("/sign-in?"):
            return None
        if depth < 2:  # a canonical address of the same thing: refused in turn
            again = method if answer.status > 303 else "GET"
            return problem(app, caller, again, location, depth + 1)
    if method == "OPTIONS" and answer.status == 204 and not answer.body:
        return None  # the methods the path takes; the same whether the run exists or not
    return f"{where} {answer.text[:120]!r}"


def spellings(path: str) -> list[str]:
    """``path`` (of the form /a/b/.../id) spelled in the ways that once fooled routers and
    proxies."""
    head, _, last = path.rpartition("/")
    first = path.split("/")[1]
    return [
        path,
        path + "/",
        path + "//",
        "/" + path,
        path.replace("/", "//"),
        f"{head}//{last}",
        path.upper(),
        path.replace(first, first.upper(), 1),
        path.replace(first, first.capitalize(), 1),
        f"{head.upper()}/{last}",
        f"{head}/{last.upper()}",
        f"{head}/./{last}",
        f"{head}/x/../{last}",
        f"/{first}/x/..{path[len(first) + 1 :]}",
        f"{path}/.",
        f"{path}/x/..",
        path.replace("/", "%2F"),
        path.replace("/", "%2f").replace("%2f", "/", 1),
        f"{head}%2F{last}",
        f"{head}/x/%2e%2e/{last}",
        f"{head}/x/%2E%2E/{last}",
        f"{head}/x%2F..%2F{last}",
        f"{head}/%2e/{last}",
        f"{head}\\{last}",
        f"{head}%5C{last}",
        f"{head}/{last};x",
        f"{head}/{last}%20",
        f"{head}/{last}%09",
        f"{head}/{uuid.UUID(last)!s}" if len(last) == 32 else path,
    ]


def test_a_refused_run_stays_refused_however_its_address_is_spelled(
    workspace: Workspace,
) -> None:
    team = workspace.team
    found = []
    for caller in callers(team):
        for base in (f"{API}/runs/{team.run_id}", f"/runs/{team.run_id}"):
            for target in spellings(base):
                for method in ("GET", "HEAD", "OPTIONS", "PATCH", "DELETE"):
                    if (wrong := problem(team.app, caller, method, target)) is not None:
                        found.append(wrong)
    assert not found, "\n".join(found)
    # The spellings did reach the run: its admin sees it at the plain address.
    assert SECRET in team.api("admin").get(f"{API}/runs/{team.run_id}").text


def test_other_addresses_of_the_run_are_refused_too(workspace: Workspace) -> None:
    team = workspace.team
    run, urn = team.run_id, workspace.run_urn
    encoded = urn.replace(":", "%3A")
    aliases = [
        f"{API}/entities/{urn}/aspects",
        f"{API}/entities/{encoded}/aspects",
        f"{API}/entities/{urn}/aspects/run_properties/versions",
        f"{API}/entities/{urn.upper()}/aspects",
        f"{API}/lineage?urn={urn}",
        f"{API}/lineage?urn={encoded}",
        f"{API}/series/{urn}/latest",
        f"{API}/runs/{run}/steps",
        f"{API}/runs/{run}/artifacts",
        f"{API}/runs/{run}/evaluations",
        f"{API}/evaluations/{workspace.evaluation_id}",
        f"{API}/models/{workspace.model}/versions/{workspace.version}",
        f"/entities/{urn}",
        f"/entities/{encoded}",
        f"/history?urn={urn}",
        f"/lineage?urn={urn}",
        f"/compare?run={run}",
        f"/charts/metric?key=loss&run={run}",
        f"/runs/{run}/pipeline",
        f"/runs/{run}/evaluations",
        f"/evaluations/{workspace.evaluation_id}",
        "/projects/alpha",
        f"{API}/projects/alpha",
    ]
    found = [
        wrong
        for caller in callers(team)
        for target in aliases
        for method in ("GET", "HEAD")
        if (wrong := problem(team.app, caller, method, target)) is not None
    ]
    assert not found, "\n".join(found)


def test_a_request_naming_several_things_is_refused_if_one_is_not_the_callers(
    workspace: Workspace,
) -> None:
    """The owner of alpha is no member of beta: naming alpha's run first does not let beta's
    through, however many of alpha's come before it."""
    team = workspace.team
    owner = bearer("owner", team.tokens["owner"])
    mine, theirs = workspace.run_urn, f"urn:modelyard:run:{team.other_run_id}"
    many = [("run", team.run_id)] * 1000 + [("run", team.other_run_id)]
    targets = [
        f"{API}/lineage?" + urlencode([("urn", mine), ("urn", theirs)]),
        "/lineage?" + urlencode([("urn", mine), ("urn", theirs)]),
        "/history?" + urlencode([("urn", mine), ("urn", theirs)]),
        "/compare?" + urlencode([("run", team.run_id), ("run", team.other_run_id)]),
        "/compare?" + urlencode(many),
        "/charts/metric?" + urlencode([("key", "loss"), *many]),
    ]
    found = []
    for target in targets:
        answer = send(team.app, owner, "GET", target)
        # (Alpha's run, named SECRET too, may be shown to its owner: beta's id may not.)
        if answer.status < 400 or team.other_run_id in answer.text:
            found.append(f"GET {target[:60]}...: {answer.status} {answer.text[:120]!r}")
    assert not found, "\n".join(found)
    # Alpha's own run alone is the owner's to see.
    assert send(team.app, owner, "GET", f"{API}/lineage?urn={mine}").status == 200


def test_a_thing_that_is_not_there_and_one_the_caller_may_not_see_look_alike(
    workspace: Workspace,
) -> None:
    """An outsider learns nothing from a 404: a project, run or model version they may not
    see is answered exactly like one that does not exist."""
    team = workspace.team
    outsider = team.api("outsider")
    pairs = [
        (f"{API}/projects/alpha", f"{API}/projects/no-such-project"),
        (f"{API}/runs/{team.run_id}", f"{API}/runs/{uuid.uuid4().hex}"),
        (
            f"{API}/models/{workspace.model}/versions/{workspace.version}",
            f"{API}/models/{workspace.model}/versions/{workspace.version + 7}",
        ),
        (f"{API}/evaluations/{workspace.evaluation_id}", f"{API}/evaluations/{uuid.uuid4().hex}"),
    ]
    for there, not_there in pairs:
        seen = assert_error(outsider.get(there), 404, "NOT_FOUND")
        unseen = assert_error(outsider.get(not_there), 404, "NOT_FOUND")
        assert seen.replace(there, "<path>") == unseen.replace(not_there, "<path>")
    pages = [("/projects/alpha", "/projects/no-such-project")]
    for there, not_there in pages:
        seen_page, unseen_page = outsider.get(there), outsider.get(not_there)
        assert seen_page.status_code == unseen_page.status_code == 404
        assert "nothing at /projects/no-such-project that you may see" in unseen_page.text


def test_lists_and_searches_show_an_outsider_nothing_of_alpha(workspace: Workspace) -> None:
    team = workspace.team
    outsider = team.api("outsider")
    answers = [
        outsider.post(f"{API}/runs/search", json={}),
        outsider.get(f"{API}/projects"),
        outsider.get(f"{API}/changes"),
        outsider.get("/"),
        outsider.get("/search", params={"q": SECRET}),
        outsider.get("/activity"),
    ]
    for answer in answers:
        assert answer.status_code == 200
        for run_id in (team.run_id, team.other_run_id):
            assert run_id not in answer.text, answer.request.url
    assert "alpha" not in answers[1].text  # the list of projects
    # An editor of alpha does find its run.
    assert team.run_id in team.api("editor").get("/search", params={"q": SECRET}).text
