"""Helpers shared by the benchmark scripts: a server subprocess and latency summaries."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa


def proc_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of a process from /proc (``VmRSS`` now, ``VmHWM`` its peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(f"no {field} for process {pid}")


def arrow_batches(points: int, batch: int) -> Iterator[bytes]:
    """A ``loss`` history of ``points`` steps as Arrow IPC stream bodies of ``batch`` points,
    made one at a time (seeded values, a timestamp per step)."""
    rng = np.random.default_rng(0)
    for start in range(0, points, batch):
        n = min(batch, points - start)
        table = pa.table(
            {
                "key": pa.array(["loss"] * n).dictionary_encode(),
                "value": rng.random(n),
                "step": np.arange(start, start + n, dtype=np.int64),
                "timestamp": np.full(n, 1_700_000_000_000 + start, dtype=np.int64),
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        yield sink.getvalue().to_pybytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(data_dir: Path, database_url: str | None = None, workers: int = 1) -> Iterator[str]:
    """`modelyard serve` in a subprocess on a free loopback port; yields its URL."""
    with server_process(data_dir, database_url, workers) as (url, _):
        yield url


@contextmanager
def server_process(
    data_dir: Path, database_url: str | None = None, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`server`, yielding the process too (its memory can then be read)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "modelyard.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "n": len(ms),
        "p50_ms": round(q[49], 3),
        "p95_ms": round(q[94], 3),
        "p99_ms": round(q[98], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }
