"""Portal pages over HTTP against `modelyard serve` on SQLite.

    .venv/bin/python -m bench.bench_pages [--runs 100000] [--metrics 50] [--points 100000]

Figures: the project page of a project with 100,000 runs (10 params and 10 metrics each) and
a run page, server-side, p50/p95; a run with 50 metrics of 100,000 points each: the page and
all its charts' data fetched six at a time as a browser does; in Chromium (when installed),
the time until the charts on screen are drawn and the page weight without Plotly.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa

from bench.bench_search import seed
from bench.common import server, summary

ARROW = "application/vnd.apache.arrow.stream"
GZIP = {"Accept-Encoding": "gzip"}


def emit(figure: str, **values: Any) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def timed_get(http: httpx.Client, path: str, reps: int) -> tuple[dict[str, float], httpx.Response]:
    http.get(path, headers=GZIP)  # warm
    lat = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = http.get(path, headers=GZIP)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return summary(lat), r


def big_run(http: httpx.Client, metrics: int, points: int) -> str:
    """A run with ``metrics`` metrics of ``points`` points each, sent as Arrow batches."""
    run_id = str(
        http.post("/api/v1/runs", json={"project": "long", "name": "long-histories"}).json()[
            "run_id"
        ]
    )
    rng = np.random.default_rng(1)
    steps = np.arange(points, dtype=np.int64)
    for m in range(metrics):
        values = np.cumsum(rng.normal(size=points))
        table = pa.table({"key": [f"metric_{m:02d}"] * points, "value": values, "step": steps})
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        r = http.post(
            f"/api/v1/runs/{run_id}/batch", content=sink.getvalue(), headers={"Content-Type": ARROW}
        )
        assert r.status_code == 204, r.text
    return run_id


def project_pages(http: httpx.Client, runs: int, reps: int) -> None:
    flt = quote("metrics.m0 > 0.5 and params.p1 = 'v1'")
    every = "&".join(f"col=metrics.m{k}&col=params.p{k}" for k in range(10))
    pages = {
        "default": "/projects/big",
        "filter_and_order": f"/projects/big?filter={flt}&order={quote('metrics.m1 desc')}",
        "all_20_columns_100_rows": f"/projects/big?size=100&{every}",
        "ordered_by_param": f"/projects/big?order={quote('params.p3 asc')}",
    }
    for name, path in pages.items():
        stats, r = timed_get(http, path, reps)
        emit(f"project_page_{name}", runs=runs, rows=r.text.count("data-run-id="), **stats)
    _, first = timed_get(http, pages["filter_and_order"], 1)
    nxt = re.search(r'<a href="([^"]+)" rel="next"', first.text)
    assert nxt
    stats, _ = timed_get(http, "/projects/big" + nxt.group(1).replace("&amp;", "&"), reps)
    emit("project_page_filter_and_order_page_2", runs=runs, **stats)


def list_pages(http: httpx.Client, runs: int, reps: int) -> None:
    """Home and the projects list, whose row for the big project shows its latest run and best
    headline metric: aggregates over all of its runs."""
    for name, path in {"home": "/", "projects_list": "/projects"}.items():
        stats, _ = timed_get(http, path, reps)
        emit(f"{name}_page", runs=runs, **stats)


def run_pages(http: httpx.Client, run_id: str, big: str, reps: int) -> None:
    stats, r = timed_get(http, f"/runs/{run_id}", reps)
    emit("run_page_10_params_10_metrics", bytes=len(r.content), **stats)
    stats, r = timed_get(http, f"/runs/{big}", reps)
    emit("run_page_50_long_metrics_html", bytes=len(r.content), **stats)
    srcs = [s.replace("&amp;", "&") for s in re.findall(r'data-chart-src="([^"]+)"', r.text)]
    totals, transfer = [], 0
    for _ in range(5):
        t0 = time.perf_counter()
        page = http.get(f"/runs/{big}", headers=GZIP)
        with ThreadPoolExecutor(6) as pool:  # a browser's connections per host
            answers = list(pool.map(lambda s: http.get(s, headers=GZIP), srcs))
        totals.append(time.perf_counter() - t0)
        assert all(a.status_code == 200 for a in answers)
        transfer = len(page.content) + sum(int(a.headers.get("content-length", 0)) for a in answers)
    emit(
        "run_page_50x100k_metrics_page_and_all_charts",
        charts=len(srcs),
        gzip_bytes_all_charts=transfer,
        **summary(totals),
    )


def in_chromium(base: str, big: str) -> None:
    """Open the big run page in Chromium: time until the charts on screen are drawn, and
    what it transfers apart from Plotly."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return
    if not Path("/usr/bin/chromium").exists():
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(base + "/")  # Plotly and the other assets into the cache, as for a returning user
        page.goto(base + f"/runs/{big}")
        page.wait_for_load_state("networkidle")
        sizes: list[tuple[str, int, int]] = []

        def record(resp: Any) -> None:
            encoded = int(resp.headers.get("content-length") or 0)
            sizes.append((resp.url, len(resp.body()), encoded))

        page.on("response", record)
        times, ready = [], []
        for _ in range(10):
            sizes.clear()
            t0 = time.perf_counter()
            page.goto(base + f"/runs/{big}")
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-chart-src]')]
                     .filter(el => { const r = el.getBoundingClientRect();
                                     return r.top < innerHeight && r.bottom > 0; })
                     .every(el => el.dataset.loaded === '1')""",
                timeout=30_000,
            )
            times.append(time.perf_counter() - t0)
            ready.append(
                page.evaluate(
                    "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                / 1000
            )
            page.wait_for_load_state("networkidle")
        own = [s for s in sizes if "plotly.min.js" not in s[0]]
        emit("chromium_run_page_dom_ready", **summary(ready))
        emit("chromium_run_page_50x100k_charts_on_screen_drawn", **summary(times))
        emit(
            "chromium_run_page_weight_without_plotly",
            requests=len(own),
            decoded_bytes=sum(d for _, d, _ in own),
            transferred_bytes=sum(e for _, _, e in own),
        )
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        seed(data, args.runs)
        emit("seed_seconds", runs=args.runs, value=round(time.perf_counter() - t0, 1))
        with server(data) as url, httpx.Client(base_url=url, timeout=120) as http:
            big = big_run(http, args.metrics, args.points)
            some_run = http.post(
                "/api/v1/runs/search", json={"project": "big", "page_size": 1}
            ).json()["runs"][0]["run_id"]
            project_pages(http, args.runs, args.reps)
            list_pages(http, args.runs, args.reps)
            run_pages(http, some_run, big, args.reps)
            in_chromium(url, big)


if __name__ == "__main__":
    main()
