"""Large request bodies against `modelyard serve` on SQLite: while two big bodies arrive at
once, how fast does /healthz answer and how much memory does the server take?

    .venv/bin/python -m bench.bench_bodies [--size-mb 100]

Scenarios, each but ``idle`` (no body, for the machine's baseline) with two bodies sent at the
same time from two connections:
- ``two_100mb``: a 100 MB metric batch with a Content-Length and another sent chunked (no
  length), both over the JSON cap (MODELYARD_MAX_BODY_BYTES, 32 MiB by default);
- ``two_full_batches_under_cap``: two valid batches of max_batch_points (100,000) points with
  250-character keys, about 30 MB each: just under the cap, parsed, validated and stored;
- ``two_too_many_points_under_cap``: two bodies just under the cap holding 500,000 short
  points each, refused (413) for their point count once parsed.

A client thread polls /healthz every 10 ms throughout; another samples the server's resident
memory (/proc/<pid>/status) every 10 ms. Prints one JSON line per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.common import proc_mb, server_process, summary

PIECE = 256 * 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def rows_body(row: bytes, n: int) -> bytes:
    return b'{"metrics":[' + b",".join([row] * n) + b"]}"


def _status(sock: socket.socket) -> int | None:
    """The status of the response on ``sock`` (None if the server dropped the connection
    without one)."""
    sock.settimeout(300)
    data = b""
    try:
        while b"\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                return None
            data += more
    except (ConnectionResetError, TimeoutError):
        return None
    return int(data.split(b" ", 2)[1])


def send(url: str, path: str, body: bytes, *, chunked: bool) -> dict[str, object]:
    """POST ``body`` as a client would (as fast as the server takes it), stopping as soon as
    an answer arrives; returns its status, when it came and how much had been sent."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.settimeout(300)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    t0 = time.perf_counter()
    sock.sendall(
        b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%s\r\n\r\n"
        % (path.encode(), length)
    )
    sent, view = 0, memoryview(body)
    try:
        while sent < len(body) and not select.select([sock], [], [], 0)[0]:
            piece = view[sent : sent + PIECE]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked and sent == len(body):
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    status = _status(sock)
    seconds = time.perf_counter() - t0
    sock.close()
    return {
        "chunked": chunked,
        "body_mb": round(len(body) / 1e6, 1),
        "status": status,
        "answered_after_s": round(seconds, 3),
        "sent_mb_before_answer": round(sent / 1e6, 1),
    }


def scenario(
    name: str, url: str, proc: subprocess.Popen[bytes], path: str, bodies: list[tuple[bytes, bool]]
) -> None:
    """Send ``bodies`` (body, chunked) at once while polling /healthz and sampling memory."""
    done = threading.Event()
    latencies: list[float] = []
    rss: list[float] = []
    results: list[dict[str, object]] = []

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not done.is_set():
                t0 = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)

    def sample() -> None:
        while not done.is_set():
            rss.append(proc_mb(proc.pid))
            time.sleep(0.01)

    before = proc_mb(proc.pid)
    watchers = [threading.Thread(target=poll), threading.Thread(target=sample)]
    for w in watchers:
        w.start()
    time.sleep(0.2)
    senders = [
        threading.Thread(target=lambda b=b, c=c: results.append(send(url, path, b, chunked=c)))
        for b, c in bodies
    ]
    t0 = time.perf_counter()
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    if not senders:
        time.sleep(2)
    seconds = time.perf_counter() - t0
    time.sleep(0.2)
    done.set()
    for w in watchers:
        w.join()
    lat = summary(latencies)
    emit(
        scenario=name,
        seconds=round(seconds, 3),
        requests=results,
        healthz_n=lat["n"],
        healthz_p50_ms=lat["p50_ms"],
        healthz_p99_ms=lat["p99_ms"],
        healthz_max_ms=round(max(latencies) * 1000, 1),
        rss_before_mb=round(before, 1),
        rss_peak_mb=round(max(rss), 1),
        server_hwm_mb=round(proc_mb(proc.pid, "VmHWM"), 1),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=100, help="size of the two large bodies")
    ap.add_argument("--skip-under-cap", action="store_true")
    args = ap.parse_args()
    cap = int(os.environ.get("MODELYARD_MAX_BODY_BYTES", 32 * 1024**2))
    short = b'{"key":"loss","value":0.123456789,"step":12345,"timestamp":1700000000000}'
    big = rows_body(short, args.size_mb * 10**6 // (len(short) + 1))
    long_key = b'{"key":"%s","value":0.123456789,"step":12345}' % (b"k" * 250)
    full = rows_body(long_key, 100_000)
    many = rows_body(short, (cap - 100) // (len(short) + 1))
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp) / "data") as (url, proc):
        with httpx.Client(base_url=url) as http:
            run = http.post("/api/v1/runs", json={"project": "bench"}).json()["run_id"]
        path = f"/api/v1/runs/{run}/batch"
        scenario("idle", url, proc, path, [])
        scenario("two_100mb", url, proc, path, [(big, False), (big, True)])
        if not args.skip_under_cap:
            assert len(full) <= cap
            assert len(many) <= cap
            scenario("two_full_batches_under_cap", url, proc, path, [(full, False)] * 2)
            scenario("two_too_many_points_under_cap", url, proc, path, [(many, False)] * 2)


if __name__ == "__main__":
    main()
