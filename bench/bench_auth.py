"""What authentication costs a request, and how soon a revoked token stops working.

    .venv/bin/python -m bench.bench_auth [--rounds 30] [--batch 100] [--revocations 10]

Get run p50/p90 over HTTP from `modelyard serve` (uvicorn, one process, SQLite) four ways,
interleaved in batches of --batch requests, round after round, so a busy moment of the machine
falls on all ways alike: a server in local mode (no credentials), and a server in team mode
(users exist) with a viewer's API token as 'Authorization: Bearer', with the session cookie of
the same viewer signed in, and with a site admin's token (who skips the role check).

Then revocation: a second server process on the team server's database; a token it has just
accepted (and cached) is revoked through the services, as `modelyard tokens revoke` does, and
that process is asked every 5 ms until it answers 401. Prints one JSON line per figure.
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
    """A migrated store in ``data_dir`` with a site admin and a user who will be a viewer of
    the project read (so its server is in team mode)."""
    from modelyard.metadata.engine import ensure_schema, make_engine
    from modelyard.metadata.store import Store
    from modelyard.services.access import accounts
    from modelyard.settings import Settings

    engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
    ensure_schema(engine)
    store = Store(engine)
    accounts.add_user(store, actor="bench", name="ada", password=PASSWORD, admin=True)
    accounts.add_user(store, actor="bench", name="grace", password=PASSWORD)
    return store


def batch(http: httpx.Client, path: str, n: int, into: list[float]) -> None:
    for _ in range(n):
        start = time.perf_counter()
        resp = http.get(path)
        into.append(time.perf_counter() - start)
        if resp.status_code != 200:
            raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:200]}")


def signed_in(url: str, name: str) -> httpx.Client:
    """A client sending ``name``'s session cookie as a plain header: httpx's cookie jar costs
    the client about 0.2 ms a request, which is no cost of the server's."""
    with httpx.Client(base_url=url) as browser:
        signed = browser.post("/sign-in", data={"username": name, "password": PASSWORD})
        if signed.status_code != 303:
            raise RuntimeError(f"sign-in: {signed.status_code}")
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    return httpx.Client(base_url=url, headers={"Cookie": cookie})


def latency(
    local_url: str, team_url: str, store: Any, tokens: dict[str, str], rounds: int, size: int
) -> None:
    from modelyard.services.access import accounts

    def bearer(name: str) -> httpx.Client:
        return httpx.Client(base_url=team_url, headers={"Authorization": f"Bearer {tokens[name]}"})

    local = httpx.Client(base_url=local_url)
    runs = {
        "local": local.post("/api/v1/runs", json={"project": "bench"}).json()["run_id"],
        "team": bearer("ada").post("/api/v1/runs", json={"project": "bench"}).json()["run_id"],
    }
    accounts.set_member(
        store, project="bench", kind="user", name="grace", role="viewer", actor="bench"
    )
    clients = {
        "local, no credentials": (local, runs["local"]),
        "team, Bearer token of a viewer": (bearer("grace"), runs["team"]),
        "team, session cookie of a viewer": (signed_in(team_url, "grace"), runs["team"]),
        "team, Bearer token of a site admin": (bearer("ada"), runs["team"]),
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    for http, run_id in clients.values():  # warm up: connections, caches, code paths
        batch(http, f"/api/v1/runs/{run_id}", 300, [])
    for n in range(rounds):
        order = list(clients.items())
        order = order[n % len(order) :] + order[: n % len(order)]  # each goes first in turn
        for name, (http, run_id) in order:
            batch(http, f"/api/v1/runs/{run_id}", size, times[name])
    base = percentiles(times["local, no credentials"])
    for name, seconds in times.items():
        got = percentiles(seconds)
        added = round(got["p50_ms"] - base["p50_ms"], 3)
        emit("get run", way=name, **got, added_p50_ms=added)
    for http, _ in clients.values():
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

        tokens = {
            name: accounts.create_token(store, user=name, name="bench", actor="bench").secret
            for name in ("ada", "grace")
        }
        with server(local_dir) as local_url, server(team_dir) as team_url:
            latency(local_url, team_url, store, tokens, args.rounds, args.batch)
            revocation(store, team_dir, args.revocations)
        store.engine.dispose()


if __name__ == "__main__":
    main()
