"""The activity page (the change log with filters) and an aspect's history with diffs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from modelyard.api.deps import get_actor
from modelyard.metadata import store as store_module
from modelyard.metadata.urn import dataset_urn, model_urn, run_urn
from modelyard.web.diff import changed_keys, line_diff
from tests.helpers import new_run
from tests.test_web_lineage import (
    HOSTILE,
    Element,
    assert_escaped,
    assert_friendly_error,
    page,
    parse_html,
)

API = "/api/v1"
Change = tuple[str, str, int]  # urn, aspect, version


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def shown_changes(doc: Element) -> list[Change]:
    """The changes listed on a page, read off each row's diff link, top to bottom."""
    out = []
    for row in doc.find("table", cls="changes").find("tbody").find_all("tr"):
        link = parse_qs(urlsplit(row.find_all("a")[-1].attrs["href"]).query)
        out.append((link["urn"][0], link["aspect"][0], int(link["version"][0])))
    return out


def listed(api: httpx.Client, **params: Any) -> list[Change]:
    doc = page(api, "/activity", **params)
    if not doc.find_all("table", cls="changes"):
        return []
    return shown_changes(doc)


def api_changes(api: httpx.Client, **params: Any) -> list[Change]:
    resp = api.get(f"{API}/changes", params={"limit": 1000, **params})
    resp.raise_for_status()
    return [(c["urn"], c["aspect"], c["version"]) for c in resp.json()]


def set_tags(api: httpx.Client, run_id: str, **tags: str) -> None:
    api.post(f"{API}/runs/{run_id}/tags", json={"tags": tags}).raise_for_status()


