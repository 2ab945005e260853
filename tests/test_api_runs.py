"""REST API of projects, runs, params and tags: status codes, what is stored afterwards, and
the one error shape. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from modelyard.services.access.principals import LOCAL_NAME as LOCAL_USER
from tests.helpers import assert_error

API = "/api/v1"
TERMINAL = ("finished", "failed", "killed")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_run(api: httpx.Client, project: str = "p", **body: Any) -> dict[str, Any]:
    resp = api.post(f"{API}/runs", json={"project": project, **body})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def get_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    resp = api.get(f"{API}/runs/{run_id}")
    assert resp.status_code == 200, resp.text
    run: dict[str, Any] = resp.json()
    return run


def end_run(api: httpx.Client, run_id: str, **body: Any) -> dict[str, Any]:
    resp = api.patch(f"{API}/runs/{run_id}", json=body)
    assert resp.status_code == 200, resp.text
    run: dict[str, Any] = resp.json()
    return run


def project_names(api: httpx.Client) -> list[str]:
    resp = api.get(f"{API}/projects")
    assert resp.status_code == 200, resp.text
    return [p["name"] for p in resp.json()]


# --- projects


def test_create_project_then_get_by_name_and_by_id(api: httpx.Client) -> None:
    before = now_ms()
    resp = api.post(f"{API}/projects", json={"name": "churn", "description": "who leaves"})
    after = now_ms()
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["name"] == "churn"
    assert created["description"] == "who leaves"
    assert created["run_count"] == 0
    assert created["created_by"] == LOCAL_USER
    assert before <= created["created_at"] <= after
    assert isinstance(created["id"], int)

    by_name = api.get(f"{API}/projects/churn")
    by_id = api.get(f"{API}/projects/{created['id']}")
    assert by_name.status_code == 200, by_name.text
    assert by_id.status_code == 200, by_id.text
    assert by_name.json() == created
    assert by_id.json() == created


def test_duplicate_project_name_is_409_and_keeps_the_first(api: httpx.Client) -> None:
    first = api.post(f"{API}/projects", json={"name": "churn", "description": "first"})
    assert first.status_code == 201, first.text
    again = api.post(f"{API}/projects", json={"name": "churn", "description": "second"})
    message = assert_error(again, 409, "CONFLICT")
    assert "churn" in message
    assert api.get(f"{API}/projects/churn").json()["description"] == "first"
    assert project_names(api) == ["churn"]


def test_project_whose_name_is_all_digits_is_found_by_name(api: httpx.Client) -> None:
    alpha = api.post(f"{API}/projects", json={"name": "alpha"}).json()
    year = api.post(f"{API}/projects", json={"name": "2024"}).json()
    assert year["id"] != 2024  # ids are small; the name must still find it

    got = api.get(f"{API}/projects/2024")
    assert got.status_code == 200, got.text
    assert got.json()["name"] == "2024"

    patched = api.patch(f"{API}/projects/2024", json={"description": "fiscal"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["id"] == year["id"]
    assert api.get(f"{API}/projects/{year['id']}").json()["description"] == "fiscal"
    assert api.get(f"{API}/projects/{alpha['id']}").json()["description"] == ""


@pytest.mark.parametrize("ref", ["nope", "999999", "99999999999999999999", "0", "-1"])
def test_unknown_project_is_404(api: httpx.Client, ref: str) -> None:
    api.post(f"{API}/projects", json={"name": "exists"})
    message = assert_error(api.get(f"{API}/projects/{ref}"), 404, "NOT_FOUND")
    assert ref in message
    assert_error(api.patch(f"{API}/projects/{ref}", json={"description": "x"}), 404, "NOT_FOUND")
    assert project_names(api) == ["exists"]


def test_list_projects_with_run_counts(api: httpx.Client) -> None:
    assert api.get(f"{API}/projects").json() == []
    api.post(f"{API}/projects", json={"name": "empty"})
    expected = {"vision": 3, "churn": 1, "empty": 0}
    for name, count in expected.items():
        for _ in range(count):
            new_run(api, name)  # a run's project is created on first use

    listed = api.get(f"{API}/projects").json()
    names = [p["name"] for p in listed]
    assert names == sorted(expected)
    assert {p["name"]: p["run_count"] for p in listed} == expected
    for name, count in expected.items():
        assert api.get(f"{API}/projects/{name}").json()["run_count"] == count


def test_patch_project_description(api: httpx.Client) -> None:
    created = api.post(f"{API}/projects", json={"name": "churn", "description": "old"}).json()

    patched = api.patch(f"{API}/projects/churn", json={"description": "new"})
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**created, "description": "new"}
    assert api.get(f"{API}/projects/churn").json()["description"] == "new"

    by_id = api.patch(f"{API}/projects/{created['id']}", json={"description": "newer"})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["description"] == "newer"

    untouched = api.patch(f"{API}/projects/churn", json={})
    assert untouched.status_code == 200, untouched.text
    assert untouched.json()["description"] == "newer"

    # The name is not patchable: refused, not ignored.
    assert_error(api.patch(f"{API}/projects/churn", json={"name": "other"}), 422, "INVALID_INPUT")
    assert project_names(api) == ["churn"]


def test_project_name_limits(api: httpx.Client) -> None:
    longest = "é" * 256
    ok = api.post(f"{API}/projects", json={"name": longest})
    assert ok.status_code == 201, ok.text
    assert ok.json()["name"] == longest
    assert api.get(f"{API}/projects/{quote(longest)}").json()["name"] == longest

    message = assert_error(
        api.post(f"{API}/projects", json={"name": "é" * 257}), 422, "INVALID_INPUT"
    )
    assert "name" in message
    assert_error(api.post(f"{API}/projects", json={"name": ""}), 422, "INVALID_INPUT")
    assert_error(api.post(f"{API}/projects", json={"name": 5}), 422, "INVALID_INPUT")
    assert project_names(api) == [longest]


# --- runs


def test_create_run_without_run_id(api: httpx.Client) -> None:
    before = now_ms()
    created = new_run(
        api, "churn", name="gbm", params={"depth": "6"}, tags={"team": "growth"}, source="t.py"
    )
    after = now_ms()
    assert re.fullmatch(r"[0-9a-f]{32}", created["run_id"])
    assert created["run_id"] in created["urn"]
    assert created["project"] == "churn"
    assert created["name"] == "gbm"
    assert created["status"] == "running"
    assert before <= created["start_time"] <= after
    assert created["end_time"] is None
    assert created["error"] is None
    assert created["source"] == "t.py"
    assert created["created_by"] == LOCAL_USER
    assert created["params"] == {"depth": "6"}
    assert created["tags"] == {"team": "growth"}
    assert created["metrics"] == {}
    assert get_run(api, created["run_id"]) == created

    project = api.get(f"{API}/projects/churn").json()
    assert project["id"] == created["project_id"]
    assert project["run_count"] == 1

    unnamed = new_run(api, "churn")
    assert unnamed["run_id"] != created["run_id"]
    assert isinstance(unnamed["name"], str)
    assert unnamed["name"]


def test_create_run_with_client_run_id_is_idempotent(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    first = new_run(
        api, "churn", run_id=run_id, name="first", params={"lr": "0.1"}, start_time=1_000
    )
    assert first["run_id"] == run_id
    assert first["start_time"] == 1_000

    # A retried create with the same values changes nothing and answers the same run.
    again = api.post(
        f"{API}/runs",
        json={"project": "churn", "run_id": run_id, "name": "first", "params": {"lr": "0.1"}},
    )
    assert again.status_code in (200, 201), again.text
    assert again.json() == first
    assert get_run(api, run_id) == first
    assert api.get(f"{API}/projects/churn").json()["run_count"] == 1


def test_recreating_a_run_id_with_other_values_is_409_naming_them(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    first = new_run(
        api, "churn", run_id=run_id, name="first", params={"lr": "0.1"}, tags={"a": "1"}
    )
    resp = api.post(
        f"{API}/runs",
        json={
            "project": "churn",
            "run_id": run_id,
            "name": "second",
            "params": {"lr": "0.2"},
            "tags": {"a": "1", "b": "2"},
        },
    )
    message = assert_error(resp, 409, "CONFLICT")
    assert resp.json()["error"]["details"] == ["name", "params.lr", "tags.b"]
    assert "name, params.lr, tags.b" in message
    assert get_run(api, run_id) == first


def test_same_run_id_in_another_project_is_409(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    first = new_run(api, "a", run_id=run_id)
    resp = api.post(f"{API}/runs", json={"project": "b", "run_id": run_id})
    message = assert_error(resp, 409, "CONFLICT")
    assert run_id in message
    assert "'a'" in message
    assert get_run(api, run_id) == first
    assert project_names(api) == ["a"]  # the refused create did not make project b


@pytest.mark.parametrize(
    "bad_id", ["ABC", "A" * 32, "0" * 31, "0" * 33, "g" * 32, "../" + "0" * 29, 123]
)
def test_run_id_must_be_32_lowercase_hex(api: httpx.Client, bad_id: object) -> None:
    resp = api.post(f"{API}/runs", json={"project": "p", "run_id": bad_id})
    assert "run_id" in assert_error(resp, 422, "INVALID_INPUT")
    assert project_names(api) == []


def test_get_unknown_run_is_404(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    assert run_id in assert_error(api.get(f"{API}/runs/{run_id}"), 404, "NOT_FOUND")
    assert_error(api.patch(f"{API}/runs/{run_id}", json={"name": "x"}), 404, "NOT_FOUND")


def test_rename_run(api: httpx.Client) -> None:
    run = new_run(api, name="before")
    renamed = end_run(api, run["run_id"], name="after")
    assert renamed == {**run, "name": "after"}
    assert get_run(api, run["run_id"]) == renamed


def test_end_run_finished_defaults_end_time_to_now(api: httpx.Client) -> None:
    run = new_run(api)
    before = now_ms()
    ended = end_run(api, run["run_id"], status="finished")
    after = now_ms()
    assert ended["status"] == "finished"
    assert before <= ended["end_time"] <= after
    assert ended["end_time"] >= ended["start_time"]
    assert ended["error"] is None
    assert get_run(api, run["run_id"]) == ended


def test_end_run_failed_with_error(api: httpx.Client) -> None:
    run = new_run(api)
    error = "ValueError: boom\n  at train.py:12 — ünïcode"
    ended = end_run(api, run["run_id"], status="failed", error=error)
    assert ended["status"] == "failed"
    assert ended["error"] == error
    assert ended["end_time"] is not None
    assert get_run(api, run["run_id"])["error"] == error


def test_end_run_killed_with_explicit_end_time(api: httpx.Client) -> None:
    start = 1_700_000_000_000
    run = new_run(api, start_time=start)
    ended = end_run(api, run["run_id"], status="killed", end_time=start + 5_000)
    assert ended["status"] == "killed"
    assert ended["start_time"] == start
    assert ended["end_time"] == start + 5_000
    # An end at the very start is a zero-length run, not an error.
    other = new_run(api, start_time=start)
    assert end_run(api, other["run_id"], status="finished", end_time=start)["end_time"] == start


def test_end_time_before_start_time_is_refused(api: httpx.Client) -> None:
    start = 1_700_000_000_000
    run = new_run(api, start_time=start)
    resp = api.patch(
        f"{API}/runs/{run['run_id']}", json={"status": "finished", "end_time": start - 1}
    )
    assert "start_time" in assert_error(resp, 409)
    assert get_run(api, run["run_id"]) == run


@pytest.mark.parametrize(
    ("first", "then"),
    [(a, b) for a in TERMINAL for b in ("running", *TERMINAL) if a != b],
)
def test_an_ended_run_cannot_change_status(api: httpx.Client, first: str, then: str) -> None:
    run = new_run(api)
    ended = end_run(api, run["run_id"], status=first, error="e" if first != "finished" else None)
    resp = api.patch(f"{API}/runs/{run['run_id']}", json={"status": then})
    message = assert_error(resp, 409, "INVALID_STATE")
    assert first in message
    assert get_run(api, run["run_id"]) == ended


def test_ending_again_with_the_same_status_is_a_noop(api: httpx.Client) -> None:
    run = new_run(api)
    ended = end_run(api, run["run_id"], status="finished")
    time.sleep(0.005)
    assert end_run(api, run["run_id"], status="finished") == ended
    assert get_run(api, run["run_id"]) == ended


@pytest.mark.parametrize("status", ["paused", "FINISHED", "", "done", 1, ["finished"]])
def test_status_outside_the_enum_is_422(api: httpx.Client, status: object) -> None:
    run = new_run(api)
    resp = api.patch(f"{API}/runs/{run['run_id']}", json={"status": status, "name": "changed"})
    assert_error(resp, 422, "INVALID_INPUT")
    assert get_run(api, run["run_id"]) == run  # neither the name nor the status changed


def test_patch_run_refuses_bad_input_and_changes_nothing(api: httpx.Client) -> None:
    run = new_run(api, name="keep")
    url = f"{API}/runs/{run['run_id']}"
    message = assert_error(api.patch(url, json={"name": "n" * 257}), 422, "INVALID_INPUT")
    assert "name" in message
    assert_error(api.patch(url, json={"name": ""}), 422, "INVALID_INPUT")
    assert_error(api.patch(url, json={"status": "finished", "end_time": -1}), 422)
    assert_error(api.patch(url, json={"status": "finished", "end_time": 2**70}), 422)
    assert_error(api.patch(url, json={"project": "elsewhere"}), 422, "INVALID_INPUT")
    assert get_run(api, run["run_id"]) == run


def test_overlong_run_name_is_refused_and_nothing_stored(api: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    resp = api.post(f"{API}/runs", json={"project": "p", "run_id": run_id, "name": "n" * 257})
    assert "name" in assert_error(resp, 422, "INVALID_INPUT")
    assert_error(api.get(f"{API}/runs/{run_id}"), 404, "NOT_FOUND")
    assert project_names(api) == []

    longest = "名" * 256
    assert new_run(api, run_id=run_id, name=longest)["name"] == longest
    assert get_run(api, run_id)["name"] == longest


# --- params


def test_params_are_immutable(api: httpx.Client) -> None:
    run = new_run(api, params={"lr": "0.1"})
    url = f"{API}/runs/{run['run_id']}/params"

    same = api.post(url, json={"params": {"lr": "0.1"}})
    assert same.status_code == 204, same.text
    assert same.content == b""

    clash = api.post(url, json={"params": {"depth": "6", "lr": "0.2"}})
    message = assert_error(clash, 409, "CONFLICT")
    assert "lr" in message
    assert "depth" not in message
    # Nothing of the refused request was kept, not even the new key.
    assert get_run(api, run["run_id"])["params"] == {"lr": "0.1"}

    added = api.post(url, json={"params": {"depth": "6", "lr": "0.1"}})
    assert added.status_code == 204, added.text
    assert get_run(api, run["run_id"])["params"] == {"lr": "0.1", "depth": "6"}


def test_param_limits_refuse_and_never_truncate(api: httpx.Client) -> None:
    run = new_run(api)
    url = f"{API}/runs/{run['run_id']}/params"
    long_key, long_value = "k" * 251, "v" * 6001
    assert_error(api.post(url, json={"params": {long_key: "1"}}), 422, "INVALID_INPUT")
    message = assert_error(api.post(url, json={"params": {"k": long_value}}), 422)
    assert "6000" in message
    assert_error(api.post(url, json={"params": {"": "1"}}), 422, "INVALID_INPUT")
    batch = f"{API}/runs/{run['run_id']}/batch"
    assert_error(api.post(batch, json={"params": {"k": long_value}}), 422, "INVALID_INPUT")
    assert_error(api.post(batch, json={"params": {long_key: "1"}}), 422, "INVALID_INPUT")
    assert get_run(api, run["run_id"])["params"] == {}

    # At the limits exactly, multi-byte text is kept whole.
    key, value = "é" * 250, "日" * 6000
    assert api.post(url, json={"params": {key: value}}).status_code == 204
    assert get_run(api, run["run_id"])["params"] == {key: value}

    # The same limits hold when params come with the create.
    run_id = uuid.uuid4().hex
    resp = api.post(
        f"{API}/runs", json={"project": "q", "run_id": run_id, "params": {"a": long_value}}
    )
    assert_error(resp, 422, "INVALID_INPUT")
    assert_error(api.get(f"{API}/runs/{run_id}"), 404)


@pytest.mark.parametrize(
    "params", [{"lr": {"a": 1}}, {"lr": 0.1}, {"lr": None}, {"lr": ["0.1"]}, ["lr", "0.1"], "lr"]
)
def test_param_wrong_types_are_refused(api: httpx.Client, params: object) -> None:
    run = new_run(api)
    resp = api.post(f"{API}/runs/{run['run_id']}/params", json={"params": params})
    assert_error(resp, 422, "INVALID_INPUT")
    assert get_run(api, run["run_id"])["params"] == {}


# --- tags


def test_tags_set_overwrite_and_delete(api: httpx.Client) -> None:
    run = new_run(api, tags={"owner": "ann"})
    url = f"{API}/runs/{run['run_id']}/tags"

    resp = api.post(url, json={"tags": {"team": "a", "stage": "dev"}})
    assert resp.status_code == 204, resp.text
    assert get_run(api, run["run_id"])["tags"] == {"owner": "ann", "team": "a", "stage": "dev"}

    assert api.post(url, json={"tags": {"team": "b"}}).status_code == 204
    assert get_run(api, run["run_id"])["tags"] == {"owner": "ann", "team": "b", "stage": "dev"}

    assert api.delete(f"{url}/stage").status_code == 204
    assert get_run(api, run["run_id"])["tags"] == {"owner": "ann", "team": "b"}

    assert "stage" in assert_error(api.delete(f"{url}/stage"), 404, "NOT_FOUND")
    assert "never" in assert_error(api.delete(f"{url}/never"), 404, "NOT_FOUND")
    assert get_run(api, run["run_id"])["tags"] == {"owner": "ann", "team": "b"}


@pytest.mark.parametrize("key", ["team/owner", "a b?c#d&e", "x%2Fy", "日本"])
def test_any_tag_key_can_be_deleted(api: httpx.Client, key: str) -> None:
    run = new_run(api, tags={key: "1", "other": "2"})
    resp = api.delete(f"{API}/runs/{run['run_id']}/tags/{quote(key, safe='')}")
    assert resp.status_code == 204, resp.text
    assert get_run(api, run["run_id"])["tags"] == {"other": "2"}


def test_tag_limits_refuse_and_never_truncate(api: httpx.Client) -> None:
    run = new_run(api, tags={"keep": "me"})
    url = f"{API}/runs/{run['run_id']}/tags"
    message = assert_error(api.post(url, json={"tags": {"t": "v" * 8001}}), 422, "INVALID_INPUT")
    assert "8000" in message
    assert_error(api.post(url, json={"tags": {"k" * 251: "v"}}), 422, "INVALID_INPUT")
    assert_error(api.post(url, json={"tags": {"t": {"a": 1}}}), 422, "INVALID_INPUT")
    assert_error(api.post(url, json={"tags": {"t": 1}}), 422, "INVALID_INPUT")
    batch = f"{API}/runs/{run['run_id']}/batch"
    assert_error(api.post(batch, json={"tags": {"t": "v" * 8001}}), 422, "INVALID_INPUT")
    assert get_run(api, run["run_id"])["tags"] == {"keep": "me"}

    value = "日" * 8000
    assert api.post(url, json={"tags": {"t": value}}).status_code == 204
    assert get_run(api, run["run_id"])["tags"] == {"keep": "me", "t": value}


def test_tags_are_allowed_after_the_run_ended(api: httpx.Client) -> None:
    run = new_run(api, tags={"stage": "train"})
    end_run(api, run["run_id"], status="failed", error="oom")
    url = f"{API}/runs/{run['run_id']}"

    assert api.post(f"{url}/tags", json={"tags": {"reviewed": "yes"}}).status_code == 204
    assert api.post(f"{url}/batch", json={"tags": {"cause": "oom"}}).status_code == 204
    assert api.delete(f"{url}/tags/stage").status_code == 204
    after = get_run(api, run["run_id"])
    assert after["tags"] == {"reviewed": "yes", "cause": "oom"}
    assert after["status"] == "failed"


def test_params_on_an_ended_run_are_refused_and_not_stored(api: httpx.Client) -> None:
    run = new_run(api, params={"lr": "0.1"})
    ended = end_run(api, run["run_id"], status="finished")
    url = f"{API}/runs/{run['run_id']}"

    message = assert_error(
        api.post(f"{url}/params", json={"params": {"depth": "6"}}), 409, "INVALID_STATE"
    )
    assert "finished" in message
    assert_error(api.post(f"{url}/batch", json={"params": {"depth": "6"}}), 409, "INVALID_STATE")
    resp = api.post(f"{url}/batch", json={"params": {"depth": "6"}, "tags": {"t": "1"}})
    assert_error(resp, 409, "INVALID_STATE")
    assert get_run(api, run["run_id"]) == ended


def test_params_and_tags_of_an_unknown_run_are_404(api: httpx.Client) -> None:
    url = f"{API}/runs/{uuid.uuid4().hex}"
    assert_error(api.post(f"{url}/params", json={"params": {"a": "1"}}), 404, "NOT_FOUND")
    assert_error(api.post(f"{url}/tags", json={"tags": {"a": "1"}}), 404, "NOT_FOUND")
    assert_error(api.delete(f"{url}/tags/a"), 404, "NOT_FOUND")
    assert_error(api.post(f"{url}/batch", json={"tags": {"a": "1"}}), 404, "NOT_FOUND")


# --- the error shape everywhere


def test_unknown_route_is_404_in_the_error_shape(api: httpx.Client) -> None:
    for path in (f"{API}/nothing-here", f"{API}/runs/x/nothing"):
        message = assert_error(api.get(path), 404, "NOT_FOUND")
        assert path in message


def test_wrong_method_is_405_in_the_error_shape(api: httpx.Client) -> None:
    run = new_run(api)
    resp = api.delete(f"{API}/projects")
    message = assert_error(resp, 405, "METHOD_NOT_ALLOWED")
    assert "DELETE" in message
    allowed = {m.strip() for m in resp.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed
    assert "PUT" in assert_error(api.put(f"{API}/runs/{run['run_id']}", json={}), 405)


def test_options_names_the_methods_of_the_resource(api: httpx.Client) -> None:
    run = new_run(api)
    for path, methods in (
        (f"{API}/projects", "GET, POST"),
        (f"{API}/runs/{run['run_id']}", "GET, PATCH"),
        (f"{API}/runs/search", "POST"),  # the search, not a run called "search"
        (f"{API}/runs/{run['run_id']}/steps/a/b", "GET, PUT"),
    ):
        resp = api.options(path)
        assert (resp.status_code, resp.headers.get("allow"), resp.content) == (204, methods, b"")
    # A method the resource does not take names the same methods.
    assert api.delete(f"{API}/runs/search").headers["allow"] == "POST"
    assert_error(api.options(f"{API}/nothing-here"), 404, "NOT_FOUND")


def test_malformed_bodies_are_422_in_the_error_shape(api: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    for content in (b"[]", b'"run"'):
        resp = api.post(f"{API}/runs", content=content, headers=headers)
        assert_error(resp, 422, "INVALID_INPUT")
    for content in (b"{not json", b'{"project": "p",}'):
        resp = api.post(f"{API}/runs", content=content, headers=headers)
        assert "not valid JSON" in assert_error(resp, 422, "INVALID_INPUT")
    resp = api.post(f"{API}/runs", content=b"", headers=headers)
    assert "body" in assert_error(resp, 422, "INVALID_INPUT")
    resp = api.post(f"{API}/runs", json={"project": "p", "unexpected": 1})
    assert "unexpected" in assert_error(resp, 422, "INVALID_INPUT")
    assert "project" in assert_error(api.post(f"{API}/runs", json={}), 422)
    assert project_names(api) == []
