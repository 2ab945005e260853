"""Evaluation pages read well: headline metrics first and the rest in the groups their analyzer
names (a plugin's too); chart legends outside the plot and no axis title cut off; threshold
lines labelled; the fairness report follows the threshold slider (checked against Fairlearn and
scikit-learn on the uploaded predictions); the chosen threshold is kept in the address, and
opening that address shows the page as it was seen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from playwright.sync_api import Locator, Page, ViewportSize, expect
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from modelyard.app import create_app
from modelyard.settings import Settings
from tests.conftest import ServerThread, scratch_postgres

API = "/api/v1"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
N = 900
# the KS example plugin (installed) and the test's decile analyzer, whose metrics name no group
PLUGINS = ["tests.decile_analyzer"]
HEADLINE = [
    "roc_auc", "average_precision", "log_loss", "brier", "precision", "recall", "f1", "ks",
]  # fmt: skip
RATES = {"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, pg_template: str | None) -> Iterator[str]:
    """A server on an empty workspace of its own (no demo: this module uploads what it checks)."""
    data = tmp_path_factory.mktemp("evaluation-pages")
    if pg_template is None:
        yield from _serve(Settings(data_dir=data, plugins=PLUGINS))
        return
    with scratch_postgres("evalpages_", pg_template) as url:
        yield from _serve(Settings(data_dir=data, database_url=url, plugins=PLUGINS))


def _serve(settings: Settings) -> Iterator[str]:
    app = create_app(settings)
    with ServerThread(app) as server:
        yield server.url
    app.state.store.engine.dispose()


def build(base_url: str) -> dict[str, Any]:
    """Two models' binary evaluations of the same 900 rows with two group columns; scores
    rounded to 3 places (so thresholds fall on ties)."""
    rng = np.random.default_rng(2026)
    y = rng.integers(0, 2, N)
    sex = rng.choice(["female", "male"], N)
    region = rng.choice(["north", "south", "east"], N)
    bias = np.where(sex == "female", -0.12, 0.0)
    scores = [
        np.clip(y * 0.3 + rng.normal(0.35, 0.18, N) + bias, 0, 1).round(3),
        np.clip(y * 0.2 + rng.normal(0.4, 0.2, N), 0, 1).round(3),
    ]
    ids = []
    with httpx.Client(base_url=base_url, timeout=60) as api:
        for k, s in enumerate(scores):
            run = api.post(f"{API}/runs", json={"project": "pages", "name": f"model-{k}"})
            assert run.status_code == 201, run.text
            body = {
                "y_true": y.tolist(),
                "y_score": s.tolist(),
                "groups": {"sex": sex.tolist(), "region": region.tolist()},
                "dataset": "holdout",
                "name": f"holdout model-{k}",
            }
            resp = api.post(f"{API}/runs/{run.json()['run_id']}/evaluations", json=body)
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
    groups = {"sex": sex, "region": region}
    return {"ids": ids, "y": y, "scores": scores, "groups": groups}


@pytest.fixture(scope="module")
def workspace(portal: str) -> dict[str, Any]:
    return build(portal)


@pytest.fixture(autouse=True)
def patient(page: Page) -> None:
    """Room for a page of nine charts to load on a busy shared machine."""
    page.set_default_timeout(45_000)


def values(scope: Locator, selector: str) -> list[float]:
    found: list[str | None] = scope.locator(selector).evaluate_all(
        "els => els.map(e => e.getAttribute('data-value'))"
    )
    return [float(v) if v is not None else np.nan for v in found]


def at(ws: dict[str, Any], model: int, t: float) -> dict[str, float]:
    """scikit-learn's view of one model at threshold ``t``."""
    y, pred = ws["y"], ws["scores"][model] >= t
    return {
        "precision": precision_score(y, pred),
        "recall": recall_score(y, pred),
        "f1": f1_score(y, pred),
        "tp": int(np.sum(pred & (y == 1))),
    }


def by_group(ws: dict[str, Any], model: int, column: str, t: float) -> Any:
    """Fairlearn's per-group selection rate, TPR and FPR at threshold ``t``."""
    pred = (ws["scores"][model] >= t).astype(int)
    return MetricFrame(
        metrics=RATES, y_true=ws["y"], y_pred=pred, sensitive_features=ws["groups"][column]
    )


