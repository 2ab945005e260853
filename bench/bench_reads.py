"""Reading long histories from `modelyard serve` on SQLite: the server's memory while four
clients read a 7,000,000-point history at once, and the time to read it whole.

    .venv/bin/python -m bench.bench_reads [--points 7000000] [--batch 100000] [--readers 4]

One run gets the history (Arrow batches of --batch points, so one block per batch); then one
client reads it whole, as the SDK does (Arrow pages, following next-page tokens), then as JSON
pages; then --readers clients read it at once; last a portal chart reads it reduced, whole and
zoomed in on its last 1,000,000 steps (with --charts-only, right after the history is logged,
so that its peak is not hidden in the heap the reads left grown). The server's resident memory
is sampled from /proc/<pid>/status every 10 ms (its peak, VmHWM, is reset before each phase).
Prints one JSON line per figure.

Run against an older tree with its sources first on the path (the server process inherits
PYTHONPATH): `PYTHONPATH=<old>/src:. .venv/bin/python -m bench.bench_reads`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import arrow_batches, proc_mb, server_process
from modelyard import Client

MB = 1024 * 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


@contextmanager
def memory(pid: int) -> Iterator[dict[str, float]]:
    """Samples the process's RSS while the block runs; yields a dict filled in at the end
    with the RSS before, the highest sample and the kernel's peak (VmHWM) in MB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    out: dict[str, float] = {"rss_before_mb": proc_mb(pid)}
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc_mb(pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        done.set()
        sampler.join()
        out["rss_peak_sampled_mb"] = round(peak[0], 1)
        out["vm_hwm_mb"] = round(proc_mb(pid, "VmHWM"), 1)
        out["rss_before_mb"] = round(out["rss_before_mb"], 1)


def log_history(http: httpx.Client, run_id: str, points: int, batch: int) -> float:
    """Send a history of ``points`` steps as Arrow batches; returns seconds."""
    t0 = time.perf_counter()
    for body in arrow_batches(points, batch):
        r = http.post(
            f"/api/v1/runs/{run_id}/batch",
            content=body,
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        assert r.status_code == 204, r.text
    return time.perf_counter() - t0


def read_json_pages(http: httpx.Client, run_id: str) -> int:
    """The whole history as JSON pages, following next_page_token; returns the points."""
    n, params = 0, {"key": "loss"}
    while True:
        body = http.get(f"/api/v1/runs/{run_id}/metric-history", params=params).json()
        n += len(body["values"])
        if not body.get("next_page_token"):
            return n
        params["page_token"] = body["next_page_token"]


def timed(fn: Callable[[], int], expected: int) -> float:
    t0 = time.perf_counter()
    n = fn()
    assert n == expected, (n, expected)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=7_000_000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--skip-json", action="store_true", help="no JSON figure (old trees)")
    ap.add_argument("--charts-only", action="store_true", help="only the chart figures")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp) / "data") as (url, proc):
        pid = proc.pid
        client = Client(url, timeout=600)
        http = httpx.Client(base_url=url, timeout=600)
        run = client.start_run("bench", "long-history")
        seconds = log_history(http, run.id, args.points, args.batch)
        emit(figure="log_history_points_per_s", points=args.points, batch=args.batch,
             seconds=round(seconds, 1), value=round(args.points / seconds))  # fmt: skip

        if not args.charts_only:
            reads(args, pid, url, client, http, run.id)
        charts(args, pid, http, run.id)
        http.close()
        client.close()


def reads(
    args: argparse.Namespace, pid: int, url: str, client: Client, http: httpx.Client, run_id: str
) -> None:
    """The whole history read by one client (Arrow, then JSON pages), then by several."""

    def sdk_read() -> int:
        return len(client.get_metric_history(run_id, "loss"))

    with memory(pid) as mem:
        seconds = timed(sdk_read, args.points)
    emit(figure="read_history_arrow_seconds", points=args.points, readers=1,
         seconds=round(seconds, 2), **mem)  # fmt: skip
    if not args.skip_json:
        with memory(pid) as mem:
            seconds = timed(lambda: read_json_pages(http, run_id), args.points)
        emit(figure="read_history_json_seconds", points=args.points, readers=1,
             seconds=round(seconds, 2), **mem)  # fmt: skip

    times: list[float] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with Client(url, timeout=600) as own:
                t0 = time.perf_counter()
                n = len(own.get_metric_history(run_id, "loss"))
                times.append(time.perf_counter() - t0)
                assert n == args.points, n
        except BaseException as exc:  # reported below
            errors.append(exc)

    with memory(pid) as mem:
        threads = [threading.Thread(target=reader) for _ in range(args.readers)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
    assert not errors, errors
    emit(figure="concurrent_history_reads", points=args.points, readers=args.readers,
         wall_seconds=round(wall, 2), slowest_seconds=round(max(times), 2),
         **mem)  # fmt: skip


def charts(args: argparse.Namespace, pid: int, http: httpx.Client, run_id: str) -> None:
    """A portal chart of the history (reduced to 1,500 points), whole and zoomed in on its
    last 1,000,000 steps."""
    url = f"/api/v1/series/urn:modelyard:run:{run_id}/reduced"
    zoom = {"x0": args.points - 1_000_000, "x1": args.points}
    for figure, extra, expected in (
        ("reduced_chart_seconds", {}, args.points),
        ("reduced_chart_zoomed_seconds", zoom, min(args.points, 1_000_001)),
    ):

        def chart(extra: dict[str, int] = extra, expected: int = expected) -> int:
            body = http.get(url, params={"key": "loss", "points": 1500, **extra}).json()
            assert body["total"] == expected, body["total"]
            return int(body["total"])

        with memory(pid) as mem:
            seconds = timed(chart, expected)
        emit(figure=figure, points=args.points, seconds=round(seconds, 2), **mem)


if __name__ == "__main__":
    main()
