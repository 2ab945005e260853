"""What only a browser shows: pages run their scripts without errors, navigation, the runs
table, live pipeline progress, chart zoom and the theme switch."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from modelyard.demo import CANCER, CHURN
from tests.browser.conftest import Problems


def test_navigation_reaches_every_main_page(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    expect(page).to_have_url(re.compile(r"/projects$"))
    page.get_by_role("link", name=CANCER, exact=True).click()
    expect(page.get_by_role("heading", name=CANCER)).to_be_visible()
    expect(page.locator("#runs-table tbody tr")).to_have_count(5)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    expect(page).to_have_url(re.compile(r"/activity"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_global_search_box(page: Page) -> None:
    page.goto("/")
    box = page.get_by_role("searchbox", name="Search")
    box.fill("metrics.auc > 0.5")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q="))
    expect(page.locator("#search-runs tbody tr").first).to_be_visible()
    assert page.locator("#search-runs tbody tr").count() >= 8


def test_slash_goes_to_the_search_box_except_while_typing(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    box = page.get_by_role("searchbox", name="Search", exact=True)
    page.locator("body").press("/")
    expect(box).to_be_focused()
    expect(box).to_have_value("")  # the key moved the focus and typed nothing
    # In another text field, "/" is just a character.
    box.fill("")
    page.goto(f"/projects/{CHURN}")
    field = page.locator("input[name=filter]").first
    field.fill("params.a = 'x")
    field.press("/")
    expect(field).to_have_value("params.a = 'x/")
    expect(field).to_be_focused()


def _column(page: Page, title: str) -> list[str]:
    index = page.locator("#runs-table thead tr.column-keys th").evaluate_all(
        f"(ths) => ths.findIndex((th) => th.title === {title!r})"
    )
    assert index >= 0, f"no column {title}"
    cells: list[str] = page.locator(
        f"#runs-table tbody tr td:nth-child({index + 1})"
    ).all_inner_texts()
    return cells


def test_runs_table_filters_and_sorts(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    total = page.locator("#runs-table tbody tr").count()
    assert total == 5
    filter_box = page.get_by_label("Filter runs")
    filter_box.fill("attributes.status = 'finished'")
    filter_box.press("Enter")
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    statuses = page.locator("#runs-table tbody .status").all_inner_texts()
    assert statuses == ["finished"] * 3
    # sort by a metric column: highest first, then lowest first
    page.locator("#runs-table thead th[title='metrics.auc'] a").click()
    expect(page.locator("#runs-table thead th[title='metrics.auc'] a.sorted")).to_contain_text("▼")
    values = [float(v) for v in _column(page, "metrics.auc")]
    assert values == sorted(values, reverse=True)
    page.locator("#runs-table thead th[title='metrics.auc'] a").click()
    expect(page.locator("#runs-table thead th[title='metrics.auc'] a.sorted")).to_contain_text("▲")
    assert [float(v) for v in _column(page, "metrics.auc")] == sorted(values)
    assert page.get_by_label("Filter runs").input_value() == "attributes.status = 'finished'"


def test_a_bad_filter_is_explained_in_the_page(page: Page, problems: Problems) -> None:
    problems.expect(r"status of 400 \(Bad Request\)")  # the page answers 400, as it should
    page.goto(f"/projects/{CHURN}")
    box = page.get_by_label("Filter runs")
    box.fill("metrics.auc >")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("That filter did not work")
    expect(page.get_by_role("alert")).to_contain_text("expected a value to compare metrics.auc")
    assert page.get_by_label("Filter runs").input_value() == "metrics.auc >"


def test_an_unknown_page_is_friendly(page: Page, problems: Problems) -> None:
    problems.expect(r"status of 404 \(Not Found\)")
    page.goto("/runs/" + "0" * 32)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".reason")).to_contain_text("0" * 32)
    page.get_by_role("link", name="Go to the home page").click()
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()


def test_selecting_runs_leads_to_their_comparison(page: Page) -> None:
    page.goto(f"/projects/{CANCER}")
    button = page.get_by_role("button", name="Compare selected")
    expect(button).to_be_disabled()
    # two runs with a training curve, so the comparison has a history to chart
    rows = page.locator("#runs-table tbody tr")
    rows.filter(has_text="gbm-1").locator("input[name=run]").check()
    expect(button).to_be_disabled()
    rows.filter(has_text="gbm-2").locator("input[name=run]").check()
    expect(button).to_be_enabled()
    button.click()
    expect(page).to_have_url(re.compile(r"/compare\?run=\w+&run=\w+"))
    expect(page.locator("#compare-metrics tbody tr").first).to_be_visible()
    # the overlaid metric charts load as they scroll into view
    first_chart = page.locator(".chart-plot").first
    first_chart.scroll_into_view_if_needed()
    expect(first_chart).to_have_attribute("data-loaded", "1", timeout=15_000)
    traces = first_chart.evaluate("(el) => el.data.length")
    assert traces == 2


def test_theme_switch_sticks_across_pages(page: Page) -> None:
    page.goto("/")
    before = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_title("Switch light/dark").click()
    after = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert after != before
    page.goto("/projects")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == after


@pytest.mark.parametrize("width", [390, 1440])
def test_a_run_with_250_character_names_does_not_widen_the_page(
    browser: Browser, portal: str, width: int
) -> None:
    project, name = "long-project-" + "p" * 237, "r" * 250
    resp = httpx.post(f"{portal}/api/v1/runs", json={"project": project, "name": name})
    assert resp.status_code == 201, resp.text
    context = browser.new_context(base_url=portal, viewport={"width": width, "height": 900})
    tab = context.new_page()
    try:
        for path in (f"/runs/{resp.json()['run_id']}", "/", "/projects", "/no-such-page"):
            tab.goto(path)
            assert tab.evaluate("document.documentElement.scrollWidth") <= width, path
    finally:
        context.close()
