"""The threshold slider in a browser: typing a threshold or pressing arrow keys on the range
updates every model's confusion matrix in place to the exact counts (checked with numpy), and
moves each model's marker on the ROC chart; out-of-range input is clamped with a note."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

API = "/api/v1"
CELLS = ("tp", "fp", "tn", "fn")


@pytest.fixture
def api(portal: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal, timeout=60) as client:
        yield client


@pytest.fixture
def models(api: httpx.Client) -> list[dict[str, Any]]:
    """Three binary evaluations of three runs, with their labels and scores."""
    rng = np.random.default_rng(42)
    out = []
    for k in range(3):
        run = api.post(f"{API}/runs", json={"project": "slider", "name": f"model-{k}"})
        n = 2000 + 500 * k
        y = rng.integers(0, 2, n)
        s = np.clip(y * (0.15 + 0.1 * k) + rng.normal(0.4, 0.2, n), 0, 1)
        body = {"y_true": y.tolist(), "y_score": s.tolist(), "dataset": "holdout"}
        resp = api.post(f"{API}/runs/{run.json()['run_id']}/evaluations", json=body)
        assert resp.status_code == 201, resp.text
        out.append({"id": resp.json()["id"], "y": y, "s": s})
    return out


def expected(model: dict[str, Any], t: float) -> dict[str, int]:
    y, predicted = model["y"] == 1, model["s"] >= t
    return {
        "tp": int(np.sum(y & predicted)),
        "fp": int(np.sum(~y & predicted)),
        "tn": int(np.sum(~y & ~predicted)),
        "fn": int(np.sum(y & ~predicted)),
    }


def shown(control: Locator, evaluation_id: str) -> dict[str, dict[str, int]]:
    """The counts in the model's row of the table and in its confusion matrix."""
    out = {}
    for where in ("tr", "figure"):
        scope = control.locator(f"{where}[data-eval='{evaluation_id}']")
        out[where] = {
            cell: int(scope.locator(f"[data-cell='{cell}']").inner_text().replace(",", ""))
            for cell in CELLS
        }
    return out


def assert_exact(control: Locator, models: list[dict[str, Any]], t: float) -> None:
    # the threshold the page last showed, as JavaScript writes a number
    expect(control).to_have_attribute("data-threshold", str(int(t)) if t.is_integer() else repr(t))
    expect(control).not_to_have_attribute("aria-busy", "true")
    for model in models:
        want = expected(model, t)
        assert shown(control, model["id"]) == {"tr": want, "figure": want}, (t, model["id"])


def roc_marker(page: Page) -> list[float]:
    xs: list[float] = page.locator("#compare-roc").evaluate("(el) => el.data[el.data.length - 1].x")
    return xs


def test_the_slider_updates_every_model_exactly(page: Page, models: list[dict[str, Any]]) -> None:
    page.goto("/evaluations/compare?" + "&".join(f"e={m['id']}" for m in models))
    control = page.locator("[data-threshold-control]")
    expect(page.locator("#compare-roc")).to_have_attribute("data-drawn", "1")
    assert_exact(control, models, 0.5)

    box = page.locator("[data-threshold-number]")
    box.fill("0.37")
    box.press("Enter")
    assert_exact(control, models, 0.37)
    assert page.locator("[data-threshold-range]").input_value() == "0.37"
    fprs = [
        expected(m, 0.37)["fp"] / int(np.sum(m["y"] == 0)) for m in models
    ]  # the ROC markers moved to each model's point
    expect(page.locator("#compare-roc")).to_have_attribute("data-drawn", "1")
    page.wait_for_function(
        "(want) => { const el = document.getElementById('compare-roc');"
        " const xs = el.data[el.data.length - 1].x;"
        " return xs.every((x, i) => Math.abs(x - want[i]) < 1e-12); }",
        arg=fprs,
    )
    assert roc_marker(page) == pytest.approx(fprs, abs=1e-12)

    slider = page.locator("[data-threshold-range]")
    slider.focus()
    for _ in range(7):
        slider.press("ArrowRight")
    value = float(slider.input_value())
    assert value > 0.37
    assert box.input_value() == slider.input_value()
    assert_exact(control, models, value)

    for _ in range(25):
        slider.press("ArrowLeft")
    value = float(slider.input_value())
    assert value < 0.37
    assert_exact(control, models, value)


def test_out_of_range_input_is_clamped_with_a_note(
    page: Page, models: list[dict[str, Any]]
) -> None:
    page.goto(f"/evaluations/compare?e={models[0]['id']}&e={models[1]['id']}")
    control = page.locator("[data-threshold-control]")
    box = page.locator("[data-threshold-number]")
    box.fill("1.7")
    box.press("Enter")
    note = page.locator("[data-threshold-note]")
    expect(note).to_contain_text("above the highest score")
    expect(box).to_have_value("1")
    assert_exact(control, models[:2], 1.0)
    box.fill("-3")
    box.press("Enter")
    expect(note).to_contain_text("below the lowest score")
    assert_exact(control, models[:2], 0.0)
    box.fill("0.25")
    box.press("Enter")
    expect(note).to_have_text("")
    assert_exact(control, models[:2], 0.25)


def test_the_single_evaluation_page_has_the_same_control(
    page: Page, models: list[dict[str, Any]]
) -> None:
    model = models[2]
    page.goto(f"/evaluations/{model['id']}")
    control = page.locator("[data-threshold-control]")
    assert_exact(control, [model], 0.5)
    box = page.locator("[data-threshold-number]")
    box.fill("0.6125")
    box.press("Enter")
    assert_exact(control, [model], 0.6125)
    # the fixed matrices at 0.5 and at the F1-optimal threshold stay as they were
    fixed = page.locator("#confusion-default [data-fixed='tp']")
    assert int(fixed.inner_text().replace(",", "")) == expected(model, 0.5)["tp"]
