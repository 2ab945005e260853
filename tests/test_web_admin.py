"""The portal's pages for people and access: site admins add users and tokens, owners manage
members, each user their own password and tokens; pages offer only what the user may do."""

from __future__ import annotations

import re

import httpx

from tests.conftest import in_process_client
from tests.team import PASSWORD, PROJECT, Team, csrf_of

API = "/api/v1"


def post_form(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    """Submit a form as a browser does: the CSRF token of the page it is on, in the form."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **fields})


def signs_in(team: Team, name: str, password: str) -> bool:
    client = in_process_client(team.app)
    try:
        resp = client.post("/sign-in", data={"username": name, "password": password})
    finally:
        client.close()
    return resp.status_code == 303


def new_secret(page: str) -> str:
    found = re.search(r'class="token-secret"[^>]*>(myd_[^<]+)</code>', page)
    assert found, "the answer shows no new token"
    return found.group(1)


def test_an_admin_adds_a_user_who_can_then_sign_in(team: Team) -> None:
    admin = team.browser("admin")
    added = post_form(
        admin, "/admin/users", "/admin/users",
        name="grace", display_name="Grace Hopper", email="grace@example.org",
        password="compilers rule",
    )  # fmt: skip
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/users"
    listing = admin.get("/admin/users").text
    assert 'data-user="grace"' in listing
    assert "Grace Hopper" in listing
    assert signs_in(team, "grace", "compilers rule")


def test_bad_input_shows_the_reason_and_changes_nothing(team: Team) -> None:
    admin = team.browser("admin")
    for fields, reason in (
        ({"name": "", "password": PASSWORD}, "is not a valid user name"),
        ({"name": "ada", "password": PASSWORD, "email": "nope"}, "is not an e-mail address"),
        ({"name": "ada", "password": "short"}, "a password needs 8"),
        ({"name": "viewer", "password": PASSWORD}, "there is already a user"),
    ):
        resp = post_form(admin, "/admin/users", "/admin/users", **fields)
        assert 400 <= resp.status_code < 500, fields
        assert reason in resp.text
        assert "Nothing was changed" in resp.text
    assert 'data-user="ada"' not in admin.get("/admin/users").text
    unknown = post_form(
        admin, "/admin/tokens", "/admin/tokens", user="nobody", name="ci", expires_in_days=""
    )
    assert unknown.status_code == 404
    assert "there is no user" in unknown.text
    assert not signs_in(team, "ada", PASSWORD)


def test_an_admin_disables_a_user_and_sets_a_password(team: Team) -> None:
    admin = team.browser("admin")
    page = "/admin/users"
    reset = post_form(admin, page, "/admin/users/editor/password", password="fresh password")
    assert reset.is_redirect
    assert signs_in(team, "editor", "fresh password")
    assert post_form(admin, page, "/admin/users/editor", disabled="true").is_redirect
    assert not signs_in(team, "editor", "fresh password")
    assert post_form(admin, page, "/admin/users/viewer", admin="true").is_redirect
    team.app.state.access.forget()
    assert team.browser("viewer").get("/admin/users").status_code == 200


def test_only_site_admins_reach_the_admin_pages(team: Team) -> None:
    owner = team.browser("owner")
    for page in ("/admin/users", "/admin/groups", "/admin/tokens"):
        assert owner.get(page).status_code == 403, page
    home = owner.get("/").text
    assert 'href="/admin/users"' not in home
    refused = owner.post("/admin/users", data={"name": "x", "password": PASSWORD})
    assert refused.status_code == 403
    assert 'href="/admin/users"' in team.browser("admin").get("/").text


def test_an_admin_sets_a_groups_members(team: Team) -> None:
    admin = team.browser("admin")
    made = post_form(admin, "/admin/groups", "/admin/groups", name="ds", members="viewer, editor")
    assert made.is_redirect
    assert "editor, viewer" in admin.get("/admin/groups").text
    bad = post_form(admin, "/admin/groups", "/admin/groups", name="ds", members="viewer ghost")
    assert bad.status_code == 404
    assert "there is no user" in bad.text
    assert "editor, viewer" in admin.get("/admin/groups").text


def test_a_viewer_sees_the_members_but_may_not_change_them(team: Team) -> None:
    viewer = team.browser("viewer")
    page = viewer.get(f"/members/{PROJECT}")
    assert page.status_code == 200
    assert 'data-member="user:owner"' in page.text
    assert "<form" not in page.text.split("<main>")[1]
    refused = post_form(viewer, f"/members/{PROJECT}", f"/members/{PROJECT}", name="outsider",
                        role="viewer")  # fmt: skip
    assert refused.status_code == 403
    assert team.browser("outsider").get(f"/members/{PROJECT}").status_code == 404
    project = viewer.get(f"/projects/{PROJECT}").text
    assert f'href="/members/{PROJECT}"' in project


def test_an_owner_adds_a_member_who_can_then_read_the_project(team: Team) -> None:
    outsider = team.api("outsider")
    assert outsider.get(f"{API}/runs/{team.run_id}").status_code == 404
    owner = team.browser("owner")
    page = f"/members/{PROJECT}"
    assert 'id="add-member"' in owner.get(page).text
    added = post_form(owner, page, page, kind="user", name="outsider", role="viewer")
    assert added.status_code == 303
    assert added.headers["location"] == page
    assert 'data-member="user:outsider"' in owner.get(page).text
    team.app.state.access.forget()
    assert outsider.get(f"{API}/runs/{team.run_id}").status_code == 200
    unknown = post_form(owner, page, page, kind="user", name="ghost", role="viewer")
    assert unknown.status_code == 404
    assert "there is no user" in unknown.text
    removed = post_form(owner, page, page, kind="user", name="outsider", role="")
    assert removed.is_redirect
    team.app.state.access.forget()
    assert outsider.get(f"{API}/runs/{team.run_id}").status_code == 404


def test_an_owner_makes_the_project_internal(team: Team) -> None:
    owner = team.browser("owner")
    page = f"/members/{PROJECT}"
    assert post_form(owner, page, f"/project-visibility/{PROJECT}", internal="true").is_redirect
    team.app.state.access.forget()
    assert team.api("outsider").get(f"{API}/runs/{team.run_id}").status_code == 200


def test_a_token_made_on_the_page_works_once_shown_and_stops_when_revoked(team: Team) -> None:
    admin = team.browser("admin")
    made = post_form(admin, "/admin/tokens", "/admin/tokens", user="viewer", name="ci",
                     expires_in_days="30")  # fmt: skip
    assert made.status_code == 200
    assert "it will not be shown again" in made.text
    secret = new_secret(made.text)
    assert made.headers["cache-control"] == "no-store"
    listing = admin.get("/admin/tokens").text
    assert secret not in listing
    assert secret.split("_", 2)[2] not in listing
    bearer = team.api(None)
    bearer.headers["Authorization"] = f"Bearer {secret}"
    assert bearer.get(f"{API}/runs/{team.run_id}").status_code == 200
    token_id = secret.split("_")[1]
    revoked = post_form(admin, "/admin/tokens", f"/admin/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    team.app.state.access.forget()
    assert bearer.get(f"{API}/runs/{team.run_id}").status_code == 401


def test_a_service_account_gets_a_token_that_writes_as_it(team: Team) -> None:
    admin = team.browser("admin")
    assert post_form(admin, "/admin/users", "/admin/users", name="ci-bot", service="on").is_redirect
    made = post_form(admin, "/admin/tokens", "/admin/tokens", user="ci-bot", name="pipeline")
    assert "(service account)" in admin.get("/admin/tokens").text
    secret = new_secret(made.text)
    bot = team.api(None)
    bot.headers["Authorization"] = f"Bearer {secret}"
    created = bot.post(f"{API}/runs", json={"project": "bots"})
    assert created.status_code == 201
    assert created.json()["created_by"] == "ci-bot"


def test_my_own_tokens_are_made_shown_once_and_revoked_on_me(team: Team) -> None:
    editor = team.browser("editor")
    made = post_form(editor, "/me", "/me/tokens", name="laptop", read_only="on")
    assert made.status_code == 200
    assert "it will not be shown again" in made.text
    secret = new_secret(made.text)
    bearer = team.api(None)
    bearer.headers["Authorization"] = f"Bearer {secret}"
    assert bearer.get(f"{API}/runs/{team.run_id}").status_code == 200
    assert bearer.patch(f"{API}/runs/{team.run_id}", json={"name": "x"}).status_code == 403
    token_id = secret.split("_")[1]
    # Someone else's token is not theirs to revoke.
    other = post_form(team.browser("viewer"), "/me", f"/me/tokens/{token_id}/revoke")
    assert other.status_code == 404
    assert post_form(editor, "/me", f"/me/tokens/{token_id}/revoke").is_redirect
    team.app.state.access.forget()
    assert bearer.get(f"{API}/runs/{team.run_id}").status_code == 401


def test_changing_my_password_ends_my_other_sessions(team: Team) -> None:
    here, elsewhere = team.browser("reviewer"), team.browser("reviewer")
    wrong = post_form(here, "/me", "/me/password", current_password="not it",
                      new_password="a new password")  # fmt: skip
    assert wrong.status_code == 400
    assert "not your current password" in wrong.text
    short = post_form(here, "/me", "/me/password", current_password=PASSWORD, new_password="x")
    assert short.status_code == 400
    assert "a password needs 8" in short.text
    assert elsewhere.get("/me").status_code == 200
    changed = post_form(here, "/me", "/me/password", current_password=PASSWORD,
                        new_password="a new password")  # fmt: skip
    assert changed.status_code == 303
    team.app.state.access.forget()
    assert here.get("/me").status_code == 200
    ended = elsewhere.get("/me")
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/sign-in")
    assert signs_in(team, "reviewer", "a new password")
    assert not signs_in(team, "reviewer", PASSWORD)


def test_me_in_local_mode_explains_there_is_no_account(api: httpx.Client) -> None:
    page = api.get("/me")
    assert page.status_code == 200
    assert "local mode" in page.text
    assert "/me/password" not in page.text


def test_the_upload_form_is_offered_only_to_those_who_may_write(team: Team) -> None:
    page = f"/runs/{team.run_id}/evaluations"
    assert "upload-predictions" not in team.browser("viewer").get(page).text
    assert "upload-predictions" in team.browser("editor").get(page).text


def test_activity_shows_how_a_change_was_made_and_filters_by_person(team: Team) -> None:
    team.api("editor").patch(f"{API}/runs/{team.run_id}", json={"name": "via-token"})
    viewer = team.browser("viewer")
    page = viewer.get("/activity").text
    assert "via token editor (#" in page
    assert 'href="/activity?actor=editor"' in page
    mine = viewer.get("/activity?actor=editor").text
    assert "changes by <strong>editor</strong>" in mine
    assert 'href="/activity"' in mine  # clears the filter
    assert 'href="/activity?actor=admin"' not in mine