def shown_threshold(page: Page, t: float) -> None:
    """Wait until the control and everything that follows it show threshold ``t``."""
    control = page.locator("[data-threshold-control]")
    expect(control).to_have_attribute("data-threshold", repr(t), timeout=30_000)
    expect(control).not_to_have_attribute("aria-busy", "true", timeout=30_000)
    page.wait_for_function(
        "t => [...document.querySelectorAll('[data-live=\"threshold\"]')]"
        ".every(el => el.getAttribute('data-value') === t)",
        arg=repr(t),
    )


def choose(page: Page, t: float) -> None:
    box = page.locator("[data-threshold-number]")
    box.fill(repr(t))
    box.press("Enter")
    shown_threshold(page, t)


def assert_fairness(page: Page, ws: dict[str, Any], model: int, scope: Locator, t: float) -> None:
    """Every group's rates in the report equal Fairlearn's at ``t``, and so do the gaps."""
    for column in ("sex", "region"):
        report = scope.locator(f"[data-column='{column}']").first
        frame = by_group(ws, model, column, t)
        for group, want in frame.by_group.iterrows():
            row = report.locator(f"tr[data-group='{group}']")
            for key in RATES:
                (got,) = values(row, f"[data-cell='{key}']")
                assert got == pytest.approx(want[key], abs=1e-12), (column, group, key, t)
        gap = values(
            report.locator("tr[data-gap='demographic_parity']"), "[data-cell='difference']"
        )
        assert gap == pytest.approx([frame.difference()["selection_rate"]], abs=1e-12)


def test_headline_metrics_come_first_and_the_rest_in_named_groups(
    page: Page, workspace: dict[str, Any]
) -> None:
    ws, (first, second) = workspace, workspace["ids"]
    y, s = ws["y"], ws["scores"][0]
    page.goto(f"/evaluations/{first}")
    headline = page.locator("#headline-metrics tr[data-metric]")
    assert headline.evaluate_all("rows => rows.map(r => r.dataset.metric)") == HEADLINE
    want = {
        "roc_auc": roc_auc_score(y, s),
        "average_precision": average_precision_score(y, s),
        "log_loss": log_loss(y, s),
        "brier": brier_score_loss(y, s),
    } | {k: v for k, v in at(ws, 0, 0.5).items() if k != "tp"}
    got = dict(zip(HEADLINE, values(page.locator("#headline-metrics"), "td.num"), strict=True))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # the rest under the groups each analyzer names, in its order; "Other" for a plugin's
    # metrics that name none; no headline metric repeated
    groups = {
        name: page.locator(f"#metrics-{name} tbody").evaluate_all(
            "bodies => bodies.map(b => [b.dataset.group,"
            " [...b.querySelectorAll('tr[data-metric]')].map(r => r.dataset.metric)])"
        )
        for name in ("binary", "ks", "deciles")
    }
    assert groups["binary"] == [
        ["At the chosen threshold", ["fpr", "specificity", "accuracy", "predicted_positive_share"]],
        ["Data", ["rows", "positives", "negatives", "prevalence", "distinct_scores"]],
    ]
    assert groups["ks"] == [["Separation", ["ks_threshold"]]]
    assert groups["deciles"] == [
        ["Other", ["top_decile_lift", "calibration_gap", "top_decile_cutoff"]]
    ]
    assert page.locator("#metrics-binary [data-metric='roc_auc']").count() == 0
    fairness = page.locator("#metrics-fairness tbody").evaluate_all(
        "bs => bs.map(b => b.dataset.group)"
    )
    assert sorted(fairness) == [
        "Gaps by region (at the evaluation's threshold)",
        "Gaps by sex (at the evaluation's threshold)",
    ]

    # the comparison: the headline rows first, then each analyzer's groups
    page.goto(f"/evaluations/compare?e={first}&e={second}")
    bodies = page.locator("#compare-metrics tbody").evaluate_all(
        "bodies => bodies.map(b => [b.dataset.analyzer || '', b.dataset.group,"
        " [...b.querySelectorAll('tr[data-metric]')].map(r => r.dataset.metric)])"
    )
    assert bodies[0] == [
        "",
        "headline",
        [("ks." if k == "ks" else "binary.") + k for k in HEADLINE],
    ]
    assert [b[:2] for b in bodies[1:3]] == [
        ["binary", "At the chosen threshold"],
        ["binary", "Data"],
    ]
    assert ["ks", "Separation", ["ks.ks_threshold"]] in bodies
    assert bodies[-1][:2] == ["deciles", "Other"]
    row = page.locator("#compare-metrics tr[data-metric='binary.precision']")
    want_precision = [at(ws, k, 0.5)["precision"] for k in (0, 1)]
    assert values(row, "td") == pytest.approx(want_precision, abs=1e-12)


