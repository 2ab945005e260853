"""Every page is reachable by clicking: the evaluation comparison from a run comparison, a
model's page and a version's page; a version's page shows its run's evaluations; a run's page
its model versions, and the artifact that became one links to it. On the demo workspace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from modelyard.demo import CANCER, CHURN, LATER_CHURN, NIGHTLY
from tests.helpers import API

CHURN_MODEL = f"{CHURN}-classifier"
CANCER_MODEL = f"{CANCER}-classifier"
HOLDOUT = "churn-2026-10-holdout"


@pytest.fixture(scope="module")
def portal_api(portal: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal + API) as client:
        yield client


@pytest.fixture(scope="module")
def churn(portal_api: httpx.Client) -> dict[str, dict[str, Any]]:
    """The churn project's runs by name, each with its evaluations."""
    found = portal_api.post("/runs/search", json={"project": CHURN}).json()["runs"]
    return {
        r["name"]: {**r, "evaluations": portal_api.get(f"/runs/{r['run_id']}/evaluations").json()}
        for r in found
    }


def version_evaluations(api: httpx.Client, model: str, version: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get(
        f"/models/{quote(model, safe='')}/versions/{version}/evaluations"
    ).json()
    return found


def compared(page: Page) -> list[str]:
    """The ids of the evaluations the comparison page shows, in its order."""
    expect(page).to_have_url(re.compile(r"/evaluations/compare\?e="))
    expect(page.locator("#compare-evaluations")).to_be_visible()  # and its page has loaded
    return parse_qs(urlsplit(page.url).query)["e"]


def roc_auc_cells(page: Page) -> list[float]:
    cells = page.locator("#compare-metrics tr[data-metric='binary.roc_auc'] td").all_inner_texts()
    return [float(re.findall(r"\d+\.\d+", c)[0]) for c in cells]


def test_run_comparison_leads_to_each_datasets_evaluation_comparison(
    page: Page, churn: dict[str, dict[str, Any]]
) -> None:
    page.goto("/")
    page.locator(".cards").get_by_role("link", name=re.compile(f"^{CHURN}")).click()
    for name in ("gbm-1", "gbm-2", "gbm-3", NIGHTLY):
        page.get_by_role("checkbox", name=f"Select {name}", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()
    heads = page.locator("#compare-runs thead th a")
    expect(heads).to_have_count(4)  # the comparison page has loaded
    order = heads.all_inner_texts()  # the baseline first
    assert sorted(order) == sorted(["gbm-1", "gbm-2", "gbm-3", NIGHTLY])
    evaluated = [n for n in order if n != NIGHTLY]
    offer = page.locator("#compare-evaluations-offer")
    # the running run has no evaluation: said once, not under every dataset
    expect(offer.locator("[data-unevaluated]")).to_have_text(
        f"{NIGHTLY} has no evaluation on a named dataset."
    )
    holdout = offer.locator(f"li[data-dataset='{HOLDOUT}']")
    later = offer.locator(f"li[data-dataset='{LATER_CHURN}']")
    expect(holdout).to_contain_text("of " + ", ".join(evaluated))
    expect(holdout).not_to_contain_text("No evaluation")
    # the later versions' own evaluations count as their runs'
    expect(later).to_contain_text("of " + ", ".join(n for n in evaluated if n != "gbm-1"))
    expect(later).to_contain_text("No evaluation on this dataset: gbm-1")
    holdout.get_by_role("link", name=f"Compare 3 evaluations on {HOLDOUT}").click()
    expected = [
        next(e["id"] for e in churn[n]["evaluations"] if e["dataset"] == HOLDOUT) for n in evaluated
    ]
    assert compared(page) == expected
    heads = page.locator("#compare-evaluations thead th[data-eval]").all_inner_texts()
    assert [h.split()[0] for h in heads] == evaluated
    # each run's ROC AUC as it logged it, computed by scikit-learn in the demo's pipeline
    logged = [churn[n]["metrics"]["auc"]["value"] for n in evaluated]
    assert roc_auc_cells(page) == pytest.approx(logged, abs=1e-4)


def test_model_page_compares_its_versions_evaluations(page: Page, portal_api: httpx.Client) -> None:
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    page.get_by_role("link", name=CANCER_MODEL, exact=True).click()
    section = page.locator("#version-comparisons")
    expect(section.get_by_role("link")).to_have_count(1)
    expect(section).to_contain_text("of v5, v4, v3, v2, v1")  # all five runs' evaluations
    page.goto("/models")
    page.get_by_role("link", name=CHURN_MODEL, exact=True).click()
    expect(section.locator("li")).to_have_count(2)
    later = section.locator(f"li[data-dataset='{LATER_CHURN}']")
    expect(later).to_contain_text("No evaluation on this dataset: v1")
    later.get_by_role("link", name=f"Compare 2 evaluations on {LATER_CHURN}").click()
    own = [
        version_evaluations(portal_api, CHURN_MODEL, v)[0] for v in (3, 2)
    ]  # newest version first
    assert compared(page) == [e["id"] for e in own]
    expect(page.get_by_role("heading", name="Compare 2 binary evaluations")).to_be_visible()
    run_row = page.locator("#compare-evaluations tbody tr").filter(
        has=page.locator("th", has_text=re.compile("^Run$"))
    )
    runs = run_row.locator("td")
    expect(runs).to_have_text(["gbm-3", "gbm-2"])
    stored = [e["metrics"]["binary"]["roc_auc"] for e in own]
    assert roc_auc_cells(page) == pytest.approx(stored, abs=1e-4)


def test_version_page_shows_its_runs_evaluation_and_compares_with_the_others(
    page: Page, churn: dict[str, dict[str, Any]]
) -> None:
    page.goto(f"/models/{CANCER_MODEL}")
    page.get_by_role("link", name="v3", exact=True).click()
    expect(page.get_by_role("heading", name=f"{CANCER_MODEL} v3")).to_be_visible()
    rows = page.locator("#evaluations-table tbody tr")
    expect(rows).to_have_count(1)  # no longer "no evaluations yet": its run's evaluation
    expect(rows.locator("[data-of=run]")).to_have_text("its run gbm-3")
    expect(page.get_by_text("no evaluations yet")).to_have_count(0)

    page.goto(f"/models/{CHURN_MODEL}")
    page.get_by_role("link", name="v2", exact=True).click()
    rows = page.locator("#evaluations-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=LATER_CHURN).locator("[data-of]")).to_have_text("this version")
    expect(rows.filter(has_text=HOLDOUT).locator("[data-of]")).to_have_text("its run gbm-2")
    offers = page.locator("#version-comparisons li")
    expect(offers.filter(has_text=HOLDOUT)).to_contain_text("with v1 · with all 3 versions")
    expect(offers.filter(has_text=LATER_CHURN)).to_contain_text("with v3")  # no earlier one
    offers.filter(has_text=HOLDOUT).get_by_role("link", name="with v1").click()
    on_holdout = {
        n: next(e["id"] for e in churn[n]["evaluations"] if e["dataset"] == HOLDOUT)
        for n in ("gbm-1", "gbm-2")
    }
    assert compared(page) == [on_holdout["gbm-2"], on_holdout["gbm-1"]]  # this version first
    heads = page.locator("#compare-evaluations thead th[data-eval]").all_inner_texts()
    assert [h.split()[0] for h in heads] == ["gbm-2", "gbm-1"]
    logged = [churn[n]["metrics"]["auc"]["value"] for n in ("gbm-2", "gbm-1")]
    assert roc_auc_cells(page) == pytest.approx(logged, abs=1e-4)


def test_run_page_lists_its_model_version_and_its_artifact_links_to_it(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    page.locator("#runs-table").get_by_role("link", name="gbm-2", exact=True).click()
    versions = page.locator("#model-versions-table tbody tr")
    expect(versions).to_have_count(1)
    expect(versions.locator("td")).to_have_text(
        [CHURN_MODEL, "v2", "model.pkl", re.compile("ago|now"), "gbm-2: gbm"]
    )
    artifacts = page.locator("table.artifacts tbody")
    expect(artifacts.locator(".version-badge")).to_have_count(1)  # only the exported model
    badge = artifacts.locator("tr[data-artifact='model.pkl'] .version-badge")
    expect(badge).to_have_text(f"{CHURN_MODEL} v2")
    # the evaluation the version was given is listed with the run's, marked as the version's
    # (the list comes in by htmx after the page: given time on a busy machine)
    of_version = page.locator("#evaluations-table [data-of=version]")
    expect(of_version).to_have_text(f"{CHURN_MODEL} v2", timeout=15_000)
    badge.click()
    expect(page.get_by_role("heading", name=f"{CHURN_MODEL} v2")).to_be_visible()
    expect(page.locator(".header-line")).to_contain_text("from artifact model.pkl")
    page.get_by_role("link", name="gbm-2", exact=True).first.click()
    expect(page.locator("#model-versions")).to_be_visible()

    page.goto(f"/projects/{CHURN}")
    page.locator("#runs-table").get_by_role("link", name="gbm-bad-learning-rate").click()
    expect(page.locator("#model-versions")).to_contain_text("This run registered no model versions")
