"""The portal's home, projects, runs table, comparison, search, charts and static assets."""

from __future__ import annotations

import hashlib
import html
import re
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from modelyard.services.series import reduce_indices
from tests.helpers import API, get_page, new_run

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def text_of(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows_of(doc: str, table_id: str) -> list[str]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', doc, re.S)
    assert body, f"no table {table_id}"
    return re.findall(r"<tr.*?</tr>", body.group(1), re.S)


def run_ids_in_table(doc: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([0-9a-f]{32})"', doc)


def log(api: httpx.Client, run_id: str, **body: object) -> None:
    resp = api.post(f"{API}/runs/{run_id}/batch", json=body)
    assert resp.status_code == 204, resp.text


def finish(api: httpx.Client, run_id: str, status: str = "finished") -> None:
    assert api.patch(f"{API}/runs/{run_id}", json={"status": status}).status_code == 200


# --- home
def test_home_shows_my_runs_running_pipelines_projects_and_activity(api: httpx.Client) -> None:
    done = new_run(api, "vision", name="resnet-1")
    finish(api, done)
    live = new_run(api, "nlp", name="bert-live")
    assert api.put(f"{API}/runs/{live}/steps/ingest", json={"status": "finished"}).status_code < 300
    resp = api.put(
        f"{API}/runs/{live}/steps/train",
        json={"depends_on": ["ingest"], "status": "running", "progress": 0.5, "message": "epoch 5"},
    )
    assert resp.status_code < 300, resp.text
    doc = get_page(api, "/")
    running = re.search(r'<section class="panel" id="running-panel">(.*?)</section>', doc, re.S)
    assert running
    panel = running.group(0)
    assert 'hx-trigger="every 3s"' in panel
    assert "bert-live" in panel
    assert "resnet-1" not in panel
    assert "epoch 5" in panel
    # one of two steps done, the other half way: three quarters of the pipeline
    assert 'aria-valuenow="75"' in panel
    assert "1/2 steps" in text_of(panel)
    for name in ("resnet-1", "bert-live", "vision", "nlp"):
        assert name in doc
    assert "run_state" in doc  # the change log names what changed
    finish(api, live)
    fragment = get_page(api, "/fragments/running")
    assert "hx-trigger" not in fragment
    assert "Nothing is running." in fragment


def test_empty_home_says_how_to_start(api: httpx.Client) -> None:
    doc = get_page(api, "/")
    assert "You have not started any runs yet" in doc
    assert "No projects yet" in doc
    assert "Nothing is running." in doc


# --- projects and the runs table
@pytest.fixture
def sweep(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """30 runs with an auc, a loss and a model param; returns them by id."""
    rng = np.random.default_rng(7)
    runs: dict[str, dict[str, Any]] = {}
    for i in range(30):
        model = "gbm" if i % 3 else "lr"
        auc = round(float(rng.uniform(0.4, 1.0)), 6)
        run_id = new_run(api, "sweep", name=f"run-{i:02d}", params={"model": model, "i": str(i)})
        log(api, run_id, metrics=[{"key": "auc", "value": auc}, {"key": "loss", "value": 1 - auc}])
        runs[run_id] = {"model": model, "auc": auc, "name": f"run-{i:02d}"}
    return runs


def test_runs_table_filters_and_sorts(api: httpx.Client, sweep: dict[str, dict[str, Any]]) -> None:
    flt = "metrics.auc > 0.6 and params.model = 'gbm'"
    matching = [r for r, v in sweep.items() if v["auc"] > 0.6 and v["model"] == "gbm"]
    by_auc = sorted(matching, key=lambda r: -sweep[r]["auc"])
    assert 10 < len(by_auc) <= 25
    doc = get_page(api, f"/projects/sweep?filter={quote(flt)}&order={quote('metrics.auc desc')}")
    assert run_ids_in_table(doc) == by_auc
    # clicking the sorted header flips the order
    header = re.search(r'<a href="([^"]+)" class="sorted">auc', doc)
    assert header
    assert (
        run_ids_in_table(get_page(api, "/projects/sweep" + html.unescape(header.group(1))))
        == (by_auc[::-1])
    )
    doc = get_page(api, f"/projects/sweep?filter={quote(flt)}&order={quote('name asc')}")
    assert [sweep[r]["name"] for r in run_ids_in_table(doc)] == sorted(
        sweep[r]["name"] for r in matching
    )


def test_runs_table_pages_forward_and_back(api: httpx.Client) -> None:
    for i in range(60):
        new_run(api, "many", name=f"r{i:02d}")
    doc = get_page(api, "/projects/many?order=name+asc&size=25")
    pages = [run_ids_in_table(doc)]
    assert "Page 1" in doc
    while (nxt := re.search(r'<a href="([^"]+)" rel="next"', doc)) is not None:
        doc = get_page(api, "/projects/many" + html.unescape(nxt.group(1)))
        pages.append(run_ids_in_table(doc))
    assert [len(p) for p in pages] == [25, 25, 10]
    assert "Page 3" in doc
    assert len({r for p in pages for r in p}) == 60
    prev = re.search(r'<a href="([^"]+)" rel="prev"', doc)
    assert prev
    back = get_page(api, "/projects/many" + html.unescape(prev.group(1)))
    assert run_ids_in_table(back) == pages[1]
    assert "Page 2" in back


def test_column_chooser_shows_the_chosen_keys(
    api: httpx.Client, sweep: dict[str, dict[str, Any]]
) -> None:
    default = get_page(api, "/projects/sweep")
    headers = re.findall(r'<th class="[^"]*" title="([^"]+)"', default)
    assert headers == ["metrics.auc", "metrics.loss", "params.i", "params.model"]
    chosen = get_page(api, "/projects/sweep?col=params.model&col=metrics.loss")
    assert re.findall(r'<th class="[^"]*" title="([^"]+)"', chosen) == [
        "params.model",
        "metrics.loss",
    ]
    assert re.search(r'value="params.model"\s+checked', chosen)
    assert not re.search(r'value="params.i"\s+checked', chosen)
    # each cell shows the run's own value
    for row in rows_of(chosen, "runs-table"):
        run_id = re.search(r'data-run-id="(\w+)"', row).group(1)
        assert f"<td>{sweep[run_id]['model']}</td>" in row


def test_a_bad_filter_explains_itself(api: httpx.Client, sweep: dict[str, dict[str, Any]]) -> None:
    doc = get_page(api, f"/projects/sweep?filter={quote('metrics.auc >> 1')}", status=400)
    notice = re.search(r"<div class=\"notice notice-error\".*?</div>", doc, re.S)
    assert notice
    assert "That filter did not work" in notice.group(0)
    assert "position" in notice.group(0)
    assert 'value="metrics.auc &gt;&gt; 1"' in doc  # the filter stays for the user to fix


def test_unknown_pages_are_friendly(api: httpx.Client) -> None:
    for path, reason in (
        ("/nothing-here", "there is no page at /nothing-here"),
        ("/projects/no-such-project", "no-such-project"),
        ("/compare?run=" + "a" * 32 + "&run=" + "b" * 32, "a" * 32),
    ):
        doc = get_page(api, path, status=404)
        assert reason in text_of(doc)
        assert "Go to the home page" in doc


def test_a_missing_page_offers_a_search_and_recent_runs(api: httpx.Client) -> None:
    ids = [new_run(api, "vision", name=f"resnet-{i}") for i in range(8)]
    doc = get_page(api, "/projects/visoin", status=404)
    # A search box holding what the address named, to look for it.
    assert re.search(r'<form class="error-search" action="/search".*?value="visoin"', doc, re.S)
    # The latest runs, newest first, each a link to its page.
    listed = re.findall(r'<a href="/runs/([0-9a-f]{32})">resnet-(\d)</a>', doc)
    assert [name for _, name in listed] == ["7", "6", "5", "4", "3", "2"]
    assert [run_id for run_id, _ in listed] == ids[::-1][:6]
    # A hostile address is escaped in the search box, never run.
    doc = get_page(api, "/projects/" + quote('"><script>x()</script>'), status=404)
    assert "<script>x()" not in doc


# --- compare
def test_compare_shows_deltas_and_the_better_run(api: httpx.Client) -> None:
    values = [(0.91, 0.25, "0.1"), (0.95, 0.31, "0.2"), (0.88, 0.22, "0.1")]
    ids = []
    for i, (auc, loss, lr) in enumerate(values):
        run_id = new_run(api, "cmp", name=f"m{i}", params={"lr": lr, "depth": "6"})
        loss_history = [{"key": "loss", "value": loss + 0.1 * s, "step": 1 - s} for s in (1, 0)]
        log(api, run_id, metrics=[{"key": "auc", "value": auc}, *loss_history])
        assert api.patch(f"{API}/runs/{run_id}", json={"status": "finished"}).status_code == 200
        ids.append(run_id)
    doc = get_page(api, "/compare?" + "&".join(f"run={r}" for r in ids))
    rows = {
        re.search(r'data-metric="(\w+)"', r).group(1): r for r in rows_of(doc, "compare-metrics")
    }
    auc_cells = re.findall(r"<td.*?</td>", rows["auc"], re.S)
    assert "data-best" in auc_cells[1]  # the highest auc
    assert "(+0.04)" in text_of(auc_cells[1])
    assert "(-0.03)" in text_of(auc_cells[2])
    loss_cells = re.findall(r"<td.*?</td>", rows["loss"], re.S)
    assert "data-best" in loss_cells[2]  # the lowest loss
    assert sum("data-best" in c for c in auc_cells + loss_cells) == 2
    params = {re.search(r"<th>(\w+)</th>", r).group(1): r for r in rows_of(doc, "compare-params")}
    assert "data-differs" in params["lr"]
    assert "data-differs" not in params["depth"]
    only = get_page(api, "/compare?" + "&".join(f"run={r}" for r in ids) + "&only_diff=true")
    assert [re.search(r"<th>(\w+)</th>", r).group(1) for r in rows_of(only, "compare-params")] == [
        "lr"
    ]
    # one overlaid chart per metric with a history, fetched with every run; a metric logged
    # once is a value in the table, not a chart
    srcs = re.findall(r'data-chart-src="([^"]+)"', doc)
    assert len(srcs) == 1
    assert "key=loss" in srcs[0]
    assert 'id="values-only"' in doc
    figure = api.get(html.unescape(srcs[0])).json()
    assert sorted(t["name"] for t in figure["data"]) == ["m0", "m1", "m2"]


def test_a_running_runs_lead_is_best_so_far_never_plain_best(api: httpx.Client) -> None:
    ids = []
    for i, (loss, status) in enumerate([(0.3, "finished"), (0.4, "finished"), (0.2, None)]):
        run_id = new_run(api, "cmp-live", name=f"r{i}")
        log(api, run_id, metrics=[{"key": "loss", "value": loss}])
        if status:
            assert api.patch(f"{API}/runs/{run_id}", json={"status": status}).status_code == 200
        ids.append(run_id)
    doc = get_page(api, "/compare?" + "&".join(f"run={r}" for r in ids))
    (row,) = rows_of(doc, "compare-metrics")
    cells = re.findall(r"<td.*?</td>", row, re.S)
    # the best of the ended runs is r0's 0.3; the running r2 leads with a partial 0.2
    assert ["data-best" in c for c in cells] == [True, False, False]
    assert ["data-lead-so-far" in c for c in cells] == [False, False, True]
    assert "best so far (running)" in text_of(cells[2])
    # once it has ended, its value is the best
    assert api.patch(f"{API}/runs/{ids[2]}", json={"status": "finished"}).status_code == 200
    doc = get_page(api, "/compare?" + "&".join(f"run={r}" for r in ids))
    cells = re.findall(r"<td.*?</td>", rows_of(doc, "compare-metrics")[0], re.S)
    assert ["data-best" in c for c in cells] == [False, False, True]
    assert "best so far" not in doc


def test_compare_needs_two_runs(api: httpx.Client) -> None:
    run_id = new_run(api)
    doc = get_page(api, f"/compare?run={run_id}", status=400)
    assert "pick at least two runs" in doc


def test_compare_shows_runs_in_the_order_picked_and_names_an_unknown_one(
    api: httpx.Client,
) -> None:
    first, second = new_run(api, name="zeta"), new_run(api, name="alpha")
    doc = get_page(api, f"/compare?run={first}&run={second}")
    assert doc.index("zeta") < doc.index("alpha")
    missing = "0" * 32
    doc = get_page(api, f"/compare?run={first}&run={missing}", status=404)
    assert f"run &#39;{missing}&#39; does not exist" in doc


def test_projects_list_their_latest_run(api: httpx.Client) -> None:
    new_run(api, "vision", start_time=1_700_000_000_000)
    new_run(api, "vision", start_time=1_700_000_600_000)
    assert api.post(f"{API}/projects", json={"name": "empty"}).status_code == 201
    listed = {p["name"]: p["last_run_at"] for p in api.get(f"{API}/projects").json()}
    assert listed == {"vision": 1_700_000_600_000, "empty": None}
    doc = get_page(api, "/projects")
    rows = {text_of(r).split(" ")[0]: r for r in re.findall(r"<tr>.*?</tr>", doc, re.S)}
    assert "2023-11-14 22:23" in rows["vision"]  # the later start, in the title of its age
    assert "none yet" in text_of(rows["empty"])


# --- search
def test_search_finds_projects_runs_and_entities_or_runs_a_filter(
    api: httpx.Client, sweep: dict[str, dict[str, Any]]
) -> None:
    doc = get_page(api, "/search?q=run-0")
    found = {sweep[r]["name"] for r in re.findall(r'href="/runs/([0-9a-f]{32})"', doc)}
    assert found == {f"run-0{i}" for i in range(10)}
    doc = get_page(api, "/search?q=" + quote("metrics.auc > 0.9"))
    found_ids = set(re.findall(r'href="/runs/([0-9a-f]{32})"', doc))
    assert found_ids == {r for r, v in sweep.items() if v["auc"] > 0.9}
    assert "sweep" in get_page(api, "/search?q=SWE")
    bad = get_page(api, "/search?q=" + quote("metrics.auc >"))
    assert "That filter did not work" in bad
    run_id = next(iter(sweep))
    assert api.get(f"/search?q={run_id}").headers["location"] == f"/runs/{run_id}"
    urn = f"urn:modelyard:run:{run_id}"
    assert api.get(f"/search?q={quote(urn)}").headers["location"] == f"/runs/{run_id}"


def test_a_partial_run_id_finds_the_run(api: httpx.Client) -> None:
    shared = [new_run(api, run_id=f"abcd{i:028x}", name=f"twin-{i}") for i in range(3)]
    lone = new_run(api, run_id="ef01" + "2" * 28, name="lone")
    # A prefix one run alone has goes straight to its page.
    assert api.get("/search?q=ef01").headers["location"] == f"/runs/{lone}"
    assert api.get(f"/search?q={shared[2][:31]}").status_code == 200  # all three share it
    # A prefix several runs share lists exactly those, saying how they were found.
    for prefix in ("abcd", shared[0][:31]):
        doc = get_page(api, f"/search?q={prefix}")
        assert set(re.findall(r'href="/runs/([0-9a-f]{32})"', doc)) == set(shared)
        assert f"whose id starts with “{prefix}”" in doc
    # Hex-looking text that no id starts with is still a name search.
    named = new_run(api, name="cafe-beef")
    doc = get_page(api, "/search?q=cafe")
    assert set(re.findall(r'href="/runs/([0-9a-f]{32})"', doc)) == {named}


def test_search_finds_datasets_and_models(api: httpx.Client) -> None:
    run_id = new_run(api)
    body = {"datasets": [{"name": "Churn_2024"}]}
    assert api.post(f"{API}/runs/{run_id}/inputs", json=body).status_code == 200
    assert (
        api.post(
            f"{API}/runs/{run_id}/outputs", json={"models": [{"name": "churn-gbm"}]}
        ).status_code
        == 200
    )
    doc = get_page(api, "/search?q=churn")
    assert "Churn_2024" in doc
    assert "churn-gbm" in doc
    assert "/entities/urn%3Amodelyard%3Adataset%3AChurn_2024" in doc


# --- metric charts
def test_metric_chart_is_reduced_but_keeps_every_extreme(api: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    values = np.cumsum(rng.normal(size=n))
    values[12_345] = 1e6  # a spike the chart must not lose
    values[77_777] = -1e6
    run_id = new_run(api)
    for a in range(0, n, 50_000):
        cols = {
            "key": "loss",
            "value": values[a : a + 50_000].tolist(),
            "step": list(range(a, a + 50_000)),
        }
        log(api, run_id, columns=cols)
    log(api, run_id, metrics=[{"key": "loss", "value": "NaN", "step": n}])
    figure = api.get(f"/charts/metric?key=loss&run={run_id}").json()
    (trace,) = figure["data"]
    assert len(trace["x"]) <= 1500
    assert max(trace["y"]) == 1e6
    assert min(trace["y"]) == -1e6
    assert trace["x"][0] == 0
    assert trace["x"][-1] == n - 1
    note = figure["meta"]["note"]
    assert f"of {n + 1:,} points shown" in note
    assert "1 NaN not drawn" in note
    # zoomed in far enough, every point in the window is drawn exactly
    zoom = api.get(f"/charts/metric?key=loss&run={run_id}&x0=500&x1=900").json()
    (trace,) = zoom["data"]
    assert trace["x"] == list(range(499, 902))
    assert np.allclose(trace["y"], values[499:902], rtol=0, atol=0)


def test_reduce_indices_keeps_each_buckets_first_lowest_and_highest() -> None:
    rng = np.random.default_rng(11)
    for n, points in ((10, 30), (1000, 30), (1001, 31), (99_999, 1500)):
        y = rng.normal(size=n)
        keep = set(reduce_indices(y, points).tolist())
        assert len(keep) <= (n if n <= points else points + 1)
        if n <= points:
            assert keep == set(range(n))
            continue
        buckets = points // 3
        size = -(-n // buckets)
        for start in range(0, n, size):  # the slow way, bucket by bucket
            chunk = y[start : start + size]
            assert start in keep
            assert start + int(np.argmin(chunk)) in keep
            assert start + int(np.argmax(chunk)) in keep
        assert n - 1 in keep


def test_chart_of_an_unlogged_metric_is_a_json_404(api: httpx.Client) -> None:
    run_id = new_run(api)
    resp = api.get(f"/charts/metric?key=nope&run={run_id}")
    assert resp.status_code == 404
    assert "nope" in resp.json()["error"]["message"]


# --- static assets
def test_assets_carry_their_content_hash_and_are_cached_for_good(api: httpx.Client) -> None:
    ids = [new_run(api), new_run(api)]
    for run_id in ids:  # a history to chart, so the page loads Plotly
        log(api, run_id, metrics=[{"key": "loss", "value": 1.0 / s, "step": s} for s in (1, 2)])
    doc = get_page(api, "/compare?run=" + ids[0] + "&run=" + ids[1])
    urls = re.findall(r'(?:href|src)="(/static/[0-9a-f]{12}/[^"]+)"', doc)
    names = {u.rsplit("/", 1)[1] for u in urls}
    assert {"modelyard.css", "modelyard.js", "plotly.min.js", "htmx-2.0.11.min.js"} <= names
    static = Path(str(files("modelyard.web") / "static"))
    plotly = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
    for url in urls:
        digest, name = url.split("/")[2:4]
        source = plotly if name == "plotly.min.js" else static / name
        body = source.read_bytes()
        assert hashlib.sha256(body).hexdigest()[:12] == digest
        resp = api.get(url, headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 200
        assert resp.content == body
        assert "immutable" in resp.headers["cache-control"]
        zipped = api.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.content == body  # httpx decodes; the server sent it compressed
        assert zipped.headers["content-encoding"] == "gzip"
    stale = api.get("/static/000000000000/modelyard.css")
    assert stale.status_code == 307
    assert stale.headers["location"].endswith("/modelyard.css")
    assert "000000000000" not in stale.headers["location"]
    assert api.get("/static/000000000000/nothing.js").status_code == 404


# --- escaping
def test_hostile_names_are_escaped_on_every_page(api: httpx.Client) -> None:
    script, img = HOSTILE
    ids = []
    for evil in HOSTILE:
        run_id = new_run(api, script, name=evil, params={evil: evil}, tags={evil: evil})
        log(api, run_id, metrics=[{"key": evil, "value": 1.0}])
        ids.append(run_id)
    pages = [
        "/",
        "/projects",
        f"/projects/{quote(script, safe='')}",
        f"/projects/{quote(script, safe='')}?col=" + quote("params.`" + img + "`"),
        f"/projects/{quote(script, safe='')}?filter=" + quote(img),
        "/compare?" + "&".join(f"run={r}" for r in ids),
        "/search?q=" + quote(script),
        "/search?q=" + quote(img),
    ]
    for path in pages:
        resp = api.get(path)
        assert resp.status_code in (200, 400), path
        for evil in HOSTILE:
            assert evil not in resp.text, path
        assert "&lt;script&gt;" in resp.text or "&#34;&gt;&lt;img" in resp.text, path


def test_a_failing_htmx_swap_gets_the_reason_in_place(api: httpx.Client) -> None:
    resp = api.get("/projects/nope", headers={"HX-Request": "true"})
    assert resp.status_code == 200  # htmx swaps only successful responses
    assert 'role="alert"' in resp.text
    assert "nope" in resp.text
    assert "<html" not in resp.text