GEOMETRY = """plot => {
  const box = el => { const b = el.getBoundingClientRect();
    return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
  const svg = box(plot.querySelector('.main-svg'));
  return {
    title: plot.closest('figure').querySelector('figcaption')?.textContent,
    svg: svg,
    area: box(plot.querySelector('.nsewdrag')),
    legend: plot.querySelector('.legend') ? box(plot.querySelector('.legend')) : null,
    axes: [...plot.querySelectorAll('.g-xtitle, .g-ytitle, .g-y2title')]
      .filter(t => t.textContent).map(t => [t.textContent, box(t)]),
    labels: [...plot.querySelectorAll('.annotation')].map(a => a.textContent),
    names: (plot.data || []).map(t => t.name),
  };
}"""


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


def inside(a: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        a["left"] >= outer["left"] - 0.5
        and a["right"] <= outer["right"] + 0.5
        and a["top"] >= outer["top"] - 0.5
        and a["bottom"] <= outer["bottom"] + 0.5
    )


def charts(page: Page, least: int) -> dict[str, dict[str, Any]]:
    page.wait_for_function(
        "n => document.querySelectorAll('.chart-plot[data-drawn] .main-svg').length >= n",
        arg=least,
    )
    found: list[dict[str, Any]] = page.locator(".chart-plot[data-drawn]").evaluate_all(
        f"plots => plots.map({GEOMETRY})"
    )
    return {c["title"]: c for c in found}


def f1_optimal(y: Any, s: Any) -> float:
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, s)
    f1 = 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1)
    return float(thresholds[int(np.argmax(f1[:-1]))])


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_legends_sit_outside_the_plots_and_no_axis_title_is_cut_off(
    page: Page, workspace: dict[str, Any], viewport: ViewportSize
) -> None:
    ws, (first, second) = workspace, workspace["ids"]
    page.set_viewport_size(viewport)
    best = f1_optimal(ws["y"], ws["scores"][0])
    for url, least in (
        (f"/evaluations/{first}", 7),
        (f"/evaluations/compare?e={first}&e={second}", 4),
    ):
        page.goto(url)
        found = charts(page, least)
        for title, chart in found.items():
            if chart["legend"] is not None:
                assert not overlaps(chart["legend"], chart["area"]), (
                    f"{url} {title}: legend on the plot"
                )
            for name, axis in chart["axes"]:
                assert inside(axis, chart["svg"]), f"{url} {title}: axis title {name!r} cut off"
        if "compare" in url:
            labels = [c["labels"] for t, c in found.items() if t.startswith("holdout model-")]
            assert labels == [["threshold 0.5"], ["threshold 0.5"]]
            roc = found["ROC curves"]
            assert roc["names"][-1] == "chosen threshold 0.5"
            continue
        gain = found["Cumulative gain and lift"]
        assert [name for name, _ in gain["axes"]][-1] == "lift"
        # threshold lines and markers say which threshold they are at
        assert found["Score distribution by actual label"]["labels"] == [
            "threshold 0.5",
            f"F1-optimal {best:.4g}",
        ]
        assert {
            "default threshold 0.5",
            f"F1-optimal threshold {best:.4g}",
            "chosen threshold 0.5",
        } <= set(found["ROC curve"]["names"])
    # the labels follow the slider
    choose(page, 0.37)
    page.wait_for_function(
        "() => document.getElementById('compare-roc').data.at(-1).name === 'chosen threshold 0.37'"
    )
    labels = page.locator("[data-threshold-line] .chart-plot").evaluate_all(
        "plots => plots.map(p => p.layout.annotations[0].text)"
    )
    assert labels == ["threshold 0.37", "threshold 0.37"]


