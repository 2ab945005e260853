"""The evaluation pages: one evaluation's metrics, notes and panels; a run's evaluations; the
comparison (deltas, shared-bin histograms, dataset warning, fairness); the threshold endpoint
behind the slider; friendly errors and escaping. Numbers are checked against scikit-learn."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jinja2 import DictLoader
from markupsafe import escape
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from modelyard.analyzers.base import Analyzer, Panel, PredictionTable
from modelyard.web.templating import number
from tests.helpers import API, assert_error, new_run

# Evaluations store their tables as artifacts: every test runs on both stores.
pytestmark = pytest.mark.stores("local", "s3")

HOSTILE = "<script>alert(1)</script>"
THRESHOLDS = "/charts/evaluations/thresholds"


class Html(HTMLParser):
    """Elements in document order with their attributes, text and extent, enough to find
    cells by their data attributes."""

    VOID = frozenset({"input", "link", "meta", "br", "img", "hr"})

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "text": [], "end": None}
        self.elements.append(element)
        element["end"] = len(self.elements)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            element = self._open.pop()
            element["end"] = len(self.elements)
            if element["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"].append(data)

    def find(self, **attrs: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.elements
            if all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, **attrs: str) -> dict[str, Any]:
        found = self.find(**attrs)
        assert len(found) == 1, (attrs, len(found))
        return found[0]

    def within(self, outer: dict[str, Any]) -> list[dict[str, Any]]:
        start = next(i for i, e in enumerate(self.elements) if e is outer)
        return self.elements[start + 1 : outer["end"]]

    def row(self, **attrs: str) -> dict[str, Any]:
        (found,) = [e for e in self.find(**attrs) if e["tag"] == "tr"]
        return found

    def cells(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in self.within(row) if e["tag"] == "td"]


def text(element: dict[str, Any]) -> str:
    return " ".join("".join(element["text"]).split())


def predictions(seed: int, n: int = 600, shift: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(y * shift + rng.normal(0.4, 0.2, n), 0, 1).round(3)  # rounding makes ties
    return y, s


def evaluate(api: httpx.Client, run_id: str, y: Any, s: Any, **body: Any) -> dict[str, Any]:
    payload = {"y_true": np.asarray(y).tolist(), "y_score": np.asarray(s).tolist(), **body}
    resp = api.post(f"{API}/runs/{run_id}/evaluations", json=payload)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def chart_figures(body: str) -> dict[str, Any]:
    found = re.findall(
        r'<script type="application/json" data-chart-for="([^"]+)">(.*?)</script>', body, re.S
    )
    return {chart_id: json.loads(data) for chart_id, data in found}


@pytest.fixture
def three(api: httpx.Client) -> dict[str, Any]:
    """Three binary evaluations (two on "holdout", one on "other") of three runs."""
    out: dict[str, Any] = {"ids": [], "data": []}
    for k, dataset in enumerate(("holdout", "holdout", "other")):
        run_id = new_run(api, name=f"model-{k}")
        y, s = predictions(k, shift=0.15 + 0.1 * k)
        ev = evaluate(api, run_id, y, s, dataset=dataset)
        out["ids"].append(ev["id"])
        out["data"].append((y, s))
    return out


# --- one evaluation


def test_the_evaluation_page_shows_metrics_equal_to_scikit_learn(api: httpx.Client) -> None:
    run_id = new_run(api, name="trained")
    y, s = predictions(1)
    ev = evaluate(api, run_id, y, s, dataset="holdout", name="holdout v1")
    resp = api.get(f"/evaluations/{ev['id']}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = Html(resp.text)
    header = text(page.one(id="evaluation-header"))
    for expected in ("trained", "holdout", "binary", "600", "no"):
        assert expected in header
    assert page.find(href=f"/runs/{run_id}")
    for key, want in (
        ("roc_auc", roc_auc_score(y, s)),
        ("average_precision", average_precision_score(y, s)),
    ):
        cell = page.row(data_metric=key)
        value = page.cells(cell)[0]
        assert float(value["attrs"]["data-value"]) == pytest.approx(want, abs=1e-12)
        assert text(value) == number(want)


def test_the_evaluation_page_shows_both_confusion_matrices_and_the_panels(
    api: httpx.Client,
) -> None:
    y, s = predictions(2)
    ev = evaluate(api, new_run(api), y, s)
    body = api.get(f"/evaluations/{ev['id']}").text
    page = Html(body)
    result = api.get(f"{API}/evaluations/{ev['id']}/result").json()["binary"]
    best = result["f1_optimal_threshold"]
    for table_id, t in (("confusion-default", 0.5), ("confusion-f1", best)):
        (tn, fp), (fn, tp) = confusion_matrix(y, s >= t)
        cells = {
            e["attrs"]["data-fixed"]: float(e["attrs"]["data-value"])
            for e in page.within(page.one(id=table_id))
            if "data-fixed" in e["attrs"]
        }
        assert cells == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    # the live control starts at the evaluation's threshold, with the same numbers
    control = page.one(id="threshold-control")
    assert control["attrs"]["data-evaluations"] == ev["id"]
    assert float(control["attrs"]["data-threshold"]) == 0.5
    live = {
        e["attrs"]["data-cell"]: float(e["attrs"]["data-value"])
        for e in page.within(page.one(id="threshold-table"))
        if e["attrs"].get("data-cell") in ("tp", "fp", "tn", "fn")
    }
    (tn, fp), (fn, tp) = confusion_matrix(y, s >= 0.5)
    assert live == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    # every analyzer panel is drawn from an embedded figure; ROC and PR carry the marker
    figures = chart_figures(body)
    assert len(figures) >= 4
    markers = page.find(data_marker_chart="")
    assert {m["attrs"]["data-marker-x"] for m in markers} == {"fpr", "recall"}
    assert 'src="/static/' in body
    assert "evaluations.js" in body


def test_one_class_only_says_roc_auc_is_undefined(api: httpx.Client) -> None:
    ev = evaluate(api, new_run(api), [1, 1, 1, 1], [0.2, 0.4, 0.6, 0.9])
    page = Html(api.get(f"/evaluations/{ev['id']}").text)
    notes = text(page.one(id="evaluation-notes"))
    assert "ROC AUC" in notes
    assert "undefined" in notes
    auc = page.row(data_metric="roc_auc")
    assert "—" in text(auc)


def test_fairness_shows_group_rates_gaps_and_a_flagged_four_fifths_rule(
    api: httpx.Client,
) -> None:
    rng = np.random.default_rng(3)
    n = 800
    group = rng.choice(["x", "y"], n)
    y = rng.integers(0, 2, n)
    s = np.clip(y * 0.3 + rng.normal(0.4, 0.15, n) - np.where(group == "y", 0.3, 0.0), 0, 1)
    ev = evaluate(api, new_run(api), y, s, groups={"region": group.tolist()})
    page = Html(api.get(f"/evaluations/{ev['id']}").text)
    flag = page.one(data_four_fifths="flagged")
    assert "Four-fifths rule flagged" in text(flag)
    assert "y" in text(flag)
    assert page.find(id="fairness-1-groups")
    for name in ("x", "y"):
        (row,) = [e for e in page.find(data_group=name) if e["tag"] == "tr"]
        cells = {
            e["attrs"]["data-cell"]: float(e["attrs"]["data-value"])
            for e in page.within(row)
            if "data-value" in e["attrs"]
        }
        mine = group == name
        assert cells["selection_rate"] == pytest.approx(np.mean(s[mine] >= 0.5))
        assert cells["tpr"] == pytest.approx(np.mean(s[mine & (y == 1)] >= 0.5))
        assert cells["auc"] == pytest.approx(roc_auc_score(y[mine], s[mine]))
    gaps = page.find(data_gap="demographic_parity")
    assert gaps
    assert "p_value" in {
        e["attrs"].get("data-cell") for e in page.within(gaps[0]) if e["tag"] == "td"
    }


def test_multiclass_and_regression_pages_show_their_metrics(api: httpx.Client) -> None:
    rng = np.random.default_rng(4)
    scores = rng.dirichlet([1, 1, 1], 90)
    labels = rng.integers(0, 3, 90)
    multi = evaluate(api, new_run(api), labels, scores)
    page = Html(api.get(f"/evaluations/{multi['id']}").text)
    accuracy = page.row(data_metric="accuracy")
    value = page.cells(accuracy)[0]
    assert float(value["attrs"]["data-value"]) == pytest.approx(
        np.mean(scores.argmax(axis=1) == labels)
    )
    assert page.find(id="multiclass-per-class")
    assert not page.find(id="threshold-control")
    truth = rng.normal(10, 3, 50)
    reg = evaluate(api, new_run(api), truth, truth + rng.normal(0, 1, 50), task="regression")
    page = Html(api.get(f"/evaluations/{reg['id']}").text)
    assert page.find(data_metric="rmse")
    assert page.find(id="regression-quantiles")


# --- a run's evaluations


def test_a_runs_evaluations_list_offers_to_compare(api: httpx.Client) -> None:
    run_id = new_run(api, name="listed")
    ids = [evaluate(api, run_id, *predictions(k), dataset=f"d{k}")["id"] for k in range(2)]
    page = Html(api.get(f"/runs/{run_id}/evaluations").text)
    form = page.one(action="/evaluations/compare")
    boxes = [e for e in page.within(form) if e["attrs"].get("name") == "e"]
    assert sorted(b["attrs"]["value"] for b in boxes) == sorted(ids)
    fragment = api.get(f"/runs/{run_id}/evaluations", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert 'id="run-evaluations"' in fragment
    empty = api.get(f"/runs/{new_run(api)}/evaluations").text
    assert "no evaluations yet" in empty


# --- comparison


def test_compare_shows_metrics_side_by_side_with_deltas(
    api: httpx.Client, three: dict[str, Any]
) -> None:
    query = "&".join(f"e={i}" for i in three["ids"])
    page = Html(api.get(f"/evaluations/compare?{query}").text)
    aucs = [roc_auc_score(y, s) for y, s in three["data"]]
    (row,) = [e for e in page.find(data_metric="binary.roc_auc") if e["tag"] == "tr"]
    cells = [e for e in page.within(row) if e["tag"] == "td"]
    assert [float(c["attrs"]["data-value"]) for c in cells] == pytest.approx(aucs, abs=1e-12)
    assert "data-delta" not in cells[0]["attrs"]
    for cell, auc in zip(cells[1:], aucs[1:], strict=True):
        assert float(cell["attrs"]["data-delta"]) == pytest.approx(auc - aucs[0], abs=1e-12)
    best = int(np.argmax(aucs))
    assert [("data-best" in c["attrs"]) for c in cells] == [i == best for i in range(3)]
    # lower log loss is better
    (row,) = [e for e in page.find(data_metric="binary.log_loss") if e["tag"] == "tr"]
    cells = [e for e in page.within(row) if e["tag"] == "td"]
    losses = [float(c["attrs"]["data-value"]) for c in cells]
    assert [("data-best" in c["attrs"]) for c in cells] == [v == min(losses) for v in losses]


def test_compare_warns_about_different_datasets(api: httpx.Client, three: dict[str, Any]) -> None:
    both = "&".join(f"e={i}" for i in three["ids"][:2])
    assert 'id="dataset-warning"' not in api.get(f"/evaluations/compare?{both}").text
    everything = "&".join(f"e={i}" for i in three["ids"])
    page = Html(api.get(f"/evaluations/compare?{everything}").text)
    warning = text(page.one(id="dataset-warning"))
    assert "holdout" in warning
    assert "other" in warning


def test_compare_histograms_share_bins_and_sum_to_the_label_totals(
    api: httpx.Client, three: dict[str, Any]
) -> None:
    query = "&".join(f"e={i}" for i in three["ids"])
    figures = chart_figures(api.get(f"/evaluations/compare?{query}").text)
    edges_seen = []
    for k, (y, s) in enumerate(three["data"]):
        negatives, positives = figures[f"hist-{k}"]["data"]
        edges = [a for a, _ in positives["customdata"]] + [positives["customdata"][-1][1]]
        edges_seen.append(edges)
        assert sum(positives["y"]) == int(y.sum())
        assert sum(negatives["y"]) == int((1 - y).sum())
        counts, _ = np.histogram(s[y == 1], bins=np.asarray(edges))
        assert positives["y"] == counts.tolist()
    assert edges_seen[0] == edges_seen[1] == edges_seen[2]
    assert edges_seen[0][0] == 0.0
    assert edges_seen[0][-1] == 1.0
    # ROC and PR overlay every model, with the threshold marker trace last
    for chart_id in ("compare-roc", "compare-pr"):
        traces = figures[chart_id]["data"]
        assert traces[-1]["name"] == "chosen threshold 0.5"  # the slider's, labelled
        assert len(traces[-1]["x"]) == 3


def test_compare_histograms_span_all_scores_when_they_are_not_probabilities(
    api: httpx.Client,
) -> None:
    y, s = predictions(5)
    low = evaluate(api, new_run(api), y, s * 10 - 3)  # scores from -3 to 7
    high = evaluate(api, new_run(api), y, s * 4 + 2)  # 2 to 6
    body = api.get(f"/evaluations/compare?e={low['id']}&e={high['id']}").text
    figures = chart_figures(body)
    for k, scores in enumerate((s * 10 - 3, s * 4 + 2)):
        bounds = figures[f"hist-{k}"]["data"][1]["customdata"]
        assert bounds[0][0] == pytest.approx(min((s * 10 - 3).min(), (s * 4 + 2).min()))
        assert bounds[-1][1] == pytest.approx(max((s * 10 - 3).max(), (s * 4 + 2).max()))
        total = sum(figures[f"hist-{k}"]["data"][0]["y"]) + sum(
            figures[f"hist-{k}"]["data"][1]["y"]
        )
        assert total == len(scores)


def test_compare_shows_fairness_side_by_side(api: httpx.Client) -> None:
    rng = np.random.default_rng(6)
    ids = []
    for k in range(2):
        y, s = predictions(10 + k)
        groups = {"sex": rng.choice(["f", "m"], len(y)).tolist()}
        ids.append(evaluate(api, new_run(api), y, s, groups=groups, dataset="d")["id"])
    page = Html(api.get(f"/evaluations/compare?e={ids[0]}&e={ids[1]}").text)
    (section,) = page.find(data_column="sex")
    panels = [e for e in page.within(section) if "data-eval" in e["attrs"]]
    assert [p["attrs"]["data-eval"] for p in panels] == ids
    assert page.find(data_metric="fairness.sex.demographic_parity_difference")


# --- the threshold endpoint


def test_thresholds_are_exact_for_every_model(api: httpx.Client, three: dict[str, Any]) -> None:
    query = "&".join(f"e={i}" for i in three["ids"])
    for t in (0.0, 0.1, 0.37, 0.5, 0.512, 0.8, 1.0, 1.5):
        resp = api.get(f"{THRESHOLDS}?{query}&t={t}")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["threshold"] == t
        assert [p["id"] for p in body["evaluations"]] == three["ids"]
        for point, (y, s) in zip(body["evaluations"], three["data"], strict=True):
            (tn, fp), (fn, tp) = confusion_matrix(y, s >= t, labels=[0, 1])
            assert (point["tp"], point["fp"], point["tn"], point["fn"]) == (tp, fp, tn, fn)
            assert point["predicted_positive_share"] == pytest.approx((tp + fp) / len(y))
            if tp + fp:
                assert point["precision"] == pytest.approx(tp / (tp + fp))
            assert point["recall"] == pytest.approx(tp / (tp + fn))
            assert point["fpr"] == pytest.approx(fp / (fp + tn))


def test_thresholds_refuse_non_binary_evaluations_as_json(api: httpx.Client) -> None:
    rng = np.random.default_rng(7)
    truth = rng.normal(0, 1, 30)
    reg = evaluate(api, new_run(api), truth, truth + rng.normal(0, 0.5, 30), task="regression")
    binary = evaluate(api, new_run(api), *predictions(8))
    resp = api.get(f"{THRESHOLDS}?e={binary['id']}&e={reg['id']}&t=0.5")
    message = assert_error(resp, 400)
    assert reg["id"] in message
    assert "binary" in message
    assert_error(api.get(f"{THRESHOLDS}?e={'0' * 32}&t=0.5"), 404)
    assert_error(api.get(f"{THRESHOLDS}?e={binary['id']}&t=nan"), 422)
    assert_error(api.get(f"{THRESHOLDS}?e={binary['id']}"), 422)


# --- errors and escaping


def test_unknown_evaluation_is_a_friendly_404_page(api: httpx.Client) -> None:
    resp = api.get(f"/evaluations/{'f' * 32}")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("text/html")
    assert "does not exist" in resp.text
    assert "Traceback" not in resp.text


def test_compare_needs_two_to_eight_evaluations_of_one_task(
    api: httpx.Client, three: dict[str, Any]
) -> None:
    for query in ("", f"e={three['ids'][0]}", f"e={three['ids'][0]}&e={three['ids'][0]}"):
        resp = api.get(f"/evaluations/compare?{query}")
        assert resp.status_code == 400
        assert resp.headers["content-type"].startswith("text/html")
        assert "at least two evaluations" in resp.text
    many = "&".join(f"e={i:032x}" for i in range(9))
    assert "at most 8" in api.get(f"/evaluations/compare?{many}").text
    rng = np.random.default_rng(9)
    truth = rng.normal(0, 1, 30)
    reg = evaluate(api, new_run(api), truth, truth + rng.normal(0, 0.5, 30), task="regression")
    resp = api.get(f"/evaluations/compare?e={three['ids'][0]}&e={reg['id']}")
    assert resp.status_code == 400
    assert "different tasks" in resp.text
    missing = api.get(f"/evaluations/compare?e={three['ids'][0]}&e={'0' * 32}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")


def test_hostile_names_are_escaped(api: httpx.Client) -> None:
    ids = []
    for k in range(2):
        run_id = new_run(api, project=HOSTILE, name=HOSTILE + str(k))
        groups = {HOSTILE: np.random.default_rng(k).choice([HOSTILE, "b"], 600).tolist()}
        ev = evaluate(
            api, run_id, *predictions(k), name=HOSTILE, dataset=HOSTILE + str(k), groups=groups
        )
        ids.append(ev["id"])
    pages = [
        api.get(f"/evaluations/{ids[0]}").text,
        api.get(f"/evaluations/compare?e={ids[0]}&e={ids[1]}").text,
        api.get(
            f"/runs/{api.get(f'{API}/evaluations/{ids[0]}').json()['run_id']}/evaluations"
        ).text,
    ]
    for body in pages:
        assert HOSTILE not in body
        assert str(escape(HOSTILE)) in body
    # Plotly reads a few tags in labels: names in the comparison's charts are escaped too
    for chart_id, figure in chart_figures(pages[1]).items():
        if chart_id.startswith("compare-"):
            assert HOSTILE not in json.dumps(figure)
            assert any(escape(HOSTILE) in json.dumps(t) for t in figure["data"])


class StubAnalyzer(Analyzer):
    """A third-party analyzer whose panel is a template of its own."""

    name = "stub"
    title = "Stub analyzer"
    tasks = frozenset({"binary"})

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return {"metrics": {"stub_score": 0.25}, "label": HOSTILE, "notes": []}

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return [Panel("Stub panel", template="stub_panel.html", context={"stub": result})]


def test_a_plugin_panel_template_is_rendered_with_its_context(
    app: FastAPI, api: httpx.Client
) -> None:
    app.state.plugins.analyzers["stub"] = StubAnalyzer()
    app.state.templates.loader.loaders.append(
        DictLoader({"stub_panel.html": '<p class="stub" data-stub="{{ stub.metrics.stub_score }}">'
                    "{{ stub.label }}</p>"})
    )  # fmt: skip
    ev = evaluate(api, new_run(api), *predictions(12))
    body = api.get(f"/evaluations/{ev['id']}").text
    page = Html(body)
    (panel,) = page.find(data_stub="0.25")
    assert text(panel) == HOSTILE  # shown as text, escaped in the HTML
    assert HOSTILE not in body
    assert page.row(data_metric="stub_score")