@pytest.fixture
def acting_as(app: FastAPI) -> Iterator[Callable[[str], Any]]:
    """Make what follows happen as another user."""

    @contextmanager
    def as_user(name: str) -> Iterator[None]:
        async def actor() -> str:
            return name

        app.dependency_overrides[get_actor] = actor
        try:
            yield
        finally:
            app.dependency_overrides.pop(get_actor, None)

    yield as_user
    app.dependency_overrides.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Set the time the store stamps on changes (UTC)."""

    def set_now(text: str) -> None:
        monkeypatch.setattr(store_module, "now_ms", lambda: ms(text))

    return set_now


# --- activity


def test_activity_lists_every_change_newest_first(api: httpx.Client) -> None:
    rid = new_run(api, "act", name="first")
    set_tags(api, rid, stage="dev")
    other = new_run(api, "act", name="second")
    api.patch(f"{API}/runs/{other}", json={"status": "finished"}).raise_for_status()
    doc = page(api, "/activity")
    assert doc.find("a", href="/activity").attrs.get("aria-current") == "page"
    assert shown_changes(doc) == api_changes(api)
    assert shown_changes(doc)[0] == (run_urn(other), "run_state", 2)
    assert (run_urn(rid), "tags", 1) in shown_changes(doc)
    names = {a.text() for a in doc.find("table", cls="changes").find_all("a")}
    assert {"first", "second"} <= names


def test_activity_filtered_by_entity(api: httpx.Client) -> None:
    a, b = new_run(api, "act"), new_run(api, "act")
    set_tags(api, a, stage="dev")
    set_tags(api, b, stage="dev")
    set_tags(api, a, stage="prod")
    expected = api_changes(api, urn=run_urn(a))
    assert listed(api, urn=run_urn(a)) == expected
    assert {c[0] for c in expected} == {run_urn(a)}
    assert (run_urn(a), "tags", 2) in expected
    assert listed(api, urn=dataset_urn("never-made")) == []
    doc = page(api, "/activity", urn=dataset_urn("never-made"))
    assert "No change matches these filters" in doc.find("main").text()


def test_activity_filtered_by_actor(api: httpx.Client, acting_as: Callable[[str], Any]) -> None:
    with acting_as("alice"):
        alice_run = new_run(api, "act")
    with acting_as("bob"):
        set_tags(api, alice_run, reviewed="yes")
        bob_run = new_run(api, "act")
    for who in ("alice", "bob"):
        expected = api_changes(api, actor=who)
        assert expected
        assert listed(api, actor=who) == expected
    assert {c[0] for c in listed(api, actor="bob")} == {run_urn(alice_run), run_urn(bob_run)}
    assert (run_urn(alice_run), "tags", 1) in listed(api, actor="bob")
    assert (run_urn(alice_run), "tags", 1) not in listed(api, actor="alice")
    assert listed(api, actor="carol") == []
    both = listed(api, actor="bob", urn=run_urn(alice_run))
    assert both == [(run_urn(alice_run), "tags", 1)]


def test_activity_within_a_time_window(api: httpx.Client, clock: Callable[[str], None]) -> None:
    clock("2024-05-01T10:00:00")
    first = new_run(api, "act")
    clock("2024-05-02T09:30:00")
    set_tags(api, first, stage="dev")
    clock("2024-05-03T23:59:00")
    set_tags(api, first, stage="prod")
    everything = api_changes(api)
    day3, day2, day1 = everything[:1], everything[1:2], everything[2:]
    assert day3 + day2 == [(run_urn(first), "tags", 2), (run_urn(first), "tags", 1)]
    assert (run_urn(first), "run_properties", 1) in day1

    assert listed(api, since="2024-05-02") == api_changes(api, since=ms("2024-05-02T00:00:00"))
    assert listed(api, since="2024-05-02") == day3 + day2
    assert listed(api, since="2024-05-04") == []
    assert listed(api, since="2024-05-02T09:31") == day3
    assert listed(api, since="2024-05-02T09:30") == day3 + day2


def test_activity_until_includes_the_whole_day_or_minute(
    api: httpx.Client, clock: Callable[[str], None]
) -> None:
    clock("2024-05-01T23:59:59.999")
    first = new_run(api, "act")
    clock("2024-05-02T00:00:00")  # exactly midnight: the first moment of the 2nd
    set_tags(api, first, stage="dev")
    clock("2024-05-03T23:59:30")
    set_tags(api, first, stage="prod")
    everything = api_changes(api)
    day3, day2, day1 = everything[:1], everything[1:2], everything[2:]
    assert day3 + day2 == [(run_urn(first), "tags", 2), (run_urn(first), "tags", 1)]
    assert listed(api, until="2024-05-01") == day1
    assert listed(api, until="2024-05-01T23:59") == day1
    assert listed(api, until="2024-05-02") == day2 + day1
    assert listed(api, until="2024-05-02T00:00") == day2 + day1
    assert listed(api, until="2024-05-03T23:58") == day2 + day1
    assert listed(api, until="2024-05-03T23:59") == everything
    assert listed(api, until="2024-05-03") == everything
    assert listed(api, since="2024-05-02", until="2024-05-02") == day2
    assert listed(api, since="2024-05-02T00:00", until="2024-05-02T00:00:00") == day2
    assert listed(api, since="2024-05-02T00:01", until="2024-05-03") == day3
    assert listed(api, since="2024-04-01", until="2024-04-30") == []


def test_a_bad_date_is_an_inline_error(api: httpx.Client) -> None:
    new_run(api, "act")
    resp = api.get("/activity", params={"since": "yesterday", "actor": "local"})
    assert_friendly_error(resp, 400, "'yesterday' is not a date")
    doc = parse_html(resp.text)
    assert "YYYY-MM-DD" in doc.find("div", cls="notice-error").text()
    form = doc.find("form", id="activity-filters")
    assert form.find("input", name="since").attrs["value"] == "yesterday"
    assert form.find("input", name="actor").attrs["value"] == "local"
    assert not doc.find_all("table", cls="changes")

    for params, reason in [
        ({"until": "2024-13-01"}, "'2024-13-01' is not a date"),
        ({"since": "2024-05-03", "until": "2024-05-02"}, "Since must be before until"),
        ({"urn": "run:123"}, "not a modelyard URN"),
    ]:
        assert_friendly_error(api.get("/activity", params=params), 400, reason)
    assert_friendly_error(api.get("/activity", params={"before": "x"}), 422, "before")


def test_activity_pages_older_changes(api: httpx.Client) -> None:
    rid = new_run(api, "act")
    for i in range(60):
        set_tags(api, rid, step=str(i))
    everything = api_changes(api, urn=run_urn(rid))
    assert len(everything) > 60
    doc = page(api, "/activity", urn=run_urn(rid))
    first = shown_changes(doc)
    assert first == everything[:50]
    older = doc.find("a", rel="next").attrs["href"]
    assert parse_qs(urlsplit(older).query)["urn"] == [run_urn(rid)]
    rest = page(api, older)
    assert shown_changes(rest) == everything[50:]
    assert not rest.find_all("a", rel="next")
    assert rest.find("nav", cls="pager").find("a").attrs["href"].startswith("/activity?urn=")


def test_hostile_names_are_escaped_on_activity_and_history(api: httpx.Client) -> None:
    script, img = HOSTILE
    rid = new_run(api, "xss", name=script, tags={"note": img})
    set_tags(api, rid, note=script)
    api.post(f"{API}/runs/{rid}/inputs", json={"datasets": [{"name": img}]}).raise_for_status()
    api.post(f"{API}/runs/{rid}/outputs", json={"models": [{"name": script}]}).raise_for_status()
    assert_escaped(api.get("/activity"), script, img)
    filtered = api.get("/activity", params={"actor": script, "urn": run_urn(rid)})
    assert_escaped(filtered)
    form = parse_html(filtered.text).find("form", id="activity-filters")
    assert form.find("input", name="actor").attrs["value"] == script
    for typed, expected in (("<script>", f"{script} (run in xss)"), ('"><img', f"{img} (dataset)")):
        offered = api.get("/activity/entities", params={"entity": typed})  # the box's suggestions
        assert offered.status_code == 200
        assert script not in offered.text
        assert img not in offered.text
        options = parse_html(offered.text).find_all("option")
        assert expected in [o.attrs["value"] for o in options]
    resp = api.get("/activity", params={"since": img})
    assert resp.status_code == 400
    assert img not in resp.text
    assert not parse_html(resp.text).find_all("img")
    for urn, aspect, shown in [
        (run_urn(rid), "tags", (script, img)),
        (run_urn(rid), "run_properties", (script,)),
        (dataset_urn(img), "dataset_properties", (img,)),
        (model_urn(script), "model_properties", (script,)),
    ]:
        assert_escaped(api.get("/history", params={"urn": urn, "aspect": aspect}), *shown)


# --- history


def diff_lines(doc: Element) -> list[tuple[str, str]]:
    return [
        (d.attrs.get("class", ""), d.text())
        for d in doc.find("div", cls="diff").children
        if isinstance(d, Element)
    ]


def test_history_diff_shows_the_old_and_new_tag_value(api: httpx.Client) -> None:
    rid = new_run(api, "hist", tags={"stage": "dev", "owner": "ann"})
    set_tags(api, rid, stage="prod", team="ml")
    doc = page(api, "/history", urn=run_urn(rid), aspect="tags")
    assert doc.find("section", id="history-diff").find("h2").text() == "v1 → v2"
    summary = [li.text() for li in doc.find("ul", cls="history-summary").find_all("li")]
    assert summary == ["tags.stage: dev → prod", "tags.team: added ml"]
    lines = diff_lines(doc)
    assert ("del", '- "stage": "dev"') in lines
    assert ("add", '+ "stage": "prod",') in lines
    assert ("add", '+ "team": "ml"') in lines
    assert lines[0][0] == "hunk"
    assert not [t for kind, t in lines if kind in ("add", "del") and "owner" in t]
    versions = doc.find("table", id="history-versions").rows()
    assert [r[0].split()[0] for r in versions] == ["v2", "v1"]
    assert versions[0][2] == "local"


def test_history_of_the_first_version_is_created_with_every_line_added(
    api: httpx.Client,
) -> None:
    rid = new_run(api, "hist", tags={"stage": "dev"})
    set_tags(api, rid, stage="prod")
    doc = page(api, "/history", urn=run_urn(rid), aspect="tags", version=1)
    assert "created" in doc.find("section", id="history-diff").find("h2").text()
    lines = diff_lines(doc)
    assert lines[0][0] == "hunk"
    assert [kind for kind, _ in lines[1:]] == ["add"] * 5
    assert ("add", '+ "stage": "dev"') in lines


def test_history_compares_any_two_versions(api: httpx.Client) -> None:
    rid = new_run(api, "hist", tags={"stage": "dev"})
    set_tags(api, rid, stage="staging")
    set_tags(api, rid, stage="prod")
    api.delete(f"{API}/runs/{rid}/tags/stage").raise_for_status()
    latest = page(api, "/history", urn=run_urn(rid), aspect="tags")
    assert latest.find("section", id="history-diff").find("h2").text() == "v3 → v4"
    summary = [li.text() for li in latest.find("ul", cls="history-summary").find_all("li")]
    assert summary == ["tags.stage: removed (was prod)"]
    doc = page(api, "/history", urn=run_urn(rid), aspect="tags", version=3, against=1)
    summary = [li.text() for li in doc.find("ul", cls="history-summary").find_all("li")]
    assert summary == ["tags.stage: dev → prod"]
    same = page(api, "/history", urn=run_urn(rid), aspect="tags", version=2, against=2)
    assert "No differences" in same.find("section", id="history-diff").text()
    # each version links to its diff with the one before
    links = [a.attrs["href"] for a in latest.find("table", id="history-versions").find_all("a")]
    assert any(parse_qs(urlsplit(h).query).get("version") == ["2"] for h in links)


def test_activity_diff_links_open_the_history(api: httpx.Client) -> None:
    rid = new_run(api, "hist", tags={"stage": "dev"})
    set_tags(api, rid, stage="prod")
    doc = page(api, "/activity", urn=run_urn(rid))
    row = next(
        tr
        for tr in doc.find("table", cls="changes").find("tbody").find_all("tr")
        if "tags" in tr.text() and "v1 → v2" in tr.text()
    )
    history = page(api, row.find_all("a")[-1].attrs["href"])
    assert [li.text() for li in history.find_all("li")] == ["tags.stage: dev → prod"]


def test_unknown_history_gives_friendly_pages(api: httpx.Client) -> None:
    rid = new_run(api, "hist")
    urn = run_urn(rid)
    get = api.get
    assert_friendly_error(get("/history", params={"urn": urn, "aspect": "tags"}), 404, "no aspect")
    assert_friendly_error(
        get("/history", params={"urn": urn, "aspect": "run_state", "version": 9}),
        404,
        "there is no version 9",
    )
    assert_friendly_error(
        get("/history", params={"urn": urn, "aspect": "run_state", "against": 5}),
        404,
        "there is no version 5",
    )
    assert_friendly_error(
        get("/history", params={"urn": dataset_urn("nope"), "aspect": "tags"}), 404, "no aspect"
    )
    assert_friendly_error(
        get("/history", params={"urn": urn, "aspect": "bogus"}), 400, "unknown aspect 'bogus'"
    )
    assert_friendly_error(get("/history", params={"urn": "x", "aspect": "tags"}), 400, "URN")
    assert_friendly_error(get("/history", params={"urn": urn}), 422, "aspect")


# --- the diff itself


def test_changed_keys_walks_nested_dicts() -> None:
    old = {"params": {"lr": "0.1", "depth": 3}, "tags": {"a": "x"}, "gone": [1, 2]}
    new = {"params": {"lr": "0.2", "depth": 3}, "tags": {"a": "x", "b": ""}, "seen": True}
    assert [str(c) for c in changed_keys(old, new)] == [
        "gone: removed (was [1, 2])",
        "params.lr: 0.1 → 0.2",
        "seen: added true",
        'tags.b: added ""',
    ]
    assert [str(c) for c in changed_keys({"a": 1}, {"a": "1"})] == ["a: 1 → 1"]
    assert changed_keys(old, old) == []


def test_line_diff_of_pretty_json() -> None:
    lines = line_diff({"b": 1, "a": [1, 2]}, {"a": [1, 3], "b": 1})
    assert [(line.kind, line.text) for line in lines if line.kind != "same"] == [
        ("hunk", "@@ -1,7 +1,7 @@"),
        ("del", "-    2"),
        ("add", "+    3"),
    ]
    assert line_diff({"a": 1}, {"a": 1}) == []


# --- what changed, and folded step states


def test_activity_folds_a_runs_step_states_and_shows_old_and_new_values(
    api: httpx.Client,
) -> None:
    rid = new_run(api, "fold", name="nightly", tags={"stage": "dev"})
    for name, states in (("prepare", ["running", "finished"]), ("train", ["running", "failed"])):
        for status in states:
            resp = api.put(f"{API}/runs/{rid}/steps/{name}", json={"status": status})
            assert resp.status_code in (200, 201), resp.text
    set_tags(api, rid, stage="prod")
    doc = page(api, "/activity", urn=run_urn(rid))
    fields = doc.find("ul", cls="change-fields").find_all("li")
    assert [" ".join(li.text().split()) for li in fields] == ["tags.stage dev → prod"]
    everything = page(api, "/activity")
    fold = everything.find("tr", cls="change-fold")
    assert fold.find("summary").text() == (
        "6 step changes: prepare running → finished, train running → failed"
    )
    inner = [
        " ".join(tr.text().split())
        for tr in fold.find("table", cls="folded").find_all("tr", cls="change")
    ]
    assert len(inner) == 6  # each step's properties, first state and second state
    assert "status running → failed" in inner[0]
    assert "step_state created (v1)" in inner[-2]  # prepare's first state
    assert inner[-2].endswith("status running diff")
    assert fold.find("a").text() == "nightly"
