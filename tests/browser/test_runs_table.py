"""The runs table as a spreadsheet: grouped headers, numbers lined up with the same decimals,
columns remembered per project, filter messages, the possibly-stale flag; and the projects and
models lists' latest activity and best headline metric. On the demo workspace."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from sqlalchemy import update

from modelyard.app import create_app
from modelyard.demo import CANCER, CHURN, build_demo
from modelyard.metadata import tables as t
from modelyard.sdk.client import Client
from modelyard.settings import Settings
from tests.browser.conftest import Problems
from tests.conftest import ServerThread, scratch_postgres

API = "/api/v1"
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str | None
) -> Iterator[tuple[str, FastAPI]]:
    """The demo portal, with its app at hand so a test can let time pass for a run (its
    server runs no lifespan, so no sweep marks a silent run lost meanwhile)."""
    data = tmp_path_factory.mktemp("runs-table")
    if pg_template is None:
        yield from _serve(Settings(data_dir=data))
        return
    with scratch_postgres("table_", pg_template) as url:
        yield from _serve(Settings(data_dir=data, database_url=url))


def _serve(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(settings)
    with ServerThread(app) as server:
        with Client(server.url) as client:
            build_demo(client)
        yield server.url, app
    app.state.store.engine.dispose()


@pytest.fixture(scope="module")
def portal(served: tuple[str, FastAPI]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def api(portal: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal + API, timeout=30) as client:
        yield client


def project_runs(api: httpx.Client, project: str) -> list[dict[str, Any]]:
    resp = api.post("/runs/search", json={"project": project, "page_size": 1000})
    assert resp.status_code == 200, resp.text
    runs: list[dict[str, Any]] = resp.json()["runs"]
    return runs


def key_headers(page: Page) -> list[str]:
    titles: list[str] = page.locator("#runs-table tr.column-keys th[title]").evaluate_all(
        "(ths) => ths.map((th) => th.title)"
    )
    return titles


def column_cells(page: Page, field: str) -> list[dict[str, Any]]:
    """Each cell of a column: its text, computed alignment and the right edge of its text."""
    cells: list[dict[str, Any]] = page.evaluate(
        """(field) => {
          const ths = [...document.querySelectorAll('#runs-table tr.column-keys th')];
          const i = ths.findIndex((th) => th.title === field);
          return [...document.querySelectorAll('#runs-table tbody tr')].map((tr) => {
            const td = tr.children[i];
            const range = document.createRange();
            range.selectNodeContents(td);
            const box = range.getBoundingClientRect();
            return {run: tr.dataset.runId, text: td.innerText.trim(),
                    align: getComputedStyle(td).textAlign, right: box.right,
                    cellRight: td.getBoundingClientRect().right};
          });
        }""",
        field,
    )
    return cells


# --- the table


def test_group_headers_span_their_columns(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    groups = page.locator("#runs-table th.column-group")
    expect(groups).to_have_count(2)
    assert groups.all_text_contents() == ["Metrics", "Params"]
    spans: list[dict[str, Any]] = page.evaluate(
        """() => {
          const box = (el) => el.getBoundingClientRect();
          const keys = [...document.querySelectorAll('#runs-table tr.column-keys th')];
          return [...document.querySelectorAll('#runs-table th.column-group')].map((g) => {
            const kind = {Metrics: 'metric', Params: 'param', Tags: 'tag'}[g.textContent];
            const mine = keys.filter((th) => th.dataset.group === kind);
            const others = keys.filter((th) => th.dataset.group !== kind);
            return {left: box(g).left, right: box(g).right, bottom: box(g).bottom,
                    mine: mine.map((th) => [box(th).left, box(th).right, box(th).top]),
                    others: others.map((th) => [box(th).left, box(th).right])};
          });
        }"""
    )
    metrics = project_runs_keys(page, "metrics")
    assert len(spans[0]["mine"]) == len(metrics) >= 2
    for group in spans:
        assert group["mine"], group
        # The group's box covers each of its columns' boxes and sits above them...
        for left, right, top in group["mine"]:
            assert group["left"] - 1 <= left
            assert right <= group["right"] + 1
            assert group["bottom"] <= top + 1
        # ...and no other column's.
        for left, right in group["others"]:
            assert right <= group["left"] + 1 or left >= group["right"] - 1


def project_runs_keys(page: Page, prefix: str) -> list[str]:
    return [t for t in key_headers(page) if t.startswith(prefix + ".")]


def test_numbers_are_right_aligned_with_the_same_decimals(page: Page, api: httpx.Client) -> None:
    page.goto(f"/projects/{CANCER}")
    runs = {r["run_id"]: r for r in project_runs(api, CANCER)}
    metric_fields = project_runs_keys(page, "metrics")
    assert {"metrics.auc", "metrics.log_loss", "metrics.train_loss"} <= set(metric_fields)
    for field in [*metric_fields, "params.max_depth"]:
        cells = [c for c in column_cells(page, field) if c["text"]]
        assert len(cells) >= 2, field
        assert {c["align"] for c in cells} == {"right"}, field
        # The text of every cell ends at the same x, as in a spreadsheet.
        rights = [c["right"] for c in cells]
        assert max(rights) - min(rights) < 1.0, (field, rights)
        if not field.startswith("metrics."):
            continue
        # One number of decimals per column (of the mantissa, when the values span too many
        # orders of magnitude for decimals), each cell the run's own value rounded to it.
        texts = [c["text"] for c in cells]
        scientific = "e" in texts[0]
        mantissas = [text.split("e")[0] for text in texts]
        decimals = {len(m.partition(".")[2]) for m in mantissas}
        assert len(decimals) == 1, (field, texts)
        places = decimals.pop()
        style = f".{places}e" if scientific else f",.{places}f"
        values = [runs[c["run"]]["metrics"][field.split(".", 1)[1]]["value"] for c in cells]
        assert texts == [format(v, style) for v in values], field
        # The largest value keeps at least four significant digits.
        digits = max(mantissas, key=lambda m: float(m.replace(",", "")))
        assert len(digits.replace(",", "").replace(".", "").lstrip("0")) >= 4, (field, texts)
    # A column spanning eight orders of magnitude (boosting drives its training loss to zero)
    # is scientific; one of values between 0.5 and 1 shows four decimals.
    assert "e" in column_cells(page, "metrics.train_loss")[0]["text"]
    assert all(re.fullmatch(r"0\.\d{4}", c["text"]) for c in column_cells(page, "metrics.auc"))


def test_chosen_columns_are_remembered_per_project(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    defaults = key_headers(page)
    page.get_by_text(re.compile(r"^Columns \(\d+\)$")).click()
    chooser = page.locator("details.chooser")
    for box in chooser.locator("input[name=col]").all():
        box.uncheck()
    chooser.get_by_label("max_depth").check()
    chooser.get_by_label("auc", exact=True).check()
    chooser.get_by_role("button", name="Apply").click()
    expect(page.locator("#runs-table tr.column-keys th[title]")).to_have_count(2)
    chosen = key_headers(page)
    assert chosen == ["metrics.auc", "params.max_depth"]
    # Coming back by the project's plain address (a link, or a reload of it) shows them again.
    page.goto("/projects")
    page.get_by_role("link", name=CHURN, exact=True).click()
    expect(page.locator("#runs-table tr.column-keys th[title]")).to_have_count(2)
    assert key_headers(page) == chosen
    page.reload()
    assert key_headers(page) == chosen
    # The address wins when it names columns; another project keeps its own.
    page.goto(f"/projects/{CHURN}?col=params.model")
    assert key_headers(page) == ["params.model"]
    page.goto(f"/projects/{CANCER}")
    assert len(key_headers(page)) > 2
    # "Default columns" forgets the choice.
    page.goto(f"/projects/{CHURN}")
    page.get_by_text(re.compile(r"^Columns \(\d+\)$")).click()
    page.get_by_role("link", name="Default columns").click()
    page.goto(f"/projects/{CHURN}")
    assert key_headers(page) == defaults


def test_a_syntax_error_shows_only_the_error(page: Page, problems: Problems) -> None:
    problems.expect(r"status of 400 \(Bad Request\)")
    page.goto(f"/projects/{CHURN}?filter=" + quote("metrics.auc > and"))
    expect(page.get_by_role("alert")).to_contain_text("That filter did not work")
    body = page.locator("main").inner_text()
    assert "No run matches" not in body
    expect(page.locator("#runs-table")).to_have_count(0)


def test_a_filter_over_a_key_no_run_has_says_so(page: Page) -> None:
    page.goto(f"/projects/{CHURN}")
    box = page.get_by_label("Filter runs")
    box.fill("metrics.acc > 0.5 and params.learning_rat = '0.1'")
    box.press("Enter")
    notes = page.locator("[data-unknown-key]")
    expect(notes).to_have_count(2)
    assert notes.all_inner_texts() == [
        "No run in this project has a metric named 'acc'; did you mean 'auc'?",
        "No run in this project has a param named 'learning_rat'; did you mean 'learning_rate'?",
    ]
    # A key that exists only as another kind is pointed at.
    box = page.get_by_label("Filter runs")
    box.fill("metrics.model = 1")
    box.press("Enter")
    expect(notes).to_have_text(
        ["No run in this project has a metric named 'model'; did you mean params.model?"]
    )
    # Known keys raise no note.
    box = page.get_by_label("Filter runs")
    box.fill("metrics.auc > 0.5 and params.model = 'gbm'")
    box.press("Enter")
    expect(page.locator("#runs-table tbody tr[data-run-id]")).to_have_count(3)
    expect(notes).to_have_count(0)


def test_a_silent_running_run_is_flagged_possibly_stale(
    page: Page, api: httpx.Client, served: tuple[str, FastAPI]
) -> None:
    started = int(time.time() * 1000) - 10 * MINUTE_MS
    body = {"project": CHURN, "name": "silent-run", "start_time": started}
    silent = api.post("/runs", json=body).json()["run_id"]
    alive = api.post("/runs", json={"project": CHURN, "name": "alive-run"}).json()["run_id"]
    store = served[1].state.store
    with store.engine.begin() as conn:  # seven minutes pass without a word from it
        conn.execute(
            update(t.run)
            .where(t.run.c.id == silent)
            .values(last_heartbeat=t.run.c.last_heartbeat - 7 * MINUTE_MS)
        )
    assert api.post(f"/runs/{alive}/heartbeat").status_code == 200
    page.goto(f"/projects/{CHURN}")
    row = page.locator(f"#runs-table tr[data-run-id='{silent}']")
    expect(row.locator("[data-stale]")).to_have_text("possibly stale — no update for 7 min")
    assert row.locator(".status").inner_text() == "running"
    expect(page.locator(f"#runs-table tr[data-run-id='{alive}'] [data-stale]")).to_have_count(0)
    # The run's own page says so in its header.
    page.goto(f"/runs/{silent}")
    expect(page.locator("#run-state [data-stale]")).to_have_text(
        "possibly stale — no update for 7 min"
    )
    page.goto(f"/runs/{alive}")
    expect(page.locator("#run-state")).to_be_visible()
    expect(page.locator("[data-stale]")).to_have_count(0)
    for run_id in (silent, alive):  # ended, so the project's other runs are as they were
        assert api.patch(f"/runs/{run_id}", json={"status": "killed"}).status_code == 200


# --- the lists


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def best_of(runs: list[dict[str, Any]]) -> tuple[str, float, set[str]]:
    """The metric most of ``runs`` logged (training curves last), its largest value (the demo's
    headline metrics are all higher-is-better) and the runs that reached it."""
    counts = Counter(k for r in runs for k in r["metrics"])
    top = max(counts.values())
    key = sorted(k for k, n in counts.items() if n == top and not k.startswith("train"))[0]
    best = max(r["metrics"][key]["value"] for r in runs if key in r["metrics"])
    return key, best, {r["run_id"] for r in runs if r["metrics"].get(key, {}).get("value") == best}


def headline_of(row: Any) -> tuple[str, float, str]:
    cell = row.locator(".headline")
    link = cell.locator("[data-headline-value]")
    run_id = (link.get_attribute("href") or "").rsplit("/", 1)[-1]
    return cell.locator(".headline-key").inner_text(), float(link.inner_text()), run_id


def test_projects_list_shows_latest_run_and_best_headline_metric(
    page: Page, api: httpx.Client
) -> None:
    page.goto("/projects")
    header = page.locator("#projects-table th", has_text="Best headline metric")
    assert "most runs logged" in (header.get_attribute("title") or "")
    for project in (CANCER, CHURN):
        runs = project_runs(api, project)
        row = page.locator("#projects-table tbody tr", has=page.get_by_role("link", name=project))
        latest = max(r["start_time"] for r in runs)
        assert row.locator("time").first.get_attribute("datetime") == iso(latest)
        finished = [r for r in runs if r["status"] == "finished"]
        key, best, best_runs = best_of(finished)
        shown_key, shown, run_id = headline_of(row)
        assert shown_key == key == "auc"
        assert shown == pytest.approx(best, rel=1e-3)
        assert run_id in best_runs
        assert "▲" in row.locator(".headline").inner_text()


def test_models_list_shows_latest_version_and_best_headline_metric(
    page: Page, api: httpx.Client
) -> None:
    page.goto("/models")
    models = api.get("/models").json()
    assert models
    for model in models:
        versions = api.get(f"/models/{quote(model['name'], safe='')}/versions").json()
        made_by = [api.get(f"/runs/{v['run_id']}").json() for v in versions]
        row = page.locator(
            "#models-table tbody tr", has=page.get_by_role("link", name=model["name"], exact=True)
        )
        latest = max(v["created_at"] for v in versions)
        assert row.locator("time").get_attribute("datetime") == iso(latest)
        key, best, best_runs = best_of(made_by)
        shown_key, shown, run_id = headline_of(row)
        assert shown_key == key
        assert shown == pytest.approx(best, rel=1e-3)
        assert run_id in best_runs
