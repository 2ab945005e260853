"""The run page of the portal: header, params, tags, metrics and charts; the pipeline DAG and
its live polling; artifact previews; friendly errors; escaping of user text."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from markupsafe import escape

from tests.helpers import API, get_page, new_run
from tests.stores import delete_stored

# Previews read byte ranges of the store: each preview test runs on both stores.
STORES = pytest.mark.stores("local", "s3")

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


# --- helpers


class Page(HTMLParser):
    """Every element's tag and attributes, and the cells of each table by its class."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id") or attributes.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def having(self, attribute: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements if attribute in a and (tag is None or t == tag)]

    def by_id(self, element_id: str) -> dict[str, str]:
        found = [a for _, a in self.elements if a.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]


def put_step(api: httpx.Client, run_id: str, name: str, **body: Any) -> None:
    resp = api.put(f"{API}/runs/{run_id}/steps/{quote(name, safe='')}", json=body)
    assert resp.status_code == 200, resp.text


def upload(
    api: httpx.Client,
    run_id: str,
    path: str,
    content: bytes,
    media_type: str | None = None,
    **q: str,
) -> None:
    headers = {"Content-Type": media_type} if media_type else {}
    resp = api.put(
        f"{API}/runs/{run_id}/artifacts/{quote(path, safe='/')}",
        content=content,
        headers=headers,
        params=q,
    )
    assert resp.status_code == 201, resp.text


def end_run(api: httpx.Client, run_id: str, status: str = "finished", **body: Any) -> None:
    resp = api.patch(f"{API}/runs/{run_id}", json={"status": status, **body})
    assert resp.status_code == 200, resp.text


def log_metrics(api: httpx.Client, run_id: str, points: list[dict[str, Any]]) -> None:
    resp = api.post(f"{API}/runs/{run_id}/batch", json={"metrics": points})
    assert resp.status_code == 204, resp.text


def preview(api: httpx.Client, run_id: str, path: str) -> tuple[str, Page]:
    text = get_page(api, f"/runs/{run_id}/artifacts/{quote(path, safe='/')}")
    return text, Page(text)


def preview_text(text: str) -> str:
    found = re.search(r"<pre [^>]*data-preview-text>(.*?)</pre>", text, re.S)
    assert found, "no text preview on the page"
    return html.unescape(found.group(1))


def assert_escaped(text: str, payload: str) -> None:
    assert payload not in text
    forms = {html.escape(payload), html.escape(payload, quote=False), str(escape(payload))}
    assert any(form in text for form in forms), f"{payload!r} is not shown escaped"


# --- the run page


def test_run_page_shows_header_params_tags_and_metrics(api: httpx.Client) -> None:
    rid = new_run(
        api,
        "churn",
        name="gbm-7",
        params={"lr": "0.1", "depth": "6", "notes": "x" * 3000},
        tags={"team": "risk", "stage": "dev"},
        source="train.py",
        git_commit="a1b2c3d",
    )
    log_metrics(api, rid, [{"key": "auc", "value": 0.9123, "step": 3}])
    text = get_page(api, f"/runs/{rid}")
    page = Page(text)

    assert "<h1>gbm-7</h1>" in text
    assert page.by_id("run-state")["data-run-status"] == "running"
    assert 'href="/projects/churn"' in text
    assert "train.py" in text
    assert "a1b2c3d" in text
    urn = quote(f"urn:modelyard:run:{rid}", safe="")
    assert f'href="/lineage?urn={urn}"' in text
    assert f"/history?urn={urn}" in text
    params = page.tables["params-table"]
    assert [row[0] for row in params[1:]] == ["depth", "lr", "notes"]
    assert params[3][1] == "x" * 3000
    assert "x" * 3000 in text  # long values are shown whole
    assert page.tables["tags-table"][1:] == [["stage", "dev"], ["team", "risk"]]
    assert page.tables["metrics-table"][1:] == [["auc", "0.9123", "3"]]


