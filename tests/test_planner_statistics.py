"""SQLite's planner statistics are refreshed when a server starts (and hourly), so list pages
read a project's latest runs first instead of walking every latest metric value."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from modelyard.services.statistics import PlannerStatistics
from tests.helpers import API, new_run
from tests.test_events import lifespan
from tests.test_web_pages import log


def _statistics(app: FastAPI) -> set[str]:
    with app.state.store.engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM sqlite_master")).scalars().all()
        if "sqlite_stat1" not in names:
            return set()
        return set(conn.execute(text("SELECT tbl FROM sqlite_stat1")).scalars().all())


def test_a_starting_server_gives_sqlite_planner_statistics(app: FastAPI) -> None:
    statistics: PlannerStatistics = app.state.planner_statistics
    if app.state.store.engine.dialect.name != "sqlite":
        assert not statistics.enabled()  # PostgreSQL's autovacuum keeps its own
        return
    assert _statistics(app) == set()
    with lifespan(app) as http:
        for n in range(3):
            rid = new_run(http, "p", name=f"r{n}")
            log(http, rid, metrics=[{"key": "auc", "value": 0.5 + n / 10, "step": 0}])
        statistics.sweep()
        assert {"run", "series_latest"} <= _statistics(app)
        assert http.get(f"{API}/projects").status_code == 200
