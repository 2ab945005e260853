"""Tracking over HTTP against `modelyard serve` on SQLite: metric ingestion, small-request
latency and metric-history reads.

    .venv/bin/python bench/bench_tracking.py [--points 1000000] [--small 2000]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from bench.common import arrow_batches, server, summary
from modelyard import Client


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def json_bodies(points: int, batch: int) -> list[bytes]:
    """Columnar JSON batches of one metric."""
    rng = np.random.default_rng(0)
    bodies = []
    for start in range(0, points, batch):
        n = min(batch, points - start)
        cols = {
            "key": "loss",
            "value": rng.random(n).tolist(),
            "step": list(range(start, start + n)),
            "timestamp": [1_700_000_000_000 + start] * n,
        }
        bodies.append(json.dumps({"columns": cols}).encode())
    return bodies


def arrow_bodies(points: int, batch: int) -> list[bytes]:
    """The same batches as Arrow IPC streams."""
    return list(arrow_batches(points, batch))


def post_all(http: httpx.Client, run_id: str, bodies: list[bytes], content_type: str) -> float:
    """Send prepared batches one after another; returns seconds."""
    headers = {"content-type": content_type}
    t0 = time.perf_counter()
    for body in bodies:
        r = http.post(f"/api/v1/runs/{run_id}/batch", content=body, headers=headers)
        assert r.status_code == 204, r.text
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--sdk-points", type=int, default=200_000)
    ap.add_argument("--small", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data") as url:
        client = Client(url)
        http = httpx.Client(base_url=url, timeout=120)

        run = client.start_run("bench", "ingest")
        for name, bodies, content_type, run_id in (
            (
                "ingest_api_points_per_s",
                json_bodies(args.points, args.batch),
                "application/json",
                run.id,
            ),
            (
                "ingest_api_arrow_points_per_s",
                arrow_bodies(args.points, args.batch),
                "application/vnd.apache.arrow.stream",
                client.start_run("bench", "ingest-arrow").id,
            ),
        ):
            seconds = post_all(http, run_id, bodies, content_type)
            emit(
                figure=name,
                points=args.points,
                batch=args.batch,
                seconds=round(seconds, 3),
                value=round(args.points / seconds),
            )

        sdk_run = client.start_run("bench", "sdk-ingest", batch_size=args.batch)
        t0 = time.perf_counter()
        for i in range(args.sdk_points):
            sdk_run.log_metric("loss", 1.0 / (i + 1), step=i)
        sdk_run.flush()
        seconds = time.perf_counter() - t0
        emit(
            figure="ingest_sdk_points_per_s",
            points=args.sdk_points,
            batch=args.batch,
            seconds=round(seconds, 3),
            value=round(args.sdk_points / seconds),
        )
        sdk_run.end()

        lat = []
        for _ in range(args.small):
            t0 = time.perf_counter()
            r = http.get(f"/api/v1/runs/{run.id}")
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200
        emit(figure="get_run_latency", **summary(lat))
        small = client.start_run("bench", "small")
        lat = []
        for i in range(args.small):
            body = {
                "metrics": [
                    {
                        "key": "single",
                        "value": float(i),
                        "step": i,
                        "timestamp": 1_700_000_000_000 + i,
                    }
                ]
            }
            t0 = time.perf_counter()
            r = http.post(f"/api/v1/runs/{small.id}/batch", json=body)
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 204
        emit(figure="log_one_metric_latency", **summary(lat))
        lat = []
        for _ in range(200):
            t0 = time.perf_counter()
            r = http.post("/api/v1/runs", json={"project": "bench", "run_id": uuid.uuid4().hex})
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 201
        emit(figure="create_run_latency", **summary(lat))

        for fmt in ("arrow", "json"):
            lat = []
            for _ in range(3):
                t0 = time.perf_counter()
                if fmt == "arrow":
                    series = client.get_metric_history(run.id, "loss")
                    n = len(series)
                else:  # JSON pages, following next_page_token
                    n, params = 0, {"key": "loss"}
                    while True:
                        url = f"/api/v1/runs/{run.id}/metric-history"
                        body = http.get(url, params=params).json()
                        n += len(body["values"])
                        if not body.get("next_page_token"):
                            break
                        params["page_token"] = body["next_page_token"]
                lat.append(time.perf_counter() - t0)
                assert n == args.points, n
            emit(
                figure=f"history_{fmt}_seconds",
                points=n,
                best=round(min(lat), 3),
                worst=round(max(lat), 3),
            )
        client.close()


if __name__ == "__main__":
    main()