def test_metric_charts_load_lazily_one_per_key(api: httpx.Client) -> None:
    rid = new_run(api, "charts")
    keys = [f"loss/{i:02d}" for i in range(50)]
    log_metrics(
        api,
        rid,
        [{"key": k, "value": float(s), "step": s} for k in keys for s in range(200)],
    )
    text = get_page(api, f"/runs/{rid}")
    charts = Page(text).having("data-chart-src")
    assert len(charts) == 50
    assert [c["id"] for c in charts] == [f"metric-{i}" for i in range(1, 51)]
    assert charts[0]["data-chart-src"] == f"/charts/metric?key={quote(keys[0], safe='')}&run={rid}"
    assert "data-chart-for" not in text  # no figure data embedded in the page
    assert len(text) < 200_000
    figure = api.get(charts[7]["data-chart-src"])
    assert figure.status_code == 200
    assert figure.json()["data"][0]["y"][:3] == [0.0, 1.0, 2.0]


def test_metrics_logged_at_one_step_are_values_and_histories_are_charts(
    api: httpx.Client,
) -> None:
    rid = new_run(api, "charts")
    points = [
        {"key": "auc", "value": 0.912345, "step": 0},
        {"key": "acc", "value": 0.5, "step": 3},  # twice at one step: still a value
        {"key": "acc", "value": 0.75, "step": 3},
        {"key": "loss", "value": 1.0, "step": 0},
        {"key": "loss", "value": 0.5, "step": 1},
    ]
    log_metrics(api, rid, points)
    text = get_page(api, f"/runs/{rid}")
    charts = Page(text).having("data-chart-src")
    assert [c["id"] for c in charts] == ["metric-3"]  # loss, third in key order
    assert "key=loss" in charts[0]["data-chart-src"]
    tiles = re.findall(r'<div class="metric-tile" id="([^"]+)" data-metric="([^"]+)"', text)
    assert tiles == [("metric-1", "acc"), ("metric-2", "auc")]
    assert ">0.9123<" in text  # four significant digits
    assert "2 points at this step" in text


def test_unknown_run_is_a_friendly_404(api: httpx.Client) -> None:
    for path in ("/runs/nope", "/runs/nope/pipeline", "/runs/nope/artifacts/a.txt"):
        text = get_page(api, path, status=404)
        assert "run &#39;nope&#39; does not exist" in text


# --- the pipeline


def build_pipeline(api: httpx.Client) -> str:
    rid = new_run(api, "pipes")
    put_step(api, rid, "load", status="finished")
    put_step(api, rid, "clean", depends_on=["load"], status="finished")
    put_step(api, rid, "lookup", status="running")
    put_step(api, rid, "featurize", depends_on=["clean"], status="running")
    put_step(api, rid, "featurize", progress=0.5, message="batch 5 of 10")
    put_step(api, rid, "train", depends_on=["featurize", "lookup"])
    upload(api, rid, "features.csv", b"a,b\n1,2\n", step="featurize")
    return rid


def test_pipeline_dag_has_a_node_per_step_with_status_progress_and_edges(
    api: httpx.Client,
) -> None:
    rid = build_pipeline(api)
    page = Page(get_page(api, f"/runs/{rid}"))

    nodes = {a["data-step"]: a for a in page.having("data-step", tag="g")}
    assert {n: (a["data-status"], a["data-progress"]) for n, a in nodes.items()} == {
        "load": ("finished", "1.0"),
        "clean": ("finished", "1.0"),
        "lookup": ("running", ""),
        "featurize": ("running", "0.5"),
        "train": ("pending", ""),
    }
    assert all(a["class"] == f"node status-{a['data-status']}" for a in nodes.values())
    edges = {(a["data-from"], a["data-to"]) for a in page.having("data-from", tag="path")}
    assert edges == {
        ("load", "clean"),
        ("clean", "featurize"),
        ("featurize", "train"),
        ("lookup", "train"),
    }
    # Layers run left to right: each step sits right of what it depends on.
    x = {n: float(re.findall(r"[\d.]+", a["transform"])[0]) for n, a in nodes.items()}
    assert x["load"] < x["clean"] < x["featurize"] < x["train"]
    assert x["lookup"] < x["train"]
    assert len(page.having("class", tag="rect")) > 0
    bars = [a for a in page.having("class", tag="rect") if a["class"] == "bar"]
    assert [float(b["width"]) for b in bars] == [85.0]  # half of the bar, only where known


