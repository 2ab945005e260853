"""Names are stored normalised (NFC, trimmed, nothing invisible), and a new project or model
whose name only looks like an existing one is refused. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import ServerThread
from tests.helpers import assert_error

API = "/api/v1"
NFD_CAFE = "cafe\u0301"  # e + combining acute: looks exactly like "café"


def project_names(api: httpx.Client) -> list[str]:
    resp = api.get(f"{API}/projects")
    assert resp.status_code == 200, resp.text
    return sorted(p["name"] for p in resp.json())


def new_run_id(api: httpx.Client, project: str = "p") -> str:
    resp = api.post(f"{API}/runs", json={"project": project})
    assert resp.status_code == 201, resp.text
    run_id: str = resp.json()["run_id"]
    return run_id


def test_names_are_stored_nfc_and_trimmed(api: httpx.Client) -> None:
    resp = api.post(f"{API}/runs", json={"project": f"  {NFD_CAFE}\t", "name": " r1 "})
    assert resp.status_code == 201, resp.text
    assert resp.json()["project"] == "caf\u00e9"
    assert resp.json()["name"] == "r1"
    # The same name typed either way is the same project.
    again = api.post(f"{API}/runs", json={"project": "caf\u00e9"})
    assert again.status_code == 201, again.text
    assert project_names(api) == ["caf\u00e9"]
    assert api.get(f"{API}/projects/caf%C3%A9").json()["run_count"] == 2


@pytest.mark.parametrize(
    "bad",
    ["   ", "\t\n", "a\u200bb", "a\u200cb", "a\u200db", "a\u2060b", "\ufeffab", "a\x07b"],
)
def test_blank_and_invisible_names_are_refused(api: httpx.Client, bad: str) -> None:
    resp = api.post(f"{API}/projects", json={"name": bad})
    assert "name" in assert_error(resp, 422, "INVALID_INPUT")
    resp = api.post(f"{API}/runs", json={"project": "p", "name": bad})
    assert "name" in assert_error(resp, 422, "INVALID_INPUT")
    assert project_names(api) == []


@pytest.mark.parametrize("twin", ["Churn", "CHURN", "\uff43hurn"])  # case, full-width c
def test_look_alike_project_is_409_naming_the_existing_one(api: httpx.Client, twin: str) -> None:
    assert api.post(f"{API}/projects", json={"name": "churn"}).status_code == 201
    message = assert_error(api.post(f"{API}/projects", json={"name": twin}), 409, "CONFLICT")
    assert "'churn'" in message
    # A run's project creates one implicitly: refused the same way, and no run is made.
    resp = api.post(f"{API}/runs", json={"project": twin})
    assert "'churn'" in assert_error(resp, 409, "CONFLICT")
    assert project_names(api) == ["churn"]
    assert api.get(f"{API}/projects/churn").json()["run_count"] == 0


def test_look_alike_model_is_409_and_registers_nothing(api: httpx.Client) -> None:
    run_id = new_run_id(api)
    url = f"{API}/runs/{run_id}/model-versions"
    assert api.post(url, json={"model": "Ranker"}).status_code == 201
    message = assert_error(api.post(url, json={"model": "ranker"}), 409, "CONFLICT")
    assert "'Ranker'" in message
    # The same name again is a new version, and typed in NFD it is the NFC model.
    assert api.post(url, json={"model": "Ranker"}).json()["version"] == 2
    assert api.post(url, json={"model": NFD_CAFE}).json()["model"] == "caf\u00e9"
    assert api.post(url, json={"model": "caf\u00e9"}).json()["version"] == 2
    models = api.get(f"{API}/models").json()
    assert sorted((m["name"], m["versions"]) for m in models) == [("Ranker", 2), ("caf\u00e9", 2)]


VARIANTS = ["churn", "Churn", "CHURN", "cHurn", "chUrn", "chuRn", "churN", "\uff43hurn"]


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Each call in its own thread, released together."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def test_look_alikes_created_at_once_make_one_project(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answers = at_once(
            [partial(http.post, f"{API}/projects", json={"name": n}) for n in VARIANTS[:4]]
            + [partial(http.post, f"{API}/runs", json={"project": n}) for n in VARIANTS[4:]]
        )
        created = [r for r in answers if r.status_code == 201]
        assert len(created) >= 1
        assert all(r.status_code in (201, 409) for r in answers), [r.text for r in answers]
        names = project_names(http)
        assert len(names) == 1, names
        # Every refusal names the one project that exists.
        assert all(
            names[0] in r.json()["error"]["message"] for r in answers if r.status_code == 409
        )


def test_look_alikes_registered_at_once_make_one_model(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        run_id = new_run_id(http)
        url = f"{API}/runs/{run_id}/model-versions"
        answers = at_once([partial(http.post, url, json={"model": n}) for n in VARIANTS])
        assert sorted(r.status_code for r in answers) == [201] + [409] * 7
        assert [m["name"] for m in http.get(f"{API}/models").json()] == [
            next(r.json()["model"] for r in answers if r.status_code == 201)
        ]


def test_names_typed_in_nfd_in_addresses_find_the_nfc_entity(api: httpx.Client) -> None:
    run_id = new_run_id(api, "caf\u00e9")
    assert api.post(f"{API}/runs/{run_id}/model-versions", json={"model": "caf\u00e9"}).is_success
    nfd = quote(NFD_CAFE)
    assert api.get(f"{API}/projects/{nfd}").json()["name"] == "caf\u00e9"
    assert api.get(f"{API}/models/{nfd}/versions/1").json()["model"] == "caf\u00e9"
    assert [v["version"] for v in api.get(f"{API}/models/{nfd}/versions").json()] == [1]
    for page in (f"/projects/{nfd}", f"/models/{nfd}", f"/models/{nfd}/versions/1"):
        assert api.get(page).status_code == 200, page
