"""Managing access over the JSON API: site admins manage users, everyone their own tokens,
owners their project's members; a token's secret is answered once and never kept."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from modelyard.metadata import tables as t
from tests.helpers import assert_error
from tests.team import PASSWORD, PEOPLE, PROJECT, Team

API = "/api/v1"


def test_only_site_admins_manage_users(team: Team) -> None:
    for who in ("owner", "editor", "viewer", "outsider"):
        client = team.api(who)
        assert_error(client.get(f"{API}/users"), 403, "FORBIDDEN")
        made = client.post(f"{API}/users", json={"name": "mallory", "admin": True})
        assert_error(made, 403, "FORBIDDEN")
        assert_error(client.patch(f"{API}/users/{who}", json={"admin": True}), 403, "FORBIDDEN")
    admin = team.api("admin")
    names = [u["name"] for u in admin.get(f"{API}/users").json()]
    assert names == sorted(PEOPLE)
    made = admin.post(
        f"{API}/users", json={"name": "linus", "password": PASSWORD, "email": "l@example.com"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["can_sign_in"] is True
    assert "password" not in made.json()
    assert team.browser("linus").get(f"{API}/me").json()["via"] == "session"


def test_a_user_an_admin_disables_is_refused_at_once(team: Team) -> None:
    editor = team.api("editor")
    assert editor.get(f"{API}/runs/{team.run_id}").status_code == 200
    changed = team.api("admin").patch(
        f"{API}/users/editor", json={"disabled": True, "display_name": "Ed"}
    )
    assert changed.json()["disabled"] is True
    assert changed.json()["display_name"] == "Ed"
    assert_error(editor.get(f"{API}/runs/{team.run_id}"), 401, "UNAUTHENTICATED")
    assert_error(team.api("admin").patch(f"{API}/users/nobody", json={}), 404, "NOT_FOUND")


def test_me_says_who_is_calling_and_how(team: Team) -> None:
    me = team.api("viewer").get(f"{API}/me").json()
    assert me["name"] == "viewer"
    assert me["via"].startswith("token viewer")
    assert me["local"] is False
    assert team.api("read-only").get(f"{API}/me").json()["read_only"] is True
    assert_error(team.api(None).get(f"{API}/me"), 401, "UNAUTHENTICATED")


def test_a_token_secret_is_answered_once_and_only_its_digest_kept(
    team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = team.api("viewer")
    with caplog.at_level(logging.DEBUG):
        made = viewer.post(f"{API}/tokens", json={"name": "laptop", "expires_in_days": 30})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert made.json()["user"] == "viewer"
    assert secret not in caplog.text
    listed = viewer.get(f"{API}/tokens")
    assert secret not in listed.text
    assert [k["name"] for k in listed.json()] == ["viewer", "laptop"]
    with team.store.read() as conn:
        row = conn.execute(select(t.api_token).where(t.api_token.c.id == made.json()["id"])).one()
    assert secret.rsplit("_", 1)[-1] not in " ".join(str(v) for v in row)
    fresh = team.api(None)
    fresh.headers["Authorization"] = f"Bearer {secret}"
    assert fresh.get(f"{API}/me").json()["name"] == "viewer"
    revoked = viewer.delete(f"{API}/tokens/{made.json()['id']}")
    assert revoked.json()["revoked_at"] is not None
    assert_error(fresh.get(f"{API}/me"), 401, "UNAUTHENTICATED")


def test_only_admins_touch_other_users_tokens(team: Team) -> None:
    editor = team.api("editor")
    for_other = editor.post(f"{API}/tokens", json={"name": "x", "user": "owner"})
    assert_error(for_other, 403, "FORBIDDEN")
    assert_error(editor.get(f"{API}/tokens", params={"user": "owner"}), 403, "FORBIDDEN")
    owners = team.api("admin").get(f"{API}/tokens", params={"user": "owner"}).json()
    assert [k["user"] for k in owners] == ["owner"]
    # Another user's token is not found, as if it were not there; an admin may revoke it.
    assert_error(editor.delete(f"{API}/tokens/{owners[0]['id']}"), 404, "NOT_FOUND")
    assert team.api("owner").get(f"{API}/me").status_code == 200
    assert team.api("admin").delete(f"{API}/tokens/{owners[0]['id']}").status_code == 200
    assert_error(team.api("owner").get(f"{API}/me"), 401, "UNAUTHENTICATED")


def test_an_admin_makes_a_service_account_and_its_token(team: Team) -> None:
    admin = team.api("admin")
    made = admin.post(f"{API}/users", json={"name": "nightly", "service": True})
    assert made.json()["can_sign_in"] is False
    token = admin.post(
        f"{API}/tokens", json={"name": "ci", "user": "nightly", "read_only": True}
    ).json()
    assert token["user"] == "nightly"
    robot = team.api(None)
    robot.headers["Authorization"] = f"Bearer {token['secret']}"
    assert robot.get(f"{API}/me").json() | {"via": None} == {
        "name": "nightly", "display_name": "nightly", "admin": False, "read_only": True,
        "via": None, "local": False,
    }  # fmt: skip


def test_owners_manage_members_and_others_may_only_look(team: Team) -> None:
    members = f"{API}/projects/{PROJECT}/members"
    listed = team.api("viewer").get(members).json()
    assert {(m["name"], m["role"]) for m in listed["members"]} >= {("viewer", "viewer")}
    assert_error(team.api("outsider").get(members), 404, "NOT_FOUND")
    give = {"kind": "user", "name": "outsider", "role": "viewer"}
    for who in ("viewer", "editor", "reviewer"):
        assert_error(team.api(who).put(members, json=give), 403, "FORBIDDEN")
    outsider = team.api("outsider")
    assert_error(outsider.get(f"{API}/runs/{team.run_id}"), 404, "NOT_FOUND")
    assert team.api("owner").put(members, json=give).status_code == 200
    assert outsider.get(f"{API}/runs/{team.run_id}").status_code == 200
    assert_error(team.api("editor").delete(f"{members}/user/outsider"), 403, "FORBIDDEN")
    removed = team.api("owner").delete(f"{members}/user/outsider").json()
    assert "outsider" not in {m["name"] for m in removed["members"]}
    assert_error(outsider.get(f"{API}/runs/{team.run_id}"), 404, "NOT_FOUND")
    internal = f"{API}/projects/{PROJECT}/internal"
    assert_error(team.api("editor").put(internal, json={"internal": True}), 403, "FORBIDDEN")
    assert team.api("owner").put(internal, json={"internal": True}).json()["internal"] is True
    assert outsider.get(f"{API}/runs/{team.run_id}").status_code == 200
    bad = team.api("owner").put(members, json={**give, "name": "nobody"})
    assert_error(bad, 404, "NOT_FOUND")


def test_an_owner_signed_in_through_the_browser_needs_the_pages_csrf_token(team: Team) -> None:
    members = f"{API}/projects/{PROJECT}/members"
    owner = team.browser("owner")
    give = {"kind": "user", "name": "outsider", "role": "editor"}
    assert owner.put(members, json=give).status_code == 200
    del owner.headers["X-CSRF-Token"]
    assert_error(owner.put(members, json=give), 403, "FORBIDDEN")


def test_local_mode_has_no_tokens_and_its_first_user_is_an_admin(api: httpx.Client) -> None:
    me = api.get(f"{API}/me").json()
    assert me["local"] is True
    assert api.get(f"{API}/tokens").json() == []
    refused = assert_error(api.post(f"{API}/tokens", json={"name": "x"}), 409, "CONFLICT")
    assert "local mode" in refused
    first = api.post(f"{API}/users", json={"name": "ada", "password": PASSWORD})
    assert "site admin" in assert_error(first, 409, "CONFLICT")
    made = api.post(f"{API}/users", json={"name": "ada", "password": PASSWORD, "admin": True})
    assert made.status_code == 201
    assert_error(api.get(f"{API}/me"), 401, "UNAUTHENTICATED")  # team mode from now on