def test_step_list_shows_timing_message_and_artifacts(api: httpx.Client) -> None:
    rid = build_pipeline(api)
    text = get_page(api, f"/runs/{rid}")
    item = re.search(r'<li class="step" id="step-featurize".*?</li>\s*<li', text, re.S)
    assert item
    block = item.group(0)
    assert "batch 5 of 10" in block
    assert 'aria-valuenow="50"' in block
    assert "started" in block
    assert f'href="/runs/{rid}/artifacts/features.csv"' in block
    assert "#step-featurize" in text  # DAG nodes link to their step


def test_pipeline_fragment_polls_while_running_and_stops_when_the_run_ends(
    api: httpx.Client,
) -> None:
    rid = build_pipeline(api)
    running = Page(get_page(api, f"/runs/{rid}/pipeline"))
    section = running.by_id("pipeline")
    assert section["hx-get"] == f"/runs/{rid}/pipeline"
    assert section["hx-trigger"] == "every 2s"
    assert section["hx-swap"] == "outerHTML"

    end_run(api, rid, "failed", error="out of memory")
    ended_text = get_page(api, f"/runs/{rid}/pipeline")
    ended = Page(ended_text)
    section = ended.by_id("pipeline")
    assert "hx-get" not in section
    assert "hx-trigger" not in section
    statuses = {a["data-step"]: a["data-status"] for a in ended.having("data-step", tag="g")}
    assert statuses == {
        "load": "finished",
        "clean": "finished",
        "lookup": "failed",
        "featurize": "failed",
        "train": "skipped",
    }
    # The header's status and error follow along out of band.
    state = ended.by_id("run-state")
    assert state["hx-swap-oob"] == "true"
    assert state["data-run-status"] == "failed"
    assert "out of memory" in ended_text
    assert ended.by_id("run-details")["hx-swap-oob"] == "true"
    assert "so far" not in ended_text  # the duration is final
    assert "hx-trigger" not in Page(get_page(api, f"/runs/{rid}")).by_id("pipeline")


def test_a_run_without_steps_says_so(api: httpx.Client) -> None:
    rid = new_run(api)
    text = get_page(api, f"/runs/{rid}")
    assert "This run has no pipeline steps yet." in text
    assert "This run has no artifacts." in text


# --- artifacts


@STORES
def test_artifact_table_lists_every_artifact_with_links(api: httpx.Client) -> None:
    rid = build_pipeline(api)
    upload(api, rid, "reports/summary.txt", b"fine\n", kind="report")
    text = get_page(api, f"/runs/{rid}")
    rows = Page(text).tables["artifacts"]
    assert [r[0] for r in rows[1:]] == ["features.csv", "reports/summary.txt"]
    assert rows[2][1:6] == ["—", "report", "5 B", "text/plain", rows[2][5]]
    assert f'href="{API}/runs/{rid}/artifacts/reports/summary.txt" download' in text
    download = api.get(f"{API}/runs/{rid}/artifacts/reports/summary.txt")
    assert download.content == b"fine\n"


@STORES
def test_text_preview_shows_small_files_whole(api: httpx.Client) -> None:
    rid = new_run(api)
    body = "line one\nzwei — drei ünd <b>vier</b>\n"
    upload(api, rid, "notes.txt", body.encode())
    text, page = preview(api, rid, "notes.txt")
    assert page.by_id("preview")["data-preview-kind"] == "text"
    assert preview_text(text) == body
    assert "data-partial" not in text
    assert "<b>vier</b>" not in text


