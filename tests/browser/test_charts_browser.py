"""Charts fit what was logged, on the demo workspace: a metric logged once is a value and a
history is a chart with smoothing and a log axis; the run comparison marks params that differ,
keeps legends off axis titles and notes, never calls a running run's partial value plain
"best", and each run has one colour on every page."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, expect

from modelyard.demo import CHURN, NIGHTLY

API = "/api/v1"
FINISHED = ("gbm-1", "gbm-2", "gbm-3")
HISTORY = ".chart-plot[data-chart-src*='key=train_loss']"


@pytest.fixture(scope="module")
def demo(portal: str) -> dict[str, Any]:
    """The churn project's runs by name (as the API returns them) and each finished run's
    evaluation id."""
    with httpx.Client(base_url=portal) as api:
        found = api.post(f"{API}/runs/search", json={"project": CHURN, "page_size": 50})
        found.raise_for_status()
        runs = {r["name"]: r for r in found.json()["runs"]}
        evaluations = {}
        for name in FINISHED:
            listed = api.get(f"{API}/runs/{runs[name]['run_id']}/evaluations")
            listed.raise_for_status()
            evaluations[name] = listed.json()[0]["id"]
    return {"runs": runs, "evaluations": evaluations}


def loaded(page: Page, selector: str) -> Locator:
    chart = page.locator(selector)
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-loaded", "1", timeout=15_000)
    return chart


def traces(chart: Locator) -> list[dict[str, Any]]:
    """The traces as Plotly holds them in the graph div: what is drawn."""
    found: list[dict[str, Any]] = chart.evaluate(
        """el => el.data.map(t => ({name: t.name, meta: t.meta ?? null, opacity: t.opacity ?? 1,
             y: Array.from(t.y), color: t.line && t.line.color}))"""
    )
    return found


def test_run_page_shows_values_logged_once_and_charts_only_histories(
    page: Page, demo: dict[str, Any]
) -> None:
    run = demo["runs"]["gbm-3"]
    page.goto(f"/runs/{run['run_id']}")
    tiles = page.locator("#metric-values .metric-tile")
    expect(tiles).to_have_count(3)
    for key in ("auc", "average_precision", "log_loss"):
        tile = page.locator(f".metric-tile[data-metric='{key}']")
        shown = tile.locator(".metric-tile-value").inner_text()
        value = run["metrics"][key]["value"]
        four_digits = np.format_float_positional(value, precision=4, fractional=False)
        assert float(shown) == float(four_digits), f"{key}: {shown} for {value}"
        expect(tile).to_contain_text(f"step {run['metrics'][key]['step']}")
    # the only chart is the one history; the metrics logged once have none
    charts = page.locator(".chart-plot")
    expect(charts).to_have_count(1)
    assert "key=train_loss" in (charts.first.get_attribute("data-chart-src") or "")
    # the metrics table links each metric to its tile or chart
    page.locator("#metrics-table a", has_text="auc").click()
    expect(page.locator(".metric-tile[data-metric='auc']")).to_be_in_viewport()


def test_smoothing_and_log_axis_redraw_history_charts_and_survive_a_reload(
    page: Page, demo: dict[str, Any]
) -> None:
    run_id = demo["runs"]["gbm-3"]["run_id"]
    page.goto(f"/runs/{run_id}")
    chart = loaded(page, HISTORY)
    (raw,) = traces(chart)
    slider = page.locator("[data-chart-controls] input[name=smooth]")
    slider.evaluate("el => { el.value = '0.8'; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function(f"document.querySelector({HISTORY!r}).data.length === 2")
    drawn = {t["meta"]: t for t in traces(chart)}
    expected = pd.Series(raw["y"]).ewm(alpha=1 - 0.8, adjust=False).mean().to_numpy()
    assert np.allclose(drawn["smoothed"]["y"], expected, rtol=1e-12, atol=0)
    assert not np.allclose(drawn["smoothed"]["y"], raw["y"])
    assert drawn["raw"]["y"] == raw["y"]  # the raw line stays, faint
    assert drawn["raw"]["opacity"] < 0.5 <= drawn["smoothed"]["opacity"]
    expect(page.locator(".chart-note")).to_contain_text("smoothed")
    # the log axis
    assert chart.evaluate("el => el._fullLayout.yaxis.type") == "linear"
    page.get_by_label("Log scale (y)").check()
    page.wait_for_function(f"document.querySelector({HISTORY!r})._fullLayout.yaxis.type === 'log'")
    # a reload keeps both choices: they are in the URL
    assert re.search(r"[?&]smooth=0\.8\b", page.url)
    assert "logy=1" in page.url
    page.reload()
    chart = loaded(page, HISTORY)
    expect(slider).to_have_value("0.8")
    expect(page.get_by_label("Log scale (y)")).to_be_checked()
    assert chart.evaluate("el => el._fullLayout.yaxis.type") == "log"
    assert sorted(t["meta"] for t in traces(chart)) == ["raw", "smoothed"]
    page.get_by_label("Log scale (y)").uncheck()
    page.wait_for_function(
        f"document.querySelector({HISTORY!r})._fullLayout.yaxis.type === 'linear'"
    )
    assert "logy" not in page.url


OVERLAPS = """plot => {
  const box = el => el.getBoundingClientRect();
  const hit = (a, b) => a.width > 0 && b.width > 0 && a.left < b.right && b.left < a.right
    && a.top < b.bottom && b.top < a.bottom;
  const legend = plot.querySelector('.legend');
  const others = [...plot.querySelectorAll('.g-xtitle, .g-ytitle, .annotation')];
  return legend ? others.filter(t => hit(box(legend), box(t))).map(t => t.textContent) : [];
}"""


def compare_url(demo: dict[str, Any], *names: str) -> str:
    return "/compare?" + "&".join(f"run={demo['runs'][n]['run_id']}" for n in names)


def test_run_comparison_marks_differing_params_and_a_running_runs_lead(
    page: Page, demo: dict[str, Any]
) -> None:
    page.goto(compare_url(demo, "gbm-3", "gbm-2", NIGHTLY))
    background = "el => getComputedStyle(el).backgroundColor"
    differs = page.locator("#compare-params tr[data-differs] td").first.evaluate(background)
    same = page.locator("#compare-params tr:not([data-differs]) td").first.evaluate(background)
    assert page.locator("#compare-params tr[data-differs]").count() == 3
    assert differs != same
    # the running run has the lowest train_loss so far: not "best", but "best so far"
    row = page.locator("#compare-metrics tr[data-metric='train_loss'] td")
    nightly = row.nth(2)
    assert nightly.get_attribute("data-best") is None
    assert nightly.get_attribute("data-lead-so-far") is not None
    expect(nightly).to_contain_text(re.compile(r"best so far \((running|lost)\)"))
    assert [row.nth(i).get_attribute("data-best") is not None for i in range(3)] == [
        True,
        False,
        False,
    ]  # gbm-3's 0.73 beats gbm-2's 0.96 among the runs that have ended
    legends_stay_clear(page)  # on a wide screen (the phone's is below)


def legends_stay_clear(page: Page) -> None:
    """No chart's legend box meets an axis title or a note drawn in the plot."""
    plots = page.locator(".chart-plot")
    assert plots.count() >= 1
    for k in range(plots.count()):
        plot = plots.nth(k)
        plot.scroll_into_view_if_needed()
        expect(plot).to_have_attribute("data-loaded", "1", timeout=15_000)
        assert plot.locator(".legend").count() == 1
        assert plot.evaluate(OVERLAPS) == [], plot.get_attribute("data-chart-src")


