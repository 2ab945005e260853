"""The analyzer contract: a third-party analyzer with its own side table, query, headline
metrics (one better higher, one lower, one neither) and panels shows on the evaluation page
and on the comparison page next to the built-ins; and no built-in analyzer is special-cased
(by name, metric key or panel title) anywhere outside its own module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI
from sklearn.metrics import roc_auc_score

import modelyard
from modelyard import plugins as plugins_module
from modelyard.analyzers.base import Analyzer
from modelyard.app import create_app
from modelyard.plugins import make_plugins
from modelyard.settings import Settings
from tests.conftest import in_process_client
from tests.helpers import API, assert_error, new_run
from tests.test_web_evaluations import Html, chart_figures, text

SRC = Path(modelyard.__file__).parent


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    """The app with the test's decile analyzer registered in its plugin manager."""
    monkeypatch.setattr(
        plugins_module, "BUILTINS", (*plugins_module.BUILTINS, "tests.decile_analyzer")
    )
    application = create_app(settings)
    yield application
    application.state.store.engine.dispose()


@pytest.fixture
def api(app: FastAPI) -> Iterator[httpx.Client]:
    with in_process_client(app) as client:
        yield client


def scores(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(y * (0.1 + 0.1 * seed) + rng.normal(0.4, 0.2, n), 0, 1)  # no ties
    return y, s


def evaluate(api: httpx.Client, y: np.ndarray, s: np.ndarray, **body: Any) -> dict[str, Any]:
    payload = {"y_true": y.tolist(), "y_score": s.tolist(), **body}
    resp = api.post(f"{API}/runs/{new_run(api)}/evaluations", json=payload)
    assert resp.status_code == 201, resp.text
    found: dict[str, Any] = resp.json()
    return found


def expected(y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    """The deciles computed here: 600 rows make ten parts of 60, highest scores first."""
    top = np.sort(s)[::-1].reshape(10, 60)
    hits = y[np.argsort(-s)].reshape(10, 60)
    rate = hits.mean(axis=1)
    return {
        "positives": hits.sum(axis=1).tolist(),
        "min_score": top.min(axis=1).tolist(),
        "top_decile_lift": rate[0] / y.mean(),
        "calibration_gap": np.abs(rate - top.mean(axis=1)).mean(),
        "top_decile_cutoff": top[0].min(),
    }


def arrow_of(page: Html, key: str) -> str:
    row = page.row(data_metric=key)
    return text(next(e for e in page.within(row) if e["tag"] == "th"))


def test_the_plugin_shows_on_the_evaluation_page_next_to_the_built_ins(
    api: httpx.Client, app: FastAPI
) -> None:
    y, s = scores(1)
    ev = evaluate(api, y, s, name="holdout v1")
    assert ev["name"] == "holdout v1"
    assert ev["analyzers"] == ["binary", "deciles", *(["ks"] if "ks" in ev["analyzers"] else [])]
    want = expected(y, s)
    for key in ("top_decile_lift", "calibration_gap", "top_decile_cutoff"):
        assert ev["metrics"]["deciles"][key] == pytest.approx(want[key], abs=1e-12)
    # its side table is a file of the evaluation, next to the built-in threshold table
    assert ev["files"]["deciles"] == f"evaluations/{ev['id']}/deciles.arrow"
    assert ev["files"]["thresholds"] == f"evaluations/{ev['id']}/thresholds.arrow"
    stored = app.state.artifacts.local_copy(ev["run_id"], ev["files"]["deciles"])
    assert (
        pa.ipc.open_file(str(stored)).read_all().column("positives").to_pylist()
        == want["positives"]
    )
    body = api.get(f"/evaluations/{ev['id']}").text
    page = Html(body)
    cells = page.cells(page.row(data_metric="top_decile_lift"))
    assert float(cells[0]["attrs"]["data-value"]) == pytest.approx(want["top_decile_lift"])
    assert arrow_of(page, "top_decile_lift") == "top-decile lift ↑"
    assert arrow_of(page, "calibration_gap") == "decile calibration gap ↓"
    assert arrow_of(page, "top_decile_cutoff") == "top-decile cutoff"
    assert page.row(data_metric="roc_auc")["attrs"]["data-direction"] == "higher"
    # its panels: its own template fed from its side table, and a figure
    section = page.one(id="analyzer-deciles")
    rows = [e for e in page.within(section) if "data-decile" in e["attrs"]]
    assert [int(r["attrs"]["data-positives"]) for r in rows] == want["positives"]
    titles = [text(e) for e in page.within(section) if e["tag"] == "figcaption"]
    assert titles == ["Positive rate by decile"]
    # the built-ins are all still there
    assert page.one(id="threshold-control")
    assert page.find(id="confusion-default")
    # the lists of evaluations show its summary metric with the built-ins'
    listed = api.get(f"/runs/{ev['run_id']}/evaluations").text
    assert "top-decile lift" in listed
    assert "ROC AUC" in listed


def test_the_plugin_compares_next_to_the_built_ins(api: httpx.Client) -> None:
    data = [scores(k) for k in (1, 2, 3)]
    names = [f"<b>model {k}</b>" for k in range(3)]  # user text, never markup
    ids = [
        evaluate(api, y, s, dataset="holdout", name=n)["id"]
        for (y, s), n in zip(data, names, strict=True)
    ]
    body = api.get("/evaluations/compare?" + "&".join(f"e={i}" for i in ids)).text
    page = Html(body)
    wants = [expected(y, s) for y, s in data]
    for key, pick in (("top_decile_lift", max), ("calibration_gap", min)):
        row = page.row(data_metric=f"deciles.{key}")
        values = [w[key] for w in wants]
        cells = page.cells(row)
        assert [float(c["attrs"]["data-value"]) for c in cells] == pytest.approx(values)
        assert [("data-best" in c["attrs"]) for c in cells] == [v == pick(values) for v in values]
    neither = page.row(data_metric="deciles.top_decile_cutoff")
    assert not any("data-best" in c["attrs"] for c in page.cells(neither))
    assert "↑" not in text(neither)
    assert "↓" not in text(neither)
    assert "↑" in text(page.row(data_metric="deciles.top_decile_lift"))
    assert "↓" in text(page.row(data_metric="deciles.calibration_gap"))
    # the built-ins still compare: AUC marked best, slider, overlays
    aucs = [roc_auc_score(y, s) for y, s in data]
    auc_cells = page.cells(page.row(data_metric="binary.roc_auc"))
    assert [("data-best" in c["attrs"]) for c in auc_cells] == [a == max(aucs) for a in aucs]
    figures = chart_figures(body)
    assert {"compare-roc", "compare-pr", "hist-0"} <= set(figures)
    assert page.one(id="threshold-control")
    # its comparison panel: one line per evaluation in the page's colours
    section = page.one(id="compare-deciles")
    (chart,) = [e for e in page.within(section) if e["attrs"].get("class") == "chart-plot"]
    traces = figures[chart["attrs"]["id"]]["data"]
    assert len(traces) == 3
    assert [t["name"] for t in traces] == [
        n.replace("<", "&lt;").replace(">", "&gt;") for n in names
    ]
    assert "<b>" not in body
    assert traces[0]["y"][0] == pytest.approx(wants[0]["positives"][0] / 60)


def test_the_plugins_side_table_query_answers_through_the_api(api: httpx.Client) -> None:
    y, s = scores(2)
    ev = evaluate(api, y, s)
    want = expected(y, s)
    resp = api.get(f"{API}/evaluations/{ev['id']}/deciles", params={"k": [1, 10]})
    assert resp.status_code == 200, resp.text
    first, last = resp.json()
    assert (first["decile"], last["decile"]) == (1, 10)
    assert (first["positives"], last["positives"]) == (want["positives"][0], want["positives"][9])
    assert last["min_score"] == pytest.approx(want["min_score"][9], abs=1e-15)
    # the built-in threshold query is found the same way
    (point,) = api.get(f"{API}/evaluations/{ev['id']}/thresholds", params={"t": 0.5}).json()
    assert point["tp"] == int(((s >= 0.5) & (y == 1)).sum())
    # bad parameters are a 422 naming them; an evaluation without the table a 400
    assert "k" in assert_error(api.get(f"{API}/evaluations/{ev['id']}/deciles?k=11"), 422)
    assert_error(api.get(f"{API}/evaluations/{ev['id']}/deciles?k=1&x=2"), 422)
    assert_error(api.get(f"{API}/evaluations/{ev['id']}/deciles"), 422)
    truth = np.linspace(0, 5, 20)
    reg = evaluate(api, truth, truth + 0.1, task="regression")
    message = assert_error(api.get(f"{API}/evaluations/{reg['id']}/deciles?k=1"), 400)
    assert "deciles" in message
    assert reg["id"] in message
    assert_error(api.get(f"{API}/evaluations/{ev['id']}/nothing?k=1"), 404)
    # several evaluations at once, as the pages' live controls ask
    other = evaluate(api, *scores(3))
    both = api.get(f"/charts/evaluations/deciles?e={ev['id']}&e={other['id']}&k=1").json()
    assert [e["id"] for e in both["evaluations"]] == [ev["id"], other["id"]]
    assert both["evaluations"][0]["answer"][0]["positives"] == want["positives"][0]


# --- no special cases
BUILT_IN = {a.name: a for a in make_plugins(load_entry_points=False).analyzers.values()}


def owner(rel: Path) -> str | None:
    """The built-in analyzer a file belongs to: analyzers/<name>*.py and its templates."""
    if rel.parts[0] != "analyzers" or len(rel.parts) < 2:
        return None
    return next((n for n in BUILT_IN if rel.name.startswith(n)), None)


def lookups(word: str, *, regex: bool = True) -> list[re.Pattern[str]]:
    """``word`` compared, indexed, looked up, listed in a membership test (or a regex)."""
    q = f"""['"]{re.escape(word)}['"]"""
    return [
        re.compile(rf"(?<!task )[=!]=\s*{q}"),  # == 'binary' (a task's own name is no analyzer's)
        re.compile(rf"{q}\s*[=!]="),
        re.compile(rf"\[\s*{q}\s*\]"),  # ["binary"]
        re.compile(rf"\.get\(\s*{q}"),  # .get("fairness")
        re.compile(rf"\bin\s*[(\[{{][^)\]}}]*{q}"),  # in ('binary', ...)
    ] + ([re.compile(rf"[(|]{re.escape(word)}(\.\*)?[|)]")] if regex else [])  # (roc_auc|...


def name_patterns(name: str) -> list[re.Pattern[str]]:
    """An analyzer's name as a branch or a key, and imports of its modules."""
    keyed = re.compile(rf"""(?<!== )['"]{name}['"]\s*:""")  # {"binary": ...}
    return [*lookups(name, regex=False), keyed]  # (a task pattern names tasks, not analyzers)


IMPORTS = {n: re.compile(rf"analyzers\.{n}\b") for n in ("binary", "fairness", "multiclass",
                                                          "regression")}  # fmt: skip


def key_patterns(analyzer: Analyzer) -> list[re.Pattern[str]]:
    """Its directed headline metrics looked up (or read as attributes in templates), and its
    panel titles."""
    keys = [m.key for m in analyzer.metrics if m.direction != "none"]
    found = [p for k in keys for p in lookups(k)]
    found += [re.compile(rf"\.{re.escape(k)}\b") for k in keys]
    return found + [re.compile(re.escape(p.title)) for p in PANEL_TITLES.get(analyzer.name, [])]


def _panel_titles() -> dict[str, list[Any]]:
    """Panel titles of each built-in analyzer, from its panels of a small evaluation."""
    from modelyard.analyzers.base import prediction_table

    binary = prediction_table([0, 1, 0, 1, 1], [0.1, 0.8, 0.4, 0.35, 0.9])
    grouped = prediction_table(
        [0, 1, 0, 1, 1], [0.1, 0.8, 0.4, 0.35, 0.9], groups={"g": list("ababa")}
    )
    multi = prediction_table([0, 1, 2, 1], np.eye(3)[[0, 1, 2, 0]] * 0.8 + 0.2 / 3)
    reg = prediction_table([1.0, 2.0, 3.5], [1.1, 2.2, 3.0], task="regression")
    found: dict[str, list[Any]] = {}
    for name, table in (("binary", binary), ("fairness", grouped), ("multiclass", multi),
                        ("regression", reg)):  # fmt: skip
        analyzer = BUILT_IN[name]
        found[name] = [p for p in analyzer.panels(analyzer.compute(table)) if len(p.title) > 8]
    return found


PANEL_TITLES = _panel_titles()


# The runs search guesses which way a logged run metric is better from its name; run metrics
# are no analyzer's results.
RUN_METRICS = (Path("web/pages/search.py"),)


# Third-party files kept under their version (htmx-2.0.11.min.js, swagger-ui-5.35.0.js).
VENDORED = re.compile(r"-\d+(\.\d+)+(\.min)?\.js$")


def special_cases(root: Path) -> list[str]:
    """Every special case of a built-in analyzer under ``root`` (a modelyard package): its
    name as a branch or key outside its own modules, imports of its modules outside the
    analyzers, its metric keys and panel titles outside every analyzer's modules."""
    files = [
        p
        for p in root.rglob("*")
        if p.suffix in (".py", ".html", ".js") and not VENDORED.search(p.name)
    ]
    assert len(files) > 50
    found = []
    for path in files:
        rel = path.relative_to(root)
        mine = owner(rel)
        source = path.read_text()
        for name, analyzer in BUILT_IN.items():
            patterns = [] if mine == name or rel.name == "builtin.py" else name_patterns(name)
            if rel.parts[0] != "analyzers":
                patterns.append(IMPORTS[name])
            if mine is None and rel.name != "builtin.py" and rel not in RUN_METRICS:
                patterns += key_patterns(analyzer)
            found += [f"{rel}: {m.group(0)!r}" for p in patterns for m in p.finditer(source)]
    return found


def test_no_built_in_analyzer_is_special_cased_outside_its_own_module() -> None:
    assert set(BUILT_IN) == {"binary", "fairness", "multiclass", "regression"}
    assert special_cases(SRC) == []


def test_the_check_would_catch_a_special_case() -> None:
    patterns = [*name_patterns("binary"), IMPORTS["binary"], *key_patterns(BUILT_IN["binary"])]
    for line in (
        "{% if s.name == 'binary' %}",
        'found = result["binary"]',
        'columns = result.get("binary")',
        "if m.analyzer not in ('binary', 'multiclass') %}",
        'KEY = {"binary": ("roc_auc",)}',
        "from modelyard.analyzers.binary import ThresholdTable",
        "metrics['roc_auc']",
        'HIGHER = re.compile(r"^(roc_auc.*|average_precision)$")',
        "{{ r.metrics.roc_auc }}",
        'MARKED = {"ROC curve": ...}',
    ):
        assert any(p.search(line) for p in patterns), line
    for line in ('if task == "binary":', 'run.log_metrics({"log_loss": 0.3})'):
        assert not any(p.search(line) for p in patterns), line