@STORES
def test_text_preview_of_a_large_file_says_it_shows_only_part(api: httpx.Client) -> None:
    rid = new_run(api)
    body = "".join(f"line {i:06d} é\n" for i in range(100_000)).encode()
    upload(api, rid, "train.log", body)
    text, _ = preview(api, rid, "train.log")
    shown = preview_text(text)
    assert body.startswith(shown.encode())
    assert 64 * 1024 - 4 < len(shown.encode()) <= 64 * 1024  # a split character is left out
    assert "Showing only the first 64.0 KB of 1.4 MB" in text


@STORES
def test_json_preview_is_pretty_printed(api: httpx.Client) -> None:
    rid = new_run(api)
    value = {"auc": 0.93, "labels": ["a", "<b>"], "nested": {"k": [1, 2, None]}}
    upload(api, rid, "eval/result.json", json.dumps(value).encode(), "application/json")
    text, page = preview(api, rid, "eval/result.json")
    assert page.by_id("preview")["data-preview-kind"] == "json"
    shown = preview_text(text)
    assert json.loads(shown) == value
    assert '\n  "auc": 0.93' in shown


@STORES
def test_invalid_json_is_shown_as_text_with_the_reason(api: httpx.Client) -> None:
    rid = new_run(api)
    upload(api, rid, "broken.json", b'{"a": 1,', "application/json")
    text, _ = preview(api, rid, "broken.json")
    assert "This is not valid JSON" in text
    assert preview_text(text) == '{"a": 1,'


@STORES
def test_csv_preview_shows_the_first_rows_as_written(api: httpx.Client) -> None:
    rid = new_run(api)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "name", "score", "note"])
    for i in range(150):
        writer.writerow([i, f"name, {i}", f"{i / 8:.2f}", 'say "hi"' if i % 7 else ""])
    body = out.getvalue().encode()
    upload(api, rid, "data/table.csv", body)

    text, page = preview(api, rid, "data/table.csv")
    expected = list(csv.reader(io.StringIO(body.decode())))
    shown = page.tables["preview-table"]
    assert shown[0][1:] == expected[0]
    assert [row[1:] for row in shown[1:]] == expected[1:101]
    counts = page.having("data-rows-shown")[0]
    assert (counts["data-rows-shown"], counts["data-total-rows"]) == ("100", "150")
    assert "showing the first 100 of 150 rows" in text


@STORES
def test_csv_without_a_header_keeps_its_first_row(api: httpx.Client) -> None:
    rid = new_run(api)
    upload(api, rid, "raw.csv", b"1.5,2\n3,4\n")
    text, page = preview(api, rid, "raw.csv")
    rows = page.tables["preview-table"]
    assert rows == [["#", "column 1", "column 2"], ["1", "1.5", "2"], ["2", "3", "4"]]
    # Columns of numbers are right-aligned, and CSV numbers stay exactly as written.
    assert len(re.findall(r'<td class="num">', text)) == 4


@STORES
def test_parquet_preview_shows_head_row_count_and_schema(api: httpx.Client, tmp_path: Path) -> None:
    rid = new_run(api)
    table = pa.table(
        {
            "id": pa.array(range(250), pa.int64()),
            "score": pa.array([i / 3 for i in range(250)], pa.float64()),
            "label": pa.array([None if i % 5 == 0 else f"<b>{i}</b>" for i in range(250)]),
        }
    )
    file = tmp_path / "t.parquet"
    pq.write_table(table, file)
    upload(api, rid, "features.parquet", file.read_bytes())

    text, page = preview(api, rid, "features.parquet")
    expected = pq.read_table(file).slice(0, 100).to_pylist()
    shown = page.tables["preview-table"]
    assert shown[0][1:] == ["id", "score", "label"]
    assert [(row[1], row[3]) for row in shown[1:]] == [
        (str(r["id"]), "null" if r["label"] is None else r["label"]) for r in expected
    ]
    # Floats read as people write them: 0.333333 for 1/3, not 0.3333333333333333, within
    # the last digit shown, and the page says how they were rounded.
    scores = [row[2] for row in shown[1:]]
    assert scores[:4] == ["0", "0.333333", "0.666667", "1"]
    for cell, r in zip(scores, expected, strict=True):
        assert len(cell.replace(".", "").lstrip("0")) <= 6
        assert float(cell) == pytest.approx(r["score"], rel=1e-5, abs=1e-12)
    assert "decimals shown to 6 significant digits" in text
    # Number columns are right-aligned, text columns are not.
    first_row = re.search(r'<table class="preview-table">.*?<tbody>\s*<tr>(.*?)</tr>', text, re.S)
    assert first_row
    cells = re.findall(r"<td([^>]*)>", first_row.group(1))
    aligned = [bool(re.search(r'class="[^"]*\bnum\b', c)) for c in cells]
    assert aligned == [True, True, True, False]  # the row number, id, score; not the label
    assert "showing the first 100 of 250 rows" in text
    assert page.tables["schema-table"][1:] == [
        ["id", "int64"],
        ["score", "double"],
        ["label", "string"],
    ]
    assert "<b>1</b>" not in text


