"""What a user sees on a phone (390 px) and a desktop (1440 px), light and dark: no page grows
wider than the window even with 200-character names, every compared model stays in view,
button text stays readable in the dark theme, and chart legends leave axis titles clear."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import FloatRect, Locator, Page, ViewportSize

API = "/api/v1"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
LONG_RUN = ("gradient-boosted-churn-model-with-a-very-long-descriptive-name-" * 4)[:200]
LONG_EVALUATION = ("holdout-evaluation-against-the-quarterly-snapshot-of-customers-" * 4)[:200]
LONG_DATASET = "dataset-" + "d" * 150  # no break opportunity at all
REGIONS = ["north", "south"]
LONG = ["the-northern-region-and-every-outlying-island", "the-southern-region-and-its-coast"]


@pytest.fixture(scope="module")
def workspace(portal: str) -> dict[str, Any]:
    """A run with a 200-character name and two binary evaluations with groups, one of them
    with a 200-character name on a dataset whose name has no place to break."""
    rng = np.random.default_rng(7)
    with httpx.Client(base_url=portal, timeout=60) as api:
        runs = []
        for name in (LONG_RUN, "short"):
            body = {"project": "customer-churn", "name": name, "params": {"depth": "3"}}
            run = api.post(f"{API}/runs", json=body)
            assert run.status_code == 201, run.text
            runs.append(run.json()["run_id"])
            point = {"key": "auc", "value": 0.8, "step": 0, "timestamp": 1_700_000_000_000}
            batch = api.post(f"{API}/runs/{runs[-1]}/batch", json={"metrics": [point]})
            assert batch.status_code < 300, batch.text
        run_id = runs[0]
        ids = []
        for name, dataset in ((LONG_EVALUATION, LONG_DATASET), ("short", "holdout")):
            y = rng.integers(0, 2, 400)
            body = {
                "y_true": y.tolist(),
                "y_score": np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1).tolist(),
                "groups": {
                    "region": rng.choice(REGIONS if name == "short" else LONG, 400).tolist()
                },
                "dataset": dataset,
                "name": name,
            }
            resp = api.post(f"{API}/runs/{run_id}/evaluations", json=body)
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
    return {"run_id": run_id, "runs": runs, "evaluations": ids}


def pages(ws: dict[str, Any]) -> dict[str, str]:
    run, (long_ev, short_ev) = ws["run_id"], ws["evaluations"]
    return {
        "home": "/",
        "project": "/projects/customer-churn",
        "run": f"/runs/{run}",
        "evaluations": f"/runs/{run}/evaluations",
        "evaluation": f"/evaluations/{long_ev}",
        "comparison": f"/evaluations/compare?e={long_ev}&e={short_ev}",
        "run comparison": "/compare?" + "&".join(f"run={r}" for r in ws["runs"]),
        "search": "/search?q=gradient",
        "activity": "/activity",
        "unknown page": "/no-such-page",
    }


def box(element: Locator) -> FloatRect:
    found = element.bounding_box()
    assert found is not None, f"{element} is not shown"
    return found


def right(element: Locator) -> float:
    found = box(element)
    return found["x"] + found["width"]


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (what makes it scroll sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_is_wider_than_the_window(
    page: Page, workspace: dict[str, Any], viewport: ViewportSize, scheme: str, problems: Any
) -> None:
    problems.expect("404")
    page.set_viewport_size(viewport)
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    for name, url in pages(workspace).items():
        page.goto(url, wait_until="networkidle")
        assert overflow(page) <= 0, f"{name} page ({url}) scrolls sideways by {overflow(page)} px"


def test_the_top_bar_fits_a_phone(page: Page) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/")
    width = page.evaluate("innerWidth")
    for link in page.locator(".topbar nav a").all():
        assert right(link) <= width, link.inner_text()
    assert right(page.get_by_title("Switch light/dark")) <= width
    search = box(page.get_by_role("searchbox", name="Search"))
    assert search["width"] >= 150, "the search box is too narrow to use"


def test_every_compared_model_is_in_view(page: Page, workspace: dict[str, Any]) -> None:
    """A 200-character evaluation name wraps in its column head instead of pushing the other
    model's column (and the first model's numbers) out of the window."""
    page.set_viewport_size(DESKTOP)
    page.goto(pages(workspace)["comparison"], wait_until="networkidle")
    width = page.evaluate("innerWidth")
    for table in ("#compare-evaluations", "#compare-metrics"):
        heads = page.locator(f"{table} thead th").all()
        assert len(heads) == 3
        for head in heads:
            assert right(head) <= width, (table, head.inner_text())
    assert right(page.locator("#compare-metrics tbody tr:not(.metric-group) td").first) <= width


CONTRAST = """el => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const st = getComputedStyle(el);
  const [a, b] = [lum(rgb(st.color)), lum(rgb(st.backgroundColor))].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_button_text_is_readable(page: Page, workspace: dict[str, Any], scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.goto(pages(workspace)["evaluations"])
    page.locator("#evaluations-table input[type=checkbox]").first.check()
    page.locator("#evaluations-table input[type=checkbox]").nth(1).check()
    for button in (
        page.get_by_role("button", name="Compare selected"),
        page.get_by_role("button", name="Evaluate"),
    ):
        assert button.is_enabled()
        ratio = button.evaluate(CONTRAST)
        assert ratio >= 4.5, f"{button.inner_text()!r} has a contrast of {ratio:.2f}:1"


OVERLAPS = """plot => {
  const box = el => el.getBoundingClientRect();
  const hit = (a, b) => a.width > 0 && b.width > 0 && a.left < b.right && b.left < a.right
    && a.top < b.bottom && b.top < a.bottom;
  const legend = plot.querySelector('.legend');
  const titles = [...plot.querySelectorAll('.g-xtitle, .g-ytitle, .g-y2title')];
  const labels = [...plot.querySelectorAll('.xtick text, .ytick text, .y2tick text')];
  const frame = box(plot);
  return {
    covered: legend ? titles.filter(t => hit(box(legend), box(t))).map(t => t.textContent) : [],
    clipped: labels.filter(t => box(t).right > frame.right + 1 || box(t).left < frame.left - 1)
      .map(t => t.textContent),
  };
}"""


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_chart_legends_and_axes_stay_clear(
    page: Page, workspace: dict[str, Any], viewport: ViewportSize
) -> None:
    """No legend sits on an axis title, and no tick label (the lift axis on the right
    included) is cut off at the chart's edge."""
    page.set_viewport_size(viewport)
    page.goto(pages(workspace)["evaluation"], wait_until="networkidle")
    plots = page.locator(".chart-plot[data-drawn]")
    page.wait_for_function("document.querySelectorAll('.chart-plot .main-svg').length >= 5")
    assert plots.count() >= 5
    for k in range(plots.count()):
        plot = plots.nth(k)
        plot.scroll_into_view_if_needed()
        found = plot.evaluate(OVERLAPS)
        title = plot.evaluate(
            "el => el.closest('figure')?.querySelector('figcaption')?.textContent"
        )
        assert not found["covered"], f"{title}: the legend covers {found['covered']}"
        assert not found["clipped"], f"{title}: tick labels cut off: {found['clipped']}"


def test_upload_form_fields_stay_in_their_cells(page: Page, workspace: dict[str, Any]) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(pages(workspace)["evaluations"])
    for label in page.locator(".upload-form label").all():
        assert right(label.locator("input")) <= right(label) + 0.5, label.inner_text()


def test_long_names_in_tables_wrap_at_a_readable_width(
    page: Page, workspace: dict[str, Any]
) -> None:
    """On a phone a table scrolls inside its panel rather than squeezing a long name into a
    column a few letters wide."""
    page.set_viewport_size(PHONE)
    for name in ("home", "evaluations", "activity"):
        page.goto(pages(workspace)[name])
        widths = page.locator("td.wrap").evaluate_all(
            "cells => cells.map(c => c.getBoundingClientRect().width)"
        )
        assert widths, name
        assert min(widths) >= 120, f"{name}: a name column is {min(widths):.0f} px wide"


def test_a_long_run_name_leaves_the_other_columns_in_view(
    page: Page, workspace: dict[str, Any]
) -> None:
    """The project's runs table, the run comparison: a 200-character run name wraps instead
    of pushing status, times and the second run's column out of the window."""
    page.set_viewport_size(DESKTOP)
    width = page.evaluate("innerWidth")
    page.goto(pages(workspace)["project"])
    for head in page.locator(".table-wrap thead th").all():
        assert right(head) <= width, head.inner_text()
    page.goto(pages(workspace)["run comparison"])
    for table in ("#compare-runs", "#compare-metrics", "#compare-params"):
        heads = page.locator(f"{table} thead th").all()
        assert len(heads) == 3, table
        for head in heads:
            assert right(head) <= width, (table, head.inner_text())


@pytest.mark.parametrize("name", ["evaluation", "comparison"])
def test_long_category_names_leave_the_plot_its_room(
    page: Page, workspace: dict[str, Any], name: str
) -> None:
    """Bar charts by evaluation or by group: a 200-character name is shortened on the axis,
    so the bars keep at least half the chart's height."""
    page.set_viewport_size(DESKTOP)
    page.goto(pages(workspace)[name], wait_until="networkidle")
    page.wait_for_function("document.querySelectorAll('.chart-plot .main-svg').length >= 3")
    shares = page.locator(".chart-plot[data-drawn]").evaluate_all(
        """plots => plots.map(p => {
          const area = p.querySelector('.nsewdrag'), h = p.getBoundingClientRect().height;
          return [p.closest('figure').querySelector('figcaption')?.textContent,
                  area ? area.getBoundingClientRect().height / h : 1];
        })"""
    )
    assert shares
    squashed = [(title, round(share, 2)) for title, share in shares if share < 0.5]
    assert not squashed, f"plots squashed by their axis labels: {squashed}"
