"""What authentication costs a request, and how soon a revoked token stops working.

    .venv/bin/python -m bench.bench_auth [--rounds 30] [--batch 100] [--revocations 10]

Get run p50/p90 over HTTP from `modelyard serve` (uvicorn, one process, SQLite) three ways,
interleaved in batches of --batch requests, round after round, so a busy moment of the machine
falls on all three alike: a server in local mode (no credentials), and a server in team mode
(a user exists) with an API token as 'Authorization: Bearer' and with the session cookie of a
signed-in browser. Then revocation: a second server process on the team server's database;
a token is revoked through the services (as `modelyard tokens revoke` does) and that second
process is asked every 5 ms until it answers 401. Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import server

PASSWORD = "a benchmark password"


def emit(figure: str, **values: Any) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    q = statistics.quantiles(ms, n=10, method="inclusive")
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 3), "p90_ms": round(q[8], 3)}


def team_database(data_dir: Path) -> Any:
    """A migrated store in ``data_dir`` with one user (so its server is in team mode)."""
    from modelyard.metadata.engine import ensure_schema, make_engine
    from modelyard.metadata.store import Store
    from modelyard.services.access import accounts
    from modelyard.settings import Settings

    engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
    ensure_schema(engine)
    store = Store(engine)
    accounts.add_user(store, actor="bench", name="ada", password=PASSWORD, admin=True)
    return store


def batch(http: httpx.Client, path: str, n: int, into: list[float]) -> None:
    for _ in range(n):
        start = time.perf_counter()
        resp = http.get(path)
        into.append(time.perf_counter() - start)
        if resp.status_code != 200:
            raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:200]}")


def latency(local_url: str, team_url: str, token: str, rounds: int, size: int) -> None:
    local = httpx.Client(base_url=local_url)
    bearer = httpx.Client(base_url=team_url, headers={"Authorization": f"Bearer {token}"})
    cookie = httpx.Client(base_url=team_url)
    signed = cookie.post("/sign-in", data={"username": "ada", "password": PASSWORD})
    if signed.status_code != 303:
        raise RuntimeError(f"sign-in: {signed.status_code}")
    runs = {
        "local": local.post("/api/v1/runs", json={"project": "bench"}).json()["run_id"],
        "team": bearer.post("/api/v1/runs", json={"project": "bench"}).json()["run_id"],
    }
    clients = {
        "local, no credentials": (local, runs["local"]),
        "team, Bearer token": (bearer, runs["team"]),
        "team, session cookie": (cookie, runs["team"]),
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    for http, run_id in clients.values():  # warm up: connections, caches, code paths
        batch(http, f"/api/v1/runs/{run_id}", 300, [])
    for n in range(rounds):
        order = list(clients.items())
        order = order[n % 3 :] + order[: n % 3]  # each goes first as often as the others
        for name, (http, run_id) in order:
            batch(http, f"/api/v1/runs/{run_id}", size, times[name])
    base = percentiles(times["local, no credentials"])
    for name, seconds in times.items():
        got = percentiles(seconds)
        added = round(got["p50_ms"] - base["p50_ms"], 3)
        emit("get run", way=name, **got, added_p50_ms=added)
    for http in (local, bearer, cookie):
        http.close()


def revocation(store: Any, data_dir: Path, times: int) -> None:
    """Revoke tokens the second process has seen (and cached), and time its first 401."""
    from modelyard.services.access import accounts

    seconds: list[float] = []
    with server(data_dir) as other:
        for n in range(times):
            made = accounts.create_token(store, user="ada", name=f"revoke-{n}", actor="bench")
            http = httpx.Client(base_url=other, headers={"Authorization": f"Bearer {made.secret}"})
            for _ in range(20):  # cached as valid in the second process
                if http.get("/api/v1/me").status_code != 200:
                    raise RuntimeError("the new token was refused")
            time.sleep(0.2 * (n % 5))  # revoked at different points of the cache's second
            start = time.perf_counter()
            accounts.revoke_token(store, token_id=made.info.id, actor="bench")
            while http.get("/api/v1/me").status_code != 401:
                time.sleep(0.005)
            seconds.append(time.perf_counter() - start)
            http.close()
    emit(
        "revoked token refused by another process",
        n=len(seconds),
        median_s=round(statistics.median(seconds), 3),
        max_s=round(max(seconds), 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--revocations", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local_dir, team_dir = Path(tmp, "local"), Path(tmp, "team")
        store = team_database(team_dir)
        from modelyard.services.access import accounts

        token = accounts.create_token(store, user="ada", name="bench", actor="bench").secret
        with server(local_dir) as local_url, server(team_dir) as team_url:
            latency(local_url, team_url, token, args.rounds, args.batch)
            revocation(store, team_dir, args.revocations)
        store.engine.dispose()


if __name__ == "__main__":
    main()
