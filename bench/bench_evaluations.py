"""Evaluation figures.

    .venv/bin/python -m bench.bench_evaluations [--rows 10000000]

1. The binary analyzer on N predictions (ties included): wall time, its ratio to one
   ``numpy.argsort`` of the same scores (the floor: one sort), and the process's peak memory,
   each measured in a fresh subprocess so one figure cannot inflate another.
2. A threshold query over HTTP against `modelyard serve` (an evaluation of N rows), p50/p95.
3. The comparison page of 4 evaluations (100,000 rows each), server-side, p50/p95.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

from bench.common import server, summary

ARROW = "application/vnd.apache.arrow.stream"


def emit(figure: str, **values: object) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def predictions(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype(np.int8)
    s = np.round(np.clip(0.3 * y + rng.random(rows) * 0.7, 0, 1), 6)  # many ties
    return y, s


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(what: str, rows: int) -> None:
    """One measurement in this (fresh) process; prints seconds and peak memory."""
    y, s = predictions(rows)
    before = _peak_mb()
    t0 = time.perf_counter()
    if what == "argsort":
        np.argsort(s)
    else:
        from modelyard.analyzers.base import prediction_table
        from modelyard.analyzers.binary import evaluate_binary

        w = np.random.default_rng(1).exponential(size=rows) if what == "weighted" else None
        evaluate_binary(prediction_table(y, s, weights=w))
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "data_mb": before}))


def measure(what: str, rows: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_evaluations", "--child", what, "--rows", str(rows)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def analyzer_figures(rows: int, reps: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"argsort": [], "binary": [], "weighted": []}
    for _ in range(reps):  # interleaved, so both see the same machine load
        for what in runs:
            runs[what].append(measure(what, rows))
    best = {w: min(r["seconds"] for r in rs) for w, rs in runs.items()}
    emit(
        "binary_analyzer",
        rows=rows,
        seconds_best=round(best["binary"], 3),
        seconds_all=[round(r["seconds"], 3) for r in runs["binary"]],
        argsort_seconds_best=round(best["argsort"], 3),
        ratio_to_argsort=round(best["binary"] / best["argsort"], 2),
        peak_rss_mb=round(max(r["peak_mb"] for r in runs["binary"]), 1),
        rss_with_data_only_mb=round(runs["binary"][0]["data_mb"], 1),
    )
    emit(
        "binary_analyzer_with_sample_weights",
        rows=rows,
        seconds_best=round(best["weighted"], 3),
        ratio_to_argsort=round(best["weighted"] / best["argsort"], 2),
        peak_rss_mb=round(max(r["peak_mb"] for r in runs["weighted"]), 1),
    )


def _arrow(y: np.ndarray, s: np.ndarray) -> bytes:
    table = pa.table({"y_true": y, "y_score": s})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def served_figures(rows: int, reps: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(Path(tmp) / "data") as url,
        httpx.Client(base_url=url, timeout=600) as http,
    ):
        if True:
            run_id = http.post("/api/v1/runs", json={"project": "eval"}).json()["run_id"]
            y, s = predictions(rows)
            t0 = time.perf_counter()
            r = http.post(
                f"/api/v1/runs/{run_id}/evaluations", content=_arrow(y, s),
                headers={"Content-Type": ARROW}, params={"dataset": "holdout"},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            emit("evaluate_over_http_stored", rows=rows, seconds=round(time.perf_counter() - t0, 2))
            big = r.json()["id"]
            rng = np.random.default_rng(1)
            lat = []
            for _ in range(reps):
                t = float(rng.random())
                t0 = time.perf_counter()
                q = http.get(f"/api/v1/evaluations/{big}/thresholds", params={"t": t})
                lat.append(time.perf_counter() - t0)
                assert q.status_code == 200
            emit("threshold_query_http", rows=rows, **summary(lat))
            ids = []
            for seed in range(4):
                y, s = predictions(100_000, seed)
                r = http.post(
                    f"/api/v1/runs/{run_id}/evaluations", content=_arrow(y, s),
                    headers={"Content-Type": ARROW}, params={"dataset": "holdout"},
                )  # fmt: skip
                ids.append(r.json()["id"])
            path = "/evaluations/compare?" + "&".join(f"e={i}" for i in ids)
            http.get(path)
            lat = []
            for _ in range(reps):
                t0 = time.perf_counter()
                page = http.get(path, headers={"Accept-Encoding": "gzip"})
                lat.append(time.perf_counter() - t0)
                assert page.status_code == 200, page.text[:300]
            emit(
                "compare_page_4_models", rows_each=100_000, bytes=len(page.content), **summary(lat)
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--analyzer-only", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    analyzer_figures(args.rows, args.reps)
    if not args.analyzer_only:
        served_figures(args.rows, 40)


if __name__ == "__main__":
    main()
