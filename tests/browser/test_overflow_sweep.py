"""Every page type of the portal on a hostile workspace (250-character names, 100 params with
long keys, a 20-step pipeline, 8 models compared, long artifact paths), at 390, 1024 and
1440 px, light and dark: the page never scrolls sideways, nothing sticks out of its panel
unless that panel scrolls on purpose, no text is squeezed to a letter a line, no two figures
overlap, and the pieces the issue named (runs table, params, confusion matrices, pipeline DAG,
top bar, fairness table) keep their shape. Every offender is collected into one message.

One test per theme: each page is loaded once, at 390 px, and measured as the window widens
to 1024 and 1440 px (its charts redrawn at each width), which keeps ~30 page types at three
widths and two themes within a minute.

``MODELYARD_SHOTS=<folder>`` also saves a full-page screenshot of every page visited."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from playwright.sync_api import Browser, FilePayload, Page

from modelyard.demo import PIPELINE
from modelyard.sdk.client import ActiveRun, Client
from tests.browser.conftest import serve_workspace

WIDTHS = (390, 1024, 1440)
THEMES = ("light", "dark")
LONG_PROJECT = ("quarterly-customer-churn-forecasting-for-every-region-and-segment-" * 4)[:250]
LONG_RUN = ("gradient_boosted_trees_with_monotonic_constraints_and_early_stopping_" * 4)[:250]
LONG_MODEL = ("customer.churn.classifier.gradient.boosted.trees.isotonic.calibration." * 4)[:250]
LONG_STEP = ("compute-rolling-aggregates-of-usage-per-customer-and-calendar-week-" * 4)[:250]
LONG_EVALUATION = ("holdout-evaluation-against-the-quarterly-snapshot-of-customers-" * 4)[:250]
DATASET = ("customer_snapshot_2026_10_with_every_account_ever_opened_" * 2)[:100]
LONG_METRIC = "validation.holdout.area_under_the_precision_recall_curve.weighted"
REGIONS = [
    "the-northern-region-and-every-outlying-island-with-its-ferries",
    "the-southern-region-and-its-coast",
    "east",
]
# A 20-step pipeline: fan out, join, fan out again, join. LONG_STEP is one of them.
PIPELINE_20: dict[str, list[str]] = {
    "ingest": [],
    "validate_schema": ["ingest"],
    "validate_ranges": ["ingest"],
    LONG_STEP: ["validate_schema", "validate_ranges"],
    "featurize_usage": [LONG_STEP],
    "featurize_billing": [LONG_STEP],
    "featurize_support": [LONG_STEP],
    "featurize_tenure": [LONG_STEP],
    "join_features": [f"featurize_{f}" for f in ("usage", "billing", "support", "tenure")],
    "split": ["join_features"],
    "train_gbm": ["split"],
    "train_logreg": ["split"],
    "train_mlp": ["split"],
    "calibrate_gbm": ["train_gbm"],
    "calibrate_logreg": ["train_logreg"],
    "calibrate_mlp": ["train_mlp"],
    "evaluate": ["calibrate_gbm", "calibrate_logreg", "calibrate_mlp"],
    "fairness": ["evaluate"],
    "explain": ["evaluate"],
    "report": ["fairness", "explain"],
}


@dataclass
class Hostile:
    """What the hostile workspace holds, by id."""

    run: str = ""  # 250-character name, 100 params, 20 steps, still running
    run_urn: str = ""
    runs: list[str] = field(default_factory=list)  # the 8 evaluated runs (6 steps each)
    evaluations: list[str] = field(default_factory=list)
    model_version_urn: str = ""
    dataset_urn: str = ""
    artifacts: dict[str, str] = field(default_factory=dict)  # kind of preview -> path


def _params() -> dict[str, str]:
    """100 params with 60-character dotted keys, some values long, one without a space."""
    params = {}
    for i in range(100):
        key = f"model.hyperparameters.section_{i % 7}.tree_booster.option_{i:03d}"
        key = (key + ".max_leaf_nodes_per_tree")[:60]
        value = str(i) if i % 3 else f"value-{i}-" + "with some words in it " * 4
        params[key] = value
    params[f"model.preprocessing.{'x' * 40}.feature_list"] = "f_" * 150
    return params


def _artifacts(run: ActiveRun, tmp: Path, out: dict[str, str]) -> None:
    folder = "reports/" + "quarterly-evaluation-of-the-churn-model-by-region-and-segment-" * 3
    files = {
        "text": ("notes.txt", "a-line-with-no-space-" * 60 + "\nand some words " * 40),
        "json": ("summary.json", '{"' + "k" * 120 + '": "' + "v" * 300 + '", "n": 1}'),
        "table": (
            "predictions.csv",
            "customer_identifier_as_stored_in_the_warehouse_table,"
            + "predicted_probability_of_churn_next_month,region\n"
            + "".join(f"{'c' * 80}{i},{i / 10},{REGIONS[i % 3]}\n" for i in range(10)),
        ),
        "binary": ("model.bin", "\x00\x01" * 100),
    }
    for kind, (name, text) in files.items():
        local = tmp / name
        local.write_text(text)
        path = f"{folder[:240]}/{'long-file-name-' * 8}{name}"
        run.log_artifact(local, path, step="report" if kind != "binary" else "ingest")
        out[kind] = path


def _scores(rng: np.random.Generator, y: Any, skill: float) -> Any:
    return np.clip(y * skill + rng.random(len(y)) * (1 - skill), 0, 1)


def build_hostile(client: Client) -> Hostile:
    """The workspace: a running run with everything long, and 8 finished runs whose model
    versions are evaluated on one dataset with groups."""
    rng = np.random.default_rng(3)
    made = Hostile()
    y = rng.integers(0, 2, 600)
    region = rng.choice(REGIONS, 600)
    for n in range(8):
        name = LONG_RUN if n == 0 else f"candidate-{n}"
        with client.start_run(LONG_PROJECT, name, params={"depth": str(n)}) as run:
            run.plan(PIPELINE)
            for step in PIPELINE:
                with run.step(step):
                    pass
            run.log_metrics({"auc": 0.7 + n / 50, LONG_METRIC: 0.5 + n / 40})
            version = run.register_model(LONG_MODEL, "calibrated " * 30)
            ev = version.evaluate(
                y, _scores(rng, y, 0.2 + n / 20), dataset=DATASET,
                name=LONG_EVALUATION if n < 2 else f"holdout-{n}", groups={"region": region},
            )  # fmt: skip
            made.runs.append(run.id)
            made.evaluations.append(ev.id)
            made.model_version_urn = version.public.urn
    run = client.start_run(LONG_PROJECT, LONG_RUN, params=_params(), tags={"note": "t " * 300})
    run.plan(PIPELINE_20)
    with tempfile.TemporaryDirectory() as tmp:
        for step in list(PIPELINE_20)[:-1]:
            with run.step(step):
                pass
        _artifacts(run, Path(tmp), made.artifacts)
    for i in range(5):
        run.log_metric(LONG_METRIC, 0.5 + i / 20, step=i)
    run.log_metric("auc", 0.9)
    made.dataset_urn = run.log_input(DATASET, num_rows=600)
    run.log_model(LONG_MODEL)
    last = run.step("report")
    last.start()
    last.set_progress(0.4, "writing section " + "s" * 120)
    run.detach()
    made.run, made.run_urn = run.id, client.get_run(run.id).urn
    return made


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str | None
) -> Iterator[tuple[str, Hostile]]:
    with serve_workspace(tmp_path_factory, pg_template, build_hostile, "hostile") as served:
        yield served


def pages(ws: Hostile) -> dict[str, str]:
    """One URL of every page type; the upload page is reached by posting the form."""
    run, model, evs = ws.run, quote(LONG_MODEL, safe=""), ws.evaluations
    art = f"/runs/{run}/artifacts/"
    return {
        "home": "/",
        "projects": "/projects",
        "runs table": f"/projects/{quote(LONG_PROJECT, safe='')}",
        "runs table, bad filter": f"/projects/{quote(LONG_PROJECT, safe='')}?"
        + urlencode({"filter": f"params.{'k' * 200} = "}),
        "run (20 steps, 100 params)": f"/runs/{run}",
        "run (6 steps)": f"/runs/{ws.runs[1]}",
        "run comparison": "/compare?" + urlencode([("run", r) for r in [run, *ws.runs[:3]]]),
        "aspect history": "/history?" + urlencode({"urn": ws.run_urn, "aspect": "run_properties"}),
        "text artifact": art + quote(ws.artifacts["text"]),
        "json artifact": art + quote(ws.artifacts["json"]),
        "table artifact": art + quote(ws.artifacts["table"]),
        "binary artifact": art + quote(ws.artifacts["binary"]),
        "run evaluations": f"/runs/{ws.runs[0]}/evaluations",
        "evaluation": f"/evaluations/{evs[0]}",
        "evaluation comparison": "/evaluations/compare?" + urlencode([("e", e) for e in evs]),
        "models": "/models",
        "model": f"/models/{model}",
        "model version": f"/models/{model}/versions/1",
        "lineage": "/lineage?" + urlencode({"urn": ws.run_urn}),
        "model version lineage": "/lineage?" + urlencode({"urn": ws.model_version_urn}),
        "activity": "/activity",
        "activity, filtered": "/activity?" + urlencode({"urn": ws.run_urn, "since": "bad"}),
        "run entity": f"/entities/{ws.run_urn}",
        "dataset entity": f"/entities/{ws.dataset_urn}",
        "search": "/search?q=gradient",
        "search, bad filter": "/search?" + urlencode({"q": f"metrics.{'m' * 200} >"}),
        "docs": "/docs",
        "not found": f"/runs/{'no-such-run-' * 20}",
    }


# The containers an element must stay inside: the page's own boxes and the table cells.
PANELS = (
    "main, .topbar, .panel, .card, .table-wrap, .step, .notice, figure, pre, .diff, .graph,"
    " .api-docs, .error-page, .toolbar, .header-line, .run-title, dl, td, th, li"
)

# One check for every page: offenders as {what, selector, text, sizes}. An element is measured
# against its nearest panel (see PANELS) unless a box between them, or the panel itself,
# scrolls sideways on purpose (overflow-x auto or scroll).
LAYOUT_CHECK = """(panels) => {
  const found = [];
  const bad = [];
  const name = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
      let s = e.tagName.toLowerCase();
      if (e.id) { parts.unshift(s + '#' + e.id); break; }
      if (typeof e.className === 'string' && e.className.trim()) {
        s += '.' + e.className.trim().split(/\\s+/).slice(0, 2).join('.');
      }
      parts.unshift(s);
    }
    return parts.join(' > ');
  };
  const text = (el) => (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const report = (what, el, extra) => {
    if (bad.some((b) => b.contains(el))) { return; }
    bad.push(el);
    found.push(Object.assign({what, selector: name(el), text: text(el)}, extra));
  };
  const r = Math.round;
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') { continue; }
    if (['SCRIPT', 'STYLE', 'TEMPLATE', 'NOSCRIPT', 'BR'].includes(el.tagName)) { continue; }
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) { continue; }
    if (!el.checkVisibility({visibilityProperty: true})) { continue; }  // closed <details> too
    const style = getComputedStyle(el);
    if (style.position === 'fixed') { continue; }
    let panel = el.parentElement, excused = false;
    for (; panel && !panel.matches(panels); panel = panel.parentElement) {
      if (scrolls(panel)) { excused = true; break; }
    }
    if (!panel || excused || scrolls(panel)) { continue; }
    const p = panel.getBoundingClientRect();
    const left = p.left + panel.clientLeft - 1;
    const right = left + 2 + (panel.clientWidth || p.width);
    if (box.right > right || box.left < left) {
      report('sticks out of its panel', el, {panel: name(panel),
        box: [r(box.left), r(box.right)], inside: [r(left + 1), r(right - 1)]});
      continue;
    }
    // A word squeezed to a letter or two a line.
    const line = parseFloat(style.lineHeight) || 20;
    const words = (el.textContent || '').trim();
    if (el.children.length === 0 && words.length > 12 && box.width < 48 && box.height > 3 * line) {
      report('squeezed to a letter a line', el, {width: r(box.width), height: r(box.height)});
    }
    // A name in a table (a link in a cell) wraps to a few lines at most, then ellipsizes;
    // an artifact's path is shown whole, as its end (the file name) matters most.
    if (el.tagName === 'A' && el.closest('td, th') && !el.closest('table.artifacts')) {
      const lines = style.display === 'inline' ? el.getClientRects().length
        : Math.round(box.height / line);
      if (lines > 4) { report('a name in a table runs over ' + lines + ' lines', el, {}); }
    }
  }
  // Sibling figures and panels must not sit on each other (confusion matrices, charts).
  const blocks = [...document.querySelectorAll('figure, .panel, .card, .evaluation-panel, .step')];
  const byParent = new Map();
  for (const b of blocks) {
    const list = byParent.get(b.parentElement) || [];
    list.push(b);
    byParent.set(b.parentElement, list);
  }
  for (const list of byParent.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i].getBoundingClientRect(), b = list[j].getBoundingClientRect();
        const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (x > 1 && y > 1) {
          found.push({what: 'overlaps its neighbour', selector: name(list[i]), text: text(list[i]),
            other: name(list[j]), overlap: [r(x), r(y)]});
        }
      }
    }
  }
  return found.slice(0, 12);
}"""

# What the issue named, where a page has it: runs table heads and rows, param keys, the
# pipeline DAG, confusion matrices.
SHAPES = """() => {
  const found = [];
  const r = Math.round;
  const wrap = document.querySelector('#runs-table')?.closest('.table-wrap');
  if (wrap) {
    const right = wrap.getBoundingClientRect().left + wrap.clientWidth;
    for (const th of document.querySelectorAll('#runs-table thead tr.column-keys th')) {
      const b = th.getBoundingClientRect();
      if (b.width > 240) {
        found.push(`the ${th.textContent.trim().slice(0, 30)} column is ${r(b.width)} px wide`);
      }
      if (th.textContent.trim().startsWith('Status') && b.right > right + 1) {
        found.push(`Status is out of view (${r(b.right)} > ${r(right)})`);
      }
    }
    for (const tr of document.querySelectorAll('#runs-table tbody tr')) {
      const h = tr.getBoundingClientRect().height;
      if (h > 110) { found.push(`a row is ${r(h)} px tall`); break; }
    }
  }
  // Param keys break after a dot, underscore, dash or slash (anywhere else only within a
  // part longer than the cell).
  for (const td of [...document.querySelectorAll('#params-table td:first-child')].slice(0, 30)) {
    const node = td.firstChild?.nodeType === 3 ? td : null;
    const text = td.textContent;
    const range = document.createRange();
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      for (let i = 0; i < t.length; i++) {
        range.setStart(t, i); range.setEnd(t, i + 1);
        const b = range.getBoundingClientRect();
        chars.push({c: t.data[i], top: b.top, width: b.width});
      }
    }
    const inner = td.clientWidth - parseFloat(getComputedStyle(td).paddingLeft)
      - parseFloat(getComputedStyle(td).paddingRight);
    for (let i = 1; i < chars.length; i++) {
      if (chars[i].top > chars[i - 1].top + 2 && !'._-/'.includes(chars[i - 1].c)) {
        let a = i, b = i;
        while (a > 0 && !'._-/'.includes(chars[a - 1].c)) { a--; }
        while (b < chars.length && !'._-/'.includes(chars[b].c)) { b++; }
        const part = chars.slice(a, b).reduce((w, c) => w + c.width, 0);
        if (part <= inner + 1) {
          found.push(`param key ${text.slice(0, 30)}… breaks inside "${text.slice(a, b)}"`
            + ` at a width of ${r(inner)} px`);
          break;
        }
      }
    }
    if (found.length > 4) { break; }
  }
  for (const graph of document.querySelectorAll('.pipeline .graph')) {
    const steps = graph.closest('.pipeline').querySelectorAll('.steps > li').length;
    const svg = graph.querySelector('svg');
    const shown = graph.clientWidth, whole = graph.scrollWidth;
    if (steps <= 6 && window.innerWidth >= 1440 && whole > shown + 1) {
      found.push(`the ${steps}-step pipeline is cut off: ${r(shown)} of ${r(whole)} px shown`);
    }
    if (whole > shown + 1 && !['auto', 'scroll'].includes(getComputedStyle(graph).overflowX)) {
      found.push(`the ${steps}-step pipeline is cut off and does not scroll`);
    }
    if (svg && svg.getBoundingClientRect().width < Math.min(shown, svg.viewBox.baseVal.width) - 1) {
      found.push(`the ${steps}-step pipeline leaves room unused`);
    }
  }
  for (const fig of document.querySelectorAll('figure.matrix')) {
    const table = fig.querySelector('table');
    const t = table.getBoundingClientRect(), f = fig.getBoundingClientRect();
    if (t.width > fig.clientWidth + 1 || t.left < f.left - 1) {
      found.push(`a confusion matrix (${r(t.width)} px) is wider than its figure`
        + ` (${r(fig.clientWidth)} px)`);
    }
  }
  return found;
}"""

# Charts follow a resized window (Plotly does it after a short delay); then two frames.
RESIZED = """() => Promise.all([...document.querySelectorAll('.js-plotly-plot')]
  .map((plot) => window.Plotly.Plots.resize(plot)))
  .then(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))))"""

# Ready to measure: embedded charts drawn and htmx's on-load fragments swapped in.
READY = """() => [...document.querySelectorAll('script[data-chart-for]')]
  .every((s) => document.getElementById(s.dataset.chartFor)?.dataset.drawn)
  && !document.querySelector('[hx-trigger="load"]')"""


def _problems(tab: Page, label: str) -> list[str]:
    width = tab.evaluate("window.innerWidth")
    out = []
    page_width = tab.evaluate("document.scrollingElement.scrollWidth")
    if page_width > width:
        out.append(f"{label}: the page is {page_width} px wide in a {width} px window")
    for o in tab.evaluate(LAYOUT_CHECK, PANELS):
        details = ", ".join(f"{k} {v}" for k, v in o.items() if k not in ("what", "selector"))
        out.append(f"{label}: {o['selector']} {o['what']} ({details})")
    out += [f"{label}: {shape}" for shape in tab.evaluate(SHAPES)]
    return out


def _visit(tab: Page, url: str) -> None:
    """``url`` loaded at the narrowest width, every <details> on it opened."""
    tab.set_viewport_size({"width": WIDTHS[0], "height": 900})
    tab.goto(url, wait_until="domcontentloaded")
    tab.wait_for_function(READY, timeout=10_000)
    tab.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")


def _resize(tab: Page, width: int) -> None:
    """The window at ``width``, its charts redrawn to their new size."""
    tab.set_viewport_size({"width": width, "height": 900})
    tab.evaluate(RESIZED)


def _upload_failure(tab: Page, ws: Hostile) -> None:
    """The run's evaluations page again after a file that lacks its label column."""
    _visit(tab, f"/runs/{ws.runs[0]}/evaluations")
    columns = "customer_identifier_as_stored_in_the_warehouse_" * 3
    csv: FilePayload = {
        "name": "p.csv",
        "mimeType": "text/csv",
        "buffer": f"{columns},s\n1,0\n".encode(),
    }
    tab.set_input_files("input[name=predictions]", files=[csv])
    tab.locator("input[name=y_true]").fill("label_" * 30)
    with tab.expect_navigation(wait_until="load"):
        tab.get_by_role("button", name="Evaluate").click()


def _each_width(tab: Page, label: str, shots: str | None, theme: str) -> list[str]:
    problems = []
    for width in WIDTHS:
        _resize(tab, width)
        problems += _problems(tab, f"{label} at {width} px")
        if shots and width != 1024:
            tab.screenshot(path=f"{shots}/{label}-{width}-{theme}.png", full_page=True)
    return problems


@pytest.mark.parametrize("theme", THEMES)
def test_no_page_overflows_at_any_width(
    browser: Browser, hostile: tuple[str, Hostile], theme: str
) -> None:
    """Each page is loaded at the narrowest width, then widened: a page never narrows while
    it is measured, so a chart a moment behind the window cannot pass for an overflow."""
    base, ws = hostile
    context = browser.new_context(base_url=base, color_scheme=theme)  # type: ignore[arg-type]
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    shots = os.environ.get("MODELYARD_SHOTS")
    problems: list[str] = []
    try:
        for label, url in pages(ws).items():
            _visit(tab, url)
            problems += _each_width(tab, label, shots, theme)
        _upload_failure(tab, ws)
        assert tab.locator(".notice-error").count() == 1
        problems += _each_width(tab, "upload failure", shots, theme)
    finally:
        context.close()
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)