@STORES
def test_images_are_shown_with_img_even_svg(api: httpx.Client) -> None:
    rid = new_run(api)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    upload(api, rid, "plots/roc.png", png, "image/png")
    upload(api, rid, "plots/evil.svg", svg, "image/svg+xml")
    for path in ("plots/roc.png", "plots/evil.svg"):
        text, page = preview(api, rid, path)
        assert page.by_id("preview")["data-preview-kind"] == "image"
        images = page.having("src", tag="img")
        assert [i["src"] for i in images] == [f"{API}/runs/{rid}/artifacts/{path}"]
        assert "<svg xmlns" not in text
        assert "alert(1)" not in text
        assert api.get(images[0]["src"]).content in (png, svg)


@STORES
def test_other_files_have_no_preview_but_a_download(api: httpx.Client) -> None:
    rid = new_run(api)
    upload(api, rid, "model.pkl", b"\x80\x04K\x01.", "application/octet-stream")
    text, page = preview(api, rid, "model.pkl")
    assert "No preview for application/octet-stream." in text
    assert page.having("data-download")[0]["href"] == f"{API}/runs/{rid}/artifacts/model.pkl"


@STORES
def test_missing_artifact_is_a_friendly_404(api: httpx.Client, app: FastAPI) -> None:
    rid = new_run(api)
    text = get_page(api, f"/runs/{rid}/artifacts/nope.txt", status=404)
    assert f"run {rid} has no artifact &#39;nope.txt&#39;" in text
    assert "<h1>Not found</h1>" in text

    upload(api, rid, "gone.txt", b"soon gone")
    delete_stored(app, rid, "gone.txt")
    text = get_page(api, f"/runs/{rid}/artifacts/gone.txt", status=404)
    assert "has no stored content" in text


# --- escaping


@pytest.mark.parametrize("payload", HOSTILE)
def test_user_text_is_escaped_everywhere(api: httpx.Client, payload: str) -> None:
    rid = new_run(
        api,
        "proj " + payload,
        name="run " + payload,
        params={payload: payload},
        tags={"t" + payload: payload},
        source=payload,
    )
    log_metrics(api, rid, [{"key": "m" + payload, "value": 1.0}])
    step = "s" + payload.replace("/", "|")  # the steps API takes no "/" in a name
    put_step(api, rid, step, status="running", message=payload, progress=0.2)
    put_step(api, rid, "next" + payload.replace("/", "|"), depends_on=[step])
    path = "dir/" + payload + ".txt"
    upload(api, rid, path, payload.encode(), "text/plain", step=step)

    run_page = get_page(api, f"/runs/{rid}")
    fragment = get_page(api, f"/runs/{rid}/pipeline")
    artifact_page, _ = preview(api, rid, path)
    for text in (run_page, fragment, artifact_page):
        assert_escaped(text, payload)
        assert "<script>alert" not in text
        assert "<img src=x" not in text
    end_run(api, rid, "failed", error=payload)
    assert_escaped(get_page(api, f"/runs/{rid}"), payload)
    assert_escaped(get_page(api, f"/runs/{quote(payload, safe='')}", status=404), payload)
