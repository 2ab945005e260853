"""Provenance people can read, in a browser on the demo workspace: lineage nodes and edges in
words, the activity feed filtered by a picked name and by dates, step-state bursts folded,
changes with their old and new values, entity pages as fields, and no raw epoch times."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from modelyard.demo import CHURN, NIGHTLY

API = "/api/v1"
HEX_RUN = re.compile(r"[0-9a-f]{8,}", re.I)
EPOCH_MS = re.compile(r"(?<!\d)\d{13}(?!\d)")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Demo:
    run_id: str  # customer-churn's gbm-3
    other_run_id: str  # customer-churn's gbm-2
    nightly_id: str
    evaluation_id: str
    stored_times: frozenset[int]  # every time the demo's entities and changes carry


@pytest.fixture(scope="module")
def demo(portal: str) -> Iterator[Demo]:
    with httpx.Client(base_url=portal, timeout=30) as api:
        changes = api.get(f"{API}/changes", params={"limit": 1000}).json()
        times = {c["created_at"] for c in changes}
        runs = {}
        for urn in {c["urn"] for c in changes if c["urn"].startswith("urn:modelyard:run:")}:
            run = api.get(f"{API}/runs/{urn.rsplit(':', 1)[1]}").json()
            runs[(run["project"], run["name"])] = run["run_id"]
            times |= {run[k] for k in ("start_time", "end_time", "last_heartbeat") if run[k]}
        times |= {p["created_at"] for p in api.get(f"{API}/projects").json()}
        run_id = runs[(CHURN, "gbm-3")]
        evaluation = api.get(f"{API}/runs/{run_id}/evaluations").json()[0]
        times.add(evaluation["created_at"])
        yield Demo(
            run_id,
            runs[(CHURN, "gbm-2")],
            runs[(CHURN, NIGHTLY)],
            evaluation["id"],
            frozenset(times),
        )


def node_labels(page: Page) -> list[str]:
    """What each node of the lineage graph shows: its small line and its name."""
    labels: list[str] = page.locator("#lineage-graph g.node").evaluate_all(
        "nodes => nodes.map(n => Array.from(n.querySelectorAll('a:first-of-type text'))"
        ".map(t => t.textContent.trim()).join(' | '))"
    )
    return labels


def test_lineage_nodes_and_edges_read_apart_and_fill_the_panel(page: Page) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/lineage?urn=urn:modelyard:dataset:churn-2026-10&up=3&down=3")
    labels = node_labels(page)
    assert len(labels) > 20  # three runs, each with its files, evaluation and version
    assert len(set(labels)) == len(labels), sorted(labels)
    assert not [label for label in labels if HEX_RUN.search(label)]
    assert "artifact · gbm-3 | model.pkl" in labels
    assert "artifact · gbm-2 | model.pkl" in labels
    assert "evaluation · gbm-3 | churn-2026-10-holdout" in labels
    assert "model version | customer-churn-classifier v3" in labels
    assert {"model version | customer-churn-classifier v1", "run | gbm-1"} <= set(labels)
    # each node's full URN is in its tooltip
    title = page.locator("#lineage-graph g.node.root > a > title").text_content() or ""
    assert title.endswith("urn:modelyard:dataset:churn-2026-10")

    words = page.locator("#lineage-graph .edge-label").all_text_contents()
    assert len(words) == page.locator("#lineage-graph .edge-group").count()
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", w) for w in words), set(words)
    assert {"consumed by", "produced", "registered as", "evaluated in"} <= set(words)
    edges = page.locator("#lineage-edges tbody tr td:nth-child(2)").all_text_contents()
    assert set(edges) == set(words)

    panel = page.locator(".lineage-panel").bounding_box()
    graph = page.locator("#lineage-graph svg").bounding_box()
    assert panel is not None
    assert graph is not None
    assert graph["width"] >= 0.9 * panel["width"]
    # on a phone the graph keeps its size and scrolls inside its panel, not the page
    page.set_viewport_size({"width": 390, "height": 800})
    page.wait_for_timeout(200)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= 390
    inner = page.locator("#lineage-graph").evaluate("g => [g.scrollWidth, g.clientWidth]")
    assert inner[0] > inner[1]


def test_activity_entity_box_suggests_names_and_filters_by_the_one_picked(
    page: Page, demo: Demo
) -> None:
    page.goto("/activity")
    box = page.locator("#activity-filters input[name=entity]")
    box.press_sequentially("gbm-", delay=30)
    options = page.locator("#activity-entities option")
    expect(options.first).to_be_attached()
    offered = options.evaluate_all("os => os.map(o => o.value)")
    assert "gbm-3 (run in customer-churn)" in offered
    assert "gbm-3 (run in breast-cancer)" in offered  # two runs of one name read apart
    box.fill("gbm-3 (run in customer-churn)")  # what choosing it from the list does
    page.wait_for_url(re.compile(r"urn=urn%3Amodelyard%3Arun%3A" + demo.run_id))
    rows = page.locator("table.changes > tbody > tr")
    assert rows.count() >= 3
    entities = page.locator("table.changes > tbody > tr td:nth-child(3) a").evaluate_all(
        "links => links.map(a => a.title)"
    )
    assert set(entities) == {f"urn:modelyard:run:{demo.run_id}"}
    expect(box).to_have_value("gbm-3 (run in customer-churn)")
    # a change says what it changed: the run's status, old and new
    state = rows.filter(has_text="run_state").filter(has_text="v1 → v2")
    status = state.locator(".change-fields li", has_text="status")
    expect(status.locator("del")).to_have_text("running")
    expect(status.locator("ins")).to_have_text("finished")
    ended = state.locator(".change-fields li", has_text="end_time").locator("ins")
    expect(ended).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))


def test_activity_dates_filter_and_step_state_changes_fold(page: Page, demo: Demo) -> None:
    page.goto("/activity")
    expect(page.locator("main")).to_contain_text("UTC")
    form = page.locator("#activity-filters")
    assert form.locator("input[name=since]").get_attribute("type") == "date"
    form.locator("input[name=since]").fill("2001-01-01")
    form.locator("input[name=until]").fill("2001-01-31")
    form.locator("button[type=submit]").click()
    expect(page.locator("p.empty")).to_have_text("No change matches these filters.")
    assert page.locator("table.changes").count() == 0
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page.goto(f"/activity?since={today}&until={today}")
    expect(page.locator("table.changes").first).to_be_visible()

    page.goto("/activity")
    fold = page.locator("tr.change-fold").first
    summary = fold.locator("summary")
    expect(summary).to_have_text(re.compile(r"^\d+ step (state )?changes: .*pending → running"))
    count = int((summary.text_content() or "0").split()[0])
    inner = fold.locator("table.folded tr.change")
    assert inner.count() == count > 1
    expect(inner.first).to_be_hidden()
    summary.click()
    expect(inner.first).to_be_visible()
    expect(inner.first.locator("td:nth-child(3)")).to_contain_text(NIGHTLY)


def test_no_page_shows_a_raw_epoch_time_and_entity_pages_show_fields(
    page: Page, demo: Demo
) -> None:
    run_urn = f"urn:modelyard:run:{demo.run_id}"
    pages = [
        "/",
        "/projects",
        f"/projects/{CHURN}",
        f"/runs/{demo.run_id}",
        f"/compare?run={demo.run_id}&run={demo.other_run_id}",
        "/models/customer-churn-classifier",
        "/models/customer-churn-classifier/versions/3",
        f"/lineage?urn={quote(run_urn)}",
        "/activity",
        f"/entities/{quote(run_urn, safe='')}",
        f"/entities/{quote(f'urn:modelyard:step:{demo.run_id}:train', safe='')}",
        f"/evaluations/{demo.evaluation_id}",
        f"/history?urn={quote(run_urn)}&aspect=run_state",
    ]
    first, last = min(demo.stored_times) - DAY_MS, max(demo.stored_times) + DAY_MS
    for url in pages:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        numbers = {int(n) for n in EPOCH_MS.findall(page.locator("body").inner_text())}
        assert not numbers & demo.stored_times, url
        assert not [n for n in numbers if first <= n <= last], url

    page.goto(f"/entities/{quote(run_urn, safe='')}")
    state = page.locator("#aspect-run_state")
    fields = dict(
        zip(
            state.locator("dl.aspect-fields > dt").all_text_contents(),
            state.locator("dl.aspect-fields > dd").all_inner_texts(),
            strict=True,
        )
    )
    assert fields["status"] == "finished"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", fields["start time"])
    lineage = page.locator("#aspect-run_lineage dd a")
    expect(lineage.first).to_have_attribute("href", re.compile(r"^/"))
    assert "churn-2026-10" in lineage.all_text_contents()
    raw = state.locator("details.raw-json pre")
    expect(raw).to_be_hidden()
    state.locator("details.raw-json summary").click()
    expect(raw).to_be_visible()
    expect(raw).to_contain_text('"start_time": ')
    expect(raw).to_contain_text('"status": "finished"')
