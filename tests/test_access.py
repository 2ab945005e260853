"""Access: the two modes, who may do what, and what each write records as its actor."""

from __future__ import annotations

from sqlalchemy import select

from modelyard.metadata import tables as t
from tests.helpers import assert_error
from tests.team import OTHER, PROJECT, Team, csrf_of

API = "/api/v1"


def test_local_mode_needs_no_sign_in_until_a_user_exists(api: object, app: object) -> None:
    import httpx

    assert isinstance(api, httpx.Client)
    created = api.post(f"{API}/runs", json={"project": "p"})
    assert created.status_code == 201
    assert created.json()["created_by"] == "local"


def test_anonymous_callers_are_asked_to_sign_in(team: Team) -> None:
    anonymous = team.api(None)
    assert_error(anonymous.get(f"{API}/runs/{team.run_id}"), 401, "UNAUTHENTICATED")
    page = anonymous.get(f"/runs/{team.run_id}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/sign-in?next=%2Fruns%2F{team.run_id}"
    assert anonymous.get("/sign-in").status_code == 200
    assert anonymous.get("/healthz").status_code == 200


def test_each_role_may_do_what_it_is_given_and_no_more(team: Team) -> None:
    run = f"{API}/runs/{team.run_id}"
    for who in ("viewer", "editor", "reviewer", "owner", "admin"):
        assert team.api(who).get(run).status_code == 200, who
    for who in ("editor", "reviewer", "owner", "admin"):
        assert team.api(who).patch(run, json={"name": who}).status_code == 200, who
    assert_error(team.api("viewer").patch(run, json={"name": "v"}), 403, "FORBIDDEN")
    # Someone who is no member does not learn the run exists.
    assert_error(team.api("outsider").get(run), 404, "NOT_FOUND")
    assert_error(team.api("outsider").patch(run, json={"name": "o"}), 404, "NOT_FOUND")
    assert team.api("owner").get(f"{API}/runs/{team.other_run_id}").status_code == 404


def test_tokens_that_are_not_live_are_refused(team: Team) -> None:
    run = f"{API}/runs/{team.run_id}"
    for who in ("expired", "revoked", "disabled"):
        assert_error(team.api(who).get(run), 401, "UNAUTHENTICATED")
    read_only = team.api("read-only")
    assert read_only.get(run).status_code == 200
    assert_error(read_only.patch(run, json={"name": "x"}), 403, "FORBIDDEN")


def test_a_write_records_the_user_and_the_token_it_came_through(team: Team) -> None:
    team.api("editor").patch(f"{API}/runs/{team.run_id}", json={"name": "renamed"})
    with team.store.read() as conn:
        actor, via = conn.execute(
            select(t.change_log.c.actor, t.change_log.c.via).order_by(t.change_log.c.id.desc())
        ).first()  # type: ignore[misc]
    assert (actor, via) == ("editor", "token editor (#3)")


def test_a_new_project_is_owned_by_its_creator(team: Team) -> None:
    editor = team.api("editor")
    assert editor.post(f"{API}/runs", json={"project": "editors-own"}).status_code == 201
    assert editor.patch(f"{API}/projects/editors-own", json={"description": "d"}).status_code == 200
    assert team.api("viewer").get(f"{API}/projects/editors-own").status_code == 404


def test_signing_in_through_the_portal(team: Team) -> None:
    browser = team.browser("editor")
    assert browser.get(f"/runs/{team.run_id}").status_code == 200
    assert browser.patch(f"{API}/runs/{team.run_id}", json={"name": "b"}).status_code == 200
    del browser.headers["X-CSRF-Token"]
    assert_error(browser.patch(f"{API}/runs/{team.run_id}", json={"name": "c"}), 403, "FORBIDDEN")


def test_lists_show_only_what_the_caller_may_read(team: Team) -> None:
    admin = team.api("admin")
    secret_run = admin.post(f"{API}/runs", json={"project": OTHER, "name": "beta-secret"})
    beta_run = secret_run.json()["run_id"]
    admin.post(f"{API}/runs/{beta_run}/model-versions", json={"model": "shared-model"})
    viewer = team.api("viewer")
    runs = viewer.post(f"{API}/runs/search", json={}).json()["runs"]
    assert {r["project"] for r in runs} == {PROJECT}
    assert [p["name"] for p in viewer.get(f"{API}/projects").json()] == [PROJECT]
    outsider = team.api("outsider")
    assert outsider.post(f"{API}/runs/search", json={}).json()["runs"] == []
    assert outsider.get(f"{API}/projects").json() == []
    assert outsider.get(f"{API}/models").json() == []
    assert outsider.get(f"{API}/models/shared-model/versions").json() == []
    assert admin.get(f"{API}/models/shared-model/versions").json()[0]["project"] == OTHER
    # The change log: the viewer sees alpha's changes and none of beta's or of people.
    seen = {c["urn"] for c in viewer.get(f"{API}/changes", params={"limit": 1000}).json()}
    assert f"urn:modelyard:run:{team.run_id}" in seen
    assert f"urn:modelyard:run:{beta_run}" not in seen
    assert not [u for u in seen if u.startswith(("urn:modelyard:user:", "urn:modelyard:token:"))]
    # Models and datasets are a catalog every signed-in user sees; nothing else is theirs.
    outsiders = {c["urn"] for c in outsider.get(f"{API}/changes").json()}
    assert outsiders == {"urn:modelyard:model:shared-model"}
    # Pages: home, search, the not-found page's recent runs.
    browser = team.browser("viewer")
    for page in ("/", "/search?q=beta", "/projects", "/models", "/activity", "/no-such-page"):
        assert "beta-secret" not in browser.get(page).text, page
    assert "beta-secret" in team.browser("admin").get("/").text


def test_a_search_naming_a_project_the_caller_may_not_read_is_refused(team: Team) -> None:
    outsider = team.api("outsider")
    resp = outsider.post(f"{API}/runs/search", json={"project": PROJECT})
    assert_error(resp, 404, "NOT_FOUND")
    resp = team.api("viewer").post(f"{API}/runs/search", json={"projects": [PROJECT, OTHER]})
    assert_error(resp, 404, "NOT_FOUND")


def test_lineage_leaves_out_what_the_caller_may_not_see(team: Team) -> None:
    admin = team.api("admin")
    dataset = {"datasets": [{"name": "shared-data"}]}
    for run in (team.run_id, team.other_run_id):
        assert admin.post(f"{API}/runs/{run}/inputs", json=dataset).status_code == 200
    params = {"urn": "urn:modelyard:dataset:shared-data", "upstream": 0, "downstream": 2}
    everyone = {n["urn"] for n in admin.get(f"{API}/lineage", params=params).json()["nodes"]}
    assert f"urn:modelyard:run:{team.other_run_id}" in everyone
    graph = team.api("viewer").get(f"{API}/lineage", params=params).json()
    seen = {n["urn"] for n in graph["nodes"]}
    assert seen == {"urn:modelyard:dataset:shared-data", f"urn:modelyard:run:{team.run_id}"}
    assert all(e["downstream"] in seen and e["upstream"] in seen for e in graph["edges"])


def test_people_and_their_tokens_are_for_site_admins(team: Team) -> None:
    user = "urn:modelyard:user:editor"
    for path in (f"{API}/entities/{user}/aspects", f"/entities/{user}"):
        assert team.api("admin").get(path).status_code == 200, path
        assert team.api("owner").get(path).status_code == 404, path
    history = {"urn": user, "aspect": "user_sign_in"}
    assert team.api("viewer").get("/history", params=history).status_code == 404


def test_signing_out_ends_the_session_in_every_tab(team: Team) -> None:
    tab = team.browser("viewer")
    other_tab = team.api(None)
    other_tab.cookies = tab.cookies
    assert other_tab.get(f"/runs/{team.run_id}").status_code == 200
    page = tab.get("/").text
    assert "Sign out" in page
    resp = tab.post("/sign-out", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 303
    assert resp.headers["location"] == "/sign-in"
    assert other_tab.get(f"/runs/{team.run_id}").status_code == 303


def test_an_ended_session_leads_to_the_sign_in_page_and_no_further(team: Team) -> None:
    browser = team.browser("viewer")
    page = browser.get("/").text
    browser.post("/sign-out", data={"csrf_token": csrf_of(page)})
    browser.cookies.set("modelyard_session", team.browser("editor").cookies["modelyard_session"])
    team.browser("editor")  # (another session of the editor; this tab's cookie is the old one)
    stale = team.api(None)
    stale.cookies.set("modelyard_session", "not-a-session.0000")
    resp = stale.get(f"/runs/{team.run_id}")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/sign-in?next=")
    assert 'modelyard_session=""' in resp.headers["set-cookie"]
    sign_in = stale.get(resp.headers["location"])
    assert sign_in.status_code == 200
    assert "Sign in to modelyard" in sign_in.text


def test_the_last_site_admin_stays_one(team: Team) -> None:
    from modelyard.services.access import accounts

    for change in ({"admin": False}, {"disabled": True}):
        resp = team.api("admin").patch(f"{API}/users/admin", json=change)
        assert "last site admin" in assert_error(resp, 409), change
    assert accounts.get_user(team.store, name="admin").admin
    accounts.update_user(team.store, name="owner", admin=True, actor="admin")
    accounts.update_user(team.store, name="admin", admin=False, actor="owner")
    assert not accounts.get_user(team.store, name="admin").admin


def test_the_activity_page_tells_a_role_change_member_by_member(team: Team) -> None:
    from modelyard.services.access import accounts

    accounts.set_member(
        team.store, project=PROJECT, kind="user", name="viewer", role="editor", actor="owner"
    )
    page = team.browser("admin").get("/activity", params={"actor": "owner"}).text
    assert "members.user viewer" in page
    assert '"kind": "user"' not in page  # not the whole list again