def test_the_fairness_report_follows_the_threshold_slider(
    page: Page, workspace: dict[str, Any]
) -> None:
    ws, first = workspace, workspace["ids"][0]
    page.goto(f"/evaluations/{first}")
    report = page.locator(".fairness")
    assert_fairness(page, ws, 0, report, 0.5)
    for t in (0.37, 0.615):
        choose(page, t)
        assert_fairness(page, ws, 0, report, t)
        # the headline metrics at the threshold moved with it
        want = at(ws, 0, t)
        for key in ("precision", "recall", "f1"):
            (got,) = values(page.locator(f"#headline-metrics tr[data-metric='{key}']"), "td.num")
            assert got == pytest.approx(want[key], abs=1e-12), (key, t)
        # and so did the bars of each group's rates
        frame = by_group(ws, 0, "sex", t)
        bars = page.locator(".fairness [data-column='sex'] .chart-plot").evaluate(
            "p => p.data[0].y"
        )
        assert bars == pytest.approx(list(frame.by_group["selection_rate"]), abs=1e-12)
        assert parse_qs(urlsplit(page.url).query) == {"threshold": [repr(t)]}


def test_the_address_keeps_the_threshold(page: Page, workspace: dict[str, Any]) -> None:
    ws, (first, second) = workspace, workspace["ids"]
    page.goto(f"/evaluations/{first}?threshold=0.42")
    shown_threshold(page, 0.42)
    assert page.locator("[data-threshold-range]").input_value() == "0.42"
    assert page.locator("[data-threshold-number]").input_value() == "0.42"
    tp = page.locator("#threshold-table [data-cell='tp']").inner_text()
    assert int(tp.replace(",", "")) == at(ws, 0, 0.42)["tp"]
    (precision,) = values(page.locator("#headline-metrics tr[data-metric='precision']"), "td.num")
    assert precision == pytest.approx(at(ws, 0, 0.42)["precision"], abs=1e-12)
    assert_fairness(page, ws, 0, page.locator(".fairness"), 0.42)
    # anything but a threshold in the scores' range is ignored: the default, and no error
    for raw in ("abc", "inf", "7"):  # not a number, not finite, outside the scores
        page.goto(f"/evaluations/{first}?threshold={raw}")
        shown_threshold(page, 0.5)
        assert_fairness(page, ws, 0, page.locator(".fairness"), 0.5)

    # a comparison: every model and every fairness report at the threshold in the address
    page.goto(f"/evaluations/compare?e={first}&e={second}&threshold=0.3")
    shown_threshold(page, 0.3)
    for k, evaluation in enumerate((first, second)):
        row = page.locator(f"#threshold-table tr[data-eval='{evaluation}'] [data-cell='tp']")
        assert int(row.inner_text().replace(",", "")) == at(ws, k, 0.3)["tp"]
        for column in ("sex", "region"):
            frame = by_group(ws, k, column, 0.3)
            scope = page.locator(
                f".fairness-compare[data-column='{column}'] [data-eval='{evaluation}']"
            )
            got = values(scope, "tr[data-group] [data-cell='tpr']")
            assert got == pytest.approx(list(frame.by_group["tpr"]), abs=1e-12), (k, column)
    choose(page, 0.61)
    assert parse_qs(urlsplit(page.url).query) == {"e": [first, second], "threshold": ["0.61"]}
    row = page.locator("#compare-metrics tr[data-metric='binary.precision']")
    precisions = [at(ws, k, 0.61)["precision"] for k in (0, 1)]
    assert values(row, "td") == pytest.approx(precisions, abs=1e-12)
    # the best is marked anew: at 0.3 the first model has the higher recall, at 0.61 the second
    recalls = [at(ws, k, 0.61)["recall"] for k in (0, 1)]
    assert recalls[1] > recalls[0]
    best = page.locator("#compare-metrics tr[data-metric='binary.recall'] td").evaluate_all(
        "cells => cells.map(c => c.hasAttribute('data-best'))"
    )
    assert best == [False, True]
    for k, evaluation in enumerate((first, second)):  # the reports moved with the slider
        frame = by_group(ws, k, "sex", 0.61)
        scope = page.locator(f".fairness-compare[data-column='sex'] [data-eval='{evaluation}']")
        got = values(scope, "tr[data-group] [data-cell='selection_rate']")
        assert got == pytest.approx(list(frame.by_group["selection_rate"]), abs=1e-12)
    page.reload()
    shown_threshold(page, 0.61)
    assert page.locator("[data-threshold-number]").input_value() == "0.61"
    assert values(row, "td") == pytest.approx(
        [at(ws, k, 0.61)["precision"] for k in (0, 1)], abs=1e-12
    )
