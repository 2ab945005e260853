"""The run page in a browser: the pipeline follows a running run live, charts zoom, and
every page of the demo loads without a script error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

API = "/api/v1"
CHART = ".chart-plot[data-chart-src*='key=loss']"


@pytest.fixture
def api(portal: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal, timeout=30) as client:
        yield client


def _put_step(api: httpx.Client, run_id: str, name: str, **body: object) -> None:
    resp = api.put(f"{API}/runs/{run_id}/steps/{name}", json=body)
    assert resp.status_code in (200, 201), resp.text


def test_pipeline_shows_progress_live_and_stops_polling_when_the_run_ends(
    page: Page, api: httpx.Client
) -> None:
    run_id = api.post(f"{API}/runs", json={"project": "live", "name": "live-run"}).json()["run_id"]
    _put_step(api, run_id, "prepare", status="finished")
    _put_step(api, run_id, "train", depends_on=["prepare"], status="running", progress=0.1)
    page.goto(f"/runs/{run_id}")
    train = page.locator("svg.dag g.node[data-step='train']")
    expect(train).to_have_attribute("data-progress", "0.1")
    expect(page.locator("svg.dag path.edge[data-from='prepare'][data-to='train']")).to_have_count(1)
    _put_step(api, run_id, "train", progress=0.7, message="epoch 7 of 10")
    # the page asks again every 2 s and redraws the node; no reload
    expect(train).to_have_attribute("data-progress", "0.7", timeout=8_000)
    expect(page.locator("li.step[data-step='train']")).to_contain_text("epoch 7 of 10")
    bar = page.locator("svg.dag g.node[data-step='train'] rect.bar")
    width = float(bar.get_attribute("width") or 0)
    assert width == pytest.approx(
        0.7
        * float(
            page.locator("svg.dag g.node[data-step='train'] rect.bar-bg").get_attribute("width")
            or 0
        ),
        abs=0.2,
    )
    _put_step(api, run_id, "train", status="finished")
    assert api.patch(f"{API}/runs/{run_id}", json={"status": "finished"}).status_code == 200
    expect(train).to_have_attribute("data-status", "finished", timeout=8_000)
    expect(page.locator("#pipeline")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    polls: list[str] = []
    page.on("request", lambda req: polls.append(req.url) if req.url.endswith("/pipeline") else None)
    page.wait_for_timeout(4_500)
    assert polls == []


def test_a_long_metric_chart_zooms_with_server_detail(page: Page, api: httpx.Client) -> None:
    run_id = api.post(f"{API}/runs", json={"project": "charts", "name": "long"}).json()["run_id"]
    n = 20_000
    values = np.sin(np.arange(n) / 500.0) + np.random.default_rng(0).normal(0, 0.01, n)
    cols = {"key": "loss", "value": values.tolist(), "step": list(range(n))}
    assert api.post(f"{API}/runs/{run_id}/batch", json={"columns": cols}).status_code == 204
    page.goto(f"/runs/{run_id}")
    chart = page.locator(".chart-plot[data-chart-src*='key=loss']")
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-loaded", "1")
    overview = chart.evaluate("(el) => el.data[0].x.length")
    assert overview <= 1500
    # drag across a twentieth of the plot area (about 900 steps), as a user zooms
    box = page.locator(".chart-plot[data-chart-src*='key=loss'] .nsewdrag").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.42, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.445, y, steps=5)
    page.mouse.up()
    page.wait_for_function(
        f"""() => {{ const x = document.querySelector("{CHART}").data[0].x;
                    return x.length > 0 && x[x.length - 1] - x[0] < 5000; }}"""
    )
    lo, hi = chart.evaluate("(el) => el.layout.xaxis.range")
    xs = chart.evaluate("(el) => el.data[0].x")
    # every step inside the zoomed window is drawn: the server sent the range in full
    inside = [x for x in xs if lo <= x <= hi]
    assert inside == list(range(int(np.ceil(lo)), int(np.floor(hi)) + 1))
    assert 0 < hi - lo < 1500
    # double-click resets to the whole history
    page.mouse.dblclick(box["x"] + box["width"] / 2, y)
    page.wait_for_function(
        f"""() => {{ const x = document.querySelector("{CHART}").data[0].x;
                    return x[0] === 0 && x[x.length - 1] === 19999; }}"""
    )


def test_every_demo_page_loads_without_script_errors(page: Page, api: httpx.Client) -> None:
    """Walk the demo: each project, each run, each artifact preview, lineage and history."""
    seen = 0
    projects = [p["name"] for p in api.get(f"{API}/projects").json()]
    for project in projects:
        page.goto(f"/projects/{project}")
        run_links = page.locator("#runs-table tbody a[href^='/runs/']").evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href'))"
        )
        for href in run_links:
            page.goto(href)
            page.wait_for_load_state("networkidle")
            seen += 1
            artifacts = page.locator("a[href*='/artifacts/']:not([download])").evaluate_all(
                "(links) => [...new Set(links.map((a) => a.getAttribute('href')))]"
            )
            for link in artifacts[:8]:
                page.goto(link)
                page.wait_for_load_state("networkidle")
                seen += 1
    run = api.post(f"{API}/runs/search", json={"page_size": 1}).json()["runs"][0]
    model = api.get(f"{API}/models").json()[0]["name"]
    evaluations = [
        e["id"]
        for r in api.post(f"{API}/runs/search", json={"page_size": 20}).json()["runs"]
        for e in api.get(f"{API}/runs/{r['run_id']}/evaluations").json()
    ]
    assert len(evaluations) >= 2
    for path in (
        "/models",
        f"/models/{model}",
        f"/models/{model}/versions/1",
        f"/evaluations/{evaluations[0]}",
        f"/evaluations/compare?e={evaluations[0]}&e={evaluations[1]}",
        f"/lineage?urn={run['urn']}",
        f"/entities/{run['urn']}",
        f"/history?urn={run['urn']}&aspect=run_state",
        "/activity",
        "/search?q=gbm",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        seen += 1
    assert seen > 20
