"""The access commands act on the database itself (no server, no sign-in needed): what they
do shows in the portal and the API at once, and what they refuse changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from modelyard.cli import main
from modelyard.services.access import accounts
from tests.conftest import in_process_client
from tests.helpers import assert_error
from tests.test_cli import table

PASSWORD = "a long enough password"


Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Runs ``modelyard ...`` on the test's database."""
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cli-data"))

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, [*args, "--database-url", database_url], input=input)

    return run


def invoke(cli: Cli, *args: str, input: str | None = None) -> Result:
    return cli(*args, input=input)


def ok(cli: Cli, *args: str, input: str | None = None) -> Result:
    result = invoke(cli, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def fresh(app: FastAPI) -> httpx.Client:
    """A client of the app that sees what the commands just did (no cached lookups)."""
    app.state.access.forget()
    return in_process_client(app)


def sign_in(app: FastAPI, name: str, password: str = PASSWORD) -> httpx.Response:
    with fresh(app) as client:
        return client.post("/sign-in", data={"username": name, "password": password})


def test_a_user_added_with_a_password_can_sign_in(cli: Cli, app: FastAPI) -> None:
    added = ok(cli, "users", "add", "ada", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert "ada" in added.stdout
    assert sign_in(app, "ada").status_code == 303
    assert sign_in(app, "ada", "not the password").status_code != 303


def test_users_add_asks_for_the_password_twice(cli: Cli, app: FastAPI) -> None:
    mismatch = invoke(cli, "users", "add", "ada", input=f"{PASSWORD}\nother words\n")
    assert mismatch.exit_code != 0
    assert accounts.list_users(app.state.store) == []
    ok(cli, "users", "add", "ada", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert sign_in(app, "ada").status_code == 303


def test_users_list_shows_who_there_is(cli: Cli) -> None:
    ok(cli, "users", "add", "ada", "--admin", "--email", "ada@example.com", "--password-stdin",
       input=PASSWORD + "\n")  # fmt: skip
    ok(cli, "users", "add", "robot", "--service", "--display-name", "Nightly job")
    rows = table(ok(cli, "users", "list").stdout)
    assert rows[0][:5] == ["name", "display name", "e-mail", "admin", "disabled"]
    assert rows[1][:4] == ["ada", "ada", "ada@example.com", "yes"]
    assert rows[2][:2] == ["robot", "Nightly job"]


def test_bad_input_is_refused_with_a_message_and_changes_nothing(cli: Cli, app: FastAPI) -> None:
    short = invoke(cli, "users", "add", "ada", "--password-stdin", input="short\n")
    assert short.exit_code == 1
    assert "a password needs 8" in short.stderr
    bad_name = invoke(cli, "users", "add", "Ada Lovelace", "--password-stdin", input=PASSWORD)
    assert bad_name.exit_code == 1
    assert "is not a valid user name" in bad_name.stderr
    service = invoke(cli, "users", "add", "robot", "--service", "--password-stdin", input="x")
    assert service.exit_code == 2
    assert accounts.list_users(app.state.store) == []
    ok(cli, "users", "add", "ada", "--password-stdin", input=PASSWORD)
    twice = invoke(cli, "users", "add", "ada", "--password-stdin", input=PASSWORD)
    assert twice.exit_code == 1
    assert "already a user 'ada'" in twice.stderr
    nobody = invoke(cli, "tokens", "create", "--user", "nobody")
    assert nobody.exit_code == 1
    assert nobody.stdout == ""
    assert "no user 'nobody'" in nobody.stderr


def test_a_token_printed_once_authenticates_until_revoked(cli: Cli, app: FastAPI) -> None:
    ok(cli, "users", "add", "robot", "--service")
    made = ok(cli, "tokens", "create", "--user", "robot", "--name", "nightly", "--read-only")
    token = made.stdout.strip()
    assert token.startswith("myd_")
    assert "\n" not in token
    assert "not shown again" in made.stderr
    with fresh(app) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "robot"
    assert me.json()["read_only"] is True
    listed = ok(cli, "tokens", "list", "--user", "robot").stdout
    assert "nightly" in listed
    assert token not in listed
    token_id = token.split("_")[1]
    ok(cli, "tokens", "revoke", token_id)
    with fresh(app) as client:
        refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert_error(refused, 401, "UNAUTHENTICATED")


def test_members_add_gives_access_and_remove_takes_it(cli: Cli, app: FastAPI) -> None:
    with in_process_client(app) as local:  # no user yet: local mode
        assert local.post("/api/v1/projects", json={"name": "churn"}).status_code == 201
    ok(cli, "users", "add", "ada", "--admin", "--password-stdin", input=PASSWORD)
    ok(cli, "users", "add", "grace", "--password-stdin", input=PASSWORD)
    token = ok(cli, "tokens", "create", "--user", "grace").stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    with fresh(app) as client:
        assert_error(client.get("/api/v1/projects/churn", headers=auth), 404, "NOT_FOUND")
    bad_role = invoke(cli, "members", "add", "churn", "grace", "boss")
    assert bad_role.exit_code == 1
    assert "'boss' is not a role" in bad_role.stderr
    ok(cli, "members", "add", "churn", "grace", "viewer")
    with fresh(app) as client:
        assert client.get("/api/v1/projects/churn", headers=auth).status_code == 200
        assert_error(client.patch("/api/v1/projects/churn", json={}, headers=auth), 403)
    ok(cli, "groups", "set", "analysts", "grace")
    ok(cli, "members", "add", "churn", "analysts", "owner", "--group")
    rows = table(ok(cli, "members", "list", "churn").stdout)
    assert rows[1:] == [["group", "analysts", "owner"], ["user", "grace", "viewer"]]
    with fresh(app) as client:
        assert client.patch("/api/v1/projects/churn", json={}, headers=auth).status_code == 200
    ok(cli, "members", "remove", "churn", "analysts", "--group")
    ok(cli, "members", "remove", "churn", "grace")
    with fresh(app) as client:
        assert_error(client.get("/api/v1/projects/churn", headers=auth), 404, "NOT_FOUND")
    ok(cli, "members", "internal", "churn", "--on")
    with fresh(app) as client:
        assert client.get("/api/v1/projects/churn", headers=auth).status_code == 200


def test_a_disabled_user_cannot_sign_in_until_enabled(cli: Cli, app: FastAPI) -> None:
    ok(cli, "users", "add", "alan", "--password-stdin", input=PASSWORD)
    ok(cli, "users", "disable", "alan")
    assert sign_in(app, "alan").status_code != 303
    ok(cli, "users", "enable", "alan")
    assert sign_in(app, "alan").status_code == 303
    ok(cli, "users", "set-password", "alan", "--password-stdin", input="another password\n")
    assert sign_in(app, "alan").status_code != 303
    assert sign_in(app, "alan", "another password").status_code == 303


def test_serve_beyond_loopback_refuses_without_a_site_admin(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from modelyard.app import NO_ADMIN

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setenv("MODELYARD_SECRET_KEY", "a secret for this test only")
    monkeypatch.setenv("MODELYARD_ALLOWED_HOSTS", "modelyard.example.com")
    for name in ("HOST", "PORT", "DATABASE_URL"):  # serve hands these on to its workers
        monkeypatch.setenv(f"MODELYARD_{name}", "")  # so they are restored after the test
        monkeypatch.delenv(f"MODELYARD_{name}")
    refused = invoke(cli, "serve", "--host", "0.0.0.0")
    assert refused.exit_code == 1
    assert NO_ADMIN.format(host="0.0.0.0") in refused.stderr
    ok(cli, "users", "add", "ada", "--password-stdin", input=PASSWORD)  # no admin yet
    assert invoke(cli, "serve", "--host", "0.0.0.0").exit_code == 1


def test_the_demo_users_sign_in_and_each_has_their_role(app: FastAPI) -> None:
    from modelyard.demo import CANCER, CHURN, DEMO_USERS, add_demo_users

    with in_process_client(app) as local:
        for name in (CANCER, CHURN):
            assert local.post("/api/v1/projects", json={"name": name}).status_code == 201
    store = app.state.store
    assert add_demo_users(store) is True
    assert add_demo_users(store) is False
    for user in DEMO_USERS:
        assert sign_in(app, user.name, user.password).status_code == 303, user.name
    may_change = {}
    with fresh(app) as client:
        for name in ("ada", "grace", "alan", "edsger"):
            token = accounts.create_token(store, user=name, name="t", actor="test").secret
            client.headers["Authorization"] = f"Bearer {token}"
            for project in (CHURN, CANCER):
                members = f"/api/v1/projects/{project}/members"
                may_change[name, project] = client.put(
                    members, json={"name": name, "role": "owner"}
                ).status_code
    assert may_change == {
        ("ada", CHURN): 200, ("ada", CANCER): 200,  # site admin
        ("grace", CHURN): 200, ("grace", CANCER): 403,  # owner; a reviewer through her group
        ("alan", CHURN): 403, ("alan", CANCER): 404,  # editor; no role
        ("edsger", CHURN): 403, ("edsger", CANCER): 403,  # viewer; reviewer through his group
    }  # fmt: skip