def test_comparison_legends_stay_off_axis_titles_and_notes_on_a_phone(
    page: Page, demo: dict[str, Any]
) -> None:
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(compare_url(demo, "gbm-3", "gbm-2", NIGHTLY))
    legends_stay_clear(page)


AS_RGB = """c => {
  const probe = document.createElement('span');
  probe.style.color = c;
  document.body.append(probe);
  const rgb = getComputedStyle(probe).color;
  probe.remove();
  return rgb;
}"""
BACKGROUND = "el => getComputedStyle(el).backgroundColor"


def test_a_run_has_one_colour_on_every_page(page: Page, demo: dict[str, Any]) -> None:
    runs, evaluations = demo["runs"], demo["evaluations"]
    page.goto(compare_url(demo, *FINISHED))
    colors = {
        name: page.locator(f"#compare-runs th[data-run='{runs[name]['run_id']}'] .swatch").evaluate(
            BACKGROUND
        )
        for name in FINISHED
    }
    assert len(set(colors.values())) == len(FINISHED)
    lines = {t["name"]: page.evaluate(AS_RGB, t["color"]) for t in traces(loaded(page, HISTORY))}
    assert lines == colors
    # the comparison of their evaluations, in the same order
    page.goto("/evaluations/compare?" + "&".join(f"e={evaluations[n]}" for n in FINISHED))
    for name in FINISHED:
        swatch = page.locator(f"#compare-evaluations th[data-eval='{evaluations[name]}'] .swatch")
        assert swatch.evaluate(BACKGROUND) == colors[name], name
    # the first run's own page draws its history in its colour (a later run whose id lands
    # on a colour taken by an earlier one on a page takes the next free colour there)
    page.goto(f"/runs/{runs[FINISHED[0]]['run_id']}")
    (trace,) = traces(loaded(page, HISTORY))
    assert page.evaluate(AS_RGB, trace["color"]) == colors[FINISHED[0]]
