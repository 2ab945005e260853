"""Run search over a large project, over HTTP against `modelyard serve` on SQLite.

    .venv/bin/python -m bench.bench_search [--runs 100000]

The project is seeded straight into the index tables (10 params, 10 metrics and 2 tags per
run) so seeding takes seconds; the searches then go through the API like any client's.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench.common import server, summary
from modelyard.app import create_app
from modelyard.metadata import tables as t
from modelyard.settings import Settings

SEARCHES = {
    "filter_and_order": {
        "filter": "metrics.m0 > 0.5 and params.p1 = 'v1'",
        "order_by": ["metrics.m1 desc"],
    },
    "default_order": {"filter": "", "order_by": []},
    "param_order": {
        "filter": "params.p2 in ('v0', 'v3') or tags.team = 'growth'",
        "order_by": ["params.p3 asc", "start_time desc"],
    },
    "status_and_time": {
        "filter": "status = 'finished' and start_time > 1700000500000",
        "order_by": ["metrics.m2 asc"],
    },
}


def seed(data_dir: Path, runs: int) -> None:
    app = create_app(Settings(data_dir=data_dir))
    engine = app.state.store.engine
    rng = random.Random(42)
    with engine.begin() as conn:
        conn.execute(
            insert(t.project).values(
                id=1, name="big", description="", created_at=0, created_by="bench"
            )
        )
        conn.execute(insert(t.series_key), [{"id": k + 1, "name": f"m{k}"} for k in range(10)])
        for start in range(0, runs, 10_000):
            n = min(10_000, runs - start)
            pks = range(start + 1, start + n + 1)
            conn.execute(
                insert(t.run),
                [
                    {
                        "pk": pk,
                        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "project_id": 1,
                        "name": f"run-{pk}",
                        "status": rng.choice(["finished"] * 8 + ["failed"]),
                        "start_time": 1_700_000_000_000 + pk * 10,
                        "end_time": None,
                        "created_by": "bench",
                    }
                    for pk in pks
                ],
            )
            conn.execute(
                insert(t.run_param),
                [
                    {"run_pk": pk, "key": f"p{j}", "value": f"v{rng.randrange(4)}"}
                    for pk in pks
                    for j in range(10)
                ],
            )
            conn.execute(
                insert(t.run_tag),
                [
                    {"run_pk": pk, "key": "team", "value": rng.choice(["growth", "risk", "ads"])}
                    for pk in pks
                ],
            )
            conn.execute(
                insert(t.series_latest),
                [
                    {
                        "owner_kind": t.SERIES_RUN,
                        "owner_id": pk,
                        "key_id": k + 1,
                        "step": 9,
                        "timestamp": 0,
                        "value": rng.random(),
                        "is_nan": False,
                    }
                    for pk in pks
                    for k in range(10)
                ],
            )
        keys = [("param", f"p{j}") for j in range(10)] + [("metric", f"m{k}") for k in range(10)]
        conn.execute(
            insert(t.project_key),
            [{"project_id": 1, "kind": kind, "key": key} for kind, key in [*keys, ("tag", "team")]],
        )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        seed(data, args.runs)
        print(
            json.dumps(
                {
                    "figure": "seed_seconds",
                    "runs": args.runs,
                    "value": round(time.perf_counter() - t0, 1),
                }
            ),
            flush=True,
        )
        with server(data) as url, httpx.Client(base_url=url, timeout=60) as http:
            for name, body in SEARCHES.items():
                req = {"project": "big", "page_size": 100, **body}
                lat = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    r = http.post("/api/v1/runs/search", json=req)
                    lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                print(
                    json.dumps(
                        {
                            "figure": f"search_first_page_{name}",
                            "runs": args.runs,
                            "rows": len(r.json()["runs"]),
                            **summary(lat),
                        }
                    ),
                    flush=True,
                )
            # Deep pages: follow tokens 100 pages in, then time the next pages.
            req = {"project": "big", "page_size": 100, **SEARCHES["filter_and_order"]}
            token = None
            for _ in range(100):
                token = http.post("/api/v1/runs/search", json={**req, "page_token": token}).json()[
                    "next_page_token"
                ]
            lat = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                r = http.post("/api/v1/runs/search", json={**req, "page_token": token})
                lat.append(time.perf_counter() - t0)
            print(
                json.dumps(
                    {
                        "figure": "search_page_101_filter_and_order",
                        "runs": args.runs,
                        "rows": len(r.json()["runs"]),
                        **summary(lat),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
