"""Streaming a large artifact (2 GiB by default) up and down through `modelyard serve`, to the
local folder and to an S3 server (moto's, in its own process), with the server's peak memory.

The upload body is generated in 1 MiB chunks as it is sent, never held whole, and the server
must stream it too: its peak resident memory (VmHWM) is reported per store and must stay under
300 MB. Run: ``.venv/bin/python -m bench.bench_artifacts [--bytes N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx

from bench.common import free_port, proc_mb

CHUNK = 1024 * 1024
RSS_LIMIT_MB = 300


def chunks(total: int) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB chunks that differ from each other, made as they are sent."""
    block = random.Random(8).randbytes(CHUNK)
    for i in range(0, total, CHUNK):
        yield (i.to_bytes(8, "little") + block[8:])[: min(CHUNK, total - i)]


def expected_sha256(total: int) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(total):
        digest.update(chunk)
    return digest.hexdigest()


def wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{url} did not start")
        time.sleep(0.2)


@contextmanager
def serve(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`modelyard serve` in a subprocess; yields its URL and process id."""
    port = free_port()
    cmd = [sys.executable, "-m", "modelyard.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/healthz", proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process (its memory is not the portal's)."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def round_trip(url: str, pid: int, total: int, sha: str) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=600) as http:
        run = http.post("/api/v1/runs", json={"project": "bench", "name": "big"})
        run.raise_for_status()
        path = f"/api/v1/runs/{run.json()['run_id']}/artifacts/big.bin"
        started = time.perf_counter()
        resp = http.put(path, content=chunks(total))
        up = time.perf_counter() - started
        resp.raise_for_status()
        assert resp.json()["sha256"] == sha, "the stored artifact differs from what was sent"
        rss_up = proc_mb(pid, "VmHWM")
        digest, got = hashlib.sha256(), 0
        started = time.perf_counter()
        with http.stream("GET", path) as body:
            body.raise_for_status()
            for chunk in body.iter_bytes(CHUNK):
                digest.update(chunk)
                got += len(chunk)
        down = time.perf_counter() - started
        assert (got, digest.hexdigest()) == (total, sha), "the download differs from the upload"
    mb = total / 1e6
    return {
        "upload_MB_s": round(mb / up, 1),
        "download_MB_s": round(mb / down, 1),
        "peak_rss_MB_after_upload": round(rss_up, 1),
        "peak_rss_MB": round(proc_mb(pid, "VmHWM"), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bytes", type=int, default=2 * 1024**3)
    total = parser.parse_args().bytes
    sha = expected_sha256(total)
    # moto assembles a multipart upload in memory when it is completed, which takes it longer
    # than the default 10 s timeout for 2 GiB: give it two minutes.
    limit = {
        "MODELYARD_MAX_UPLOAD_BYTES": str(total + CHUNK),
        "MODELYARD_ARTIFACT_STORE_TIMEOUT": "120",
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        with serve(Path(tmp, "local"), limit) as (url, pid):
            results["local folder"] = round_trip(url, pid, total, sha)
            print(f"local folder: {results['local folder']}", flush=True)
        with moto_server() as endpoint:
            aws = {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            boto3.client("s3", **_client_args(aws)).create_bucket(Bucket="bench")
            env = {**limit, **aws, "MODELYARD_ARTIFACT_ROOT": "s3://bench/artifacts"}
            with serve(Path(tmp, "s3"), env) as (url, pid):
                results["S3 (moto server)"] = round_trip(url, pid, total, sha)
                print(f"S3 (moto server): {results['S3 (moto server)']}", flush=True)
    print(f"artifact of {total:,} bytes ({total / 2**30:.2f} GiB)")
    for store, figures in results.items():
        print(f"{store}: {figures}")
        if figures["peak_rss_MB"] >= RSS_LIMIT_MB:
            print(f"  !! peak server RSS over {RSS_LIMIT_MB} MB")


def _client_args(aws: dict[str, str]) -> dict[str, str]:
    return {
        "endpoint_url": aws["AWS_ENDPOINT_URL"],
        "aws_access_key_id": aws["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"],
        "region_name": aws["AWS_DEFAULT_REGION"],
    }


if __name__ == "__main__":
    main()
