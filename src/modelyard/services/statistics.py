"""Planner statistics for SQLite: without them, SQLite guesses table sizes and can walk a
million latest metric values to answer a list of ten projects. PostgreSQL's autovacuum keeps
its own statistics, so this work is SQLite's alone."""

from __future__ import annotations

from sqlalchemy import Engine

from modelyard.services.periodic import Periodic

EVERY_S = 3600.0
# Rows ANALYZE samples per index: approximate statistics at a bounded cost (well under a
# second on a 240 MB store of 100,000 runs and 1,000,000 latest values).
ANALYSIS_LIMIT = 1000


def refresh_statistics(engine: Engine) -> None:
    """Bring the planner's table and index statistics up to date (``ANALYZE``)."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        conn.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE")


class PlannerStatistics(Periodic):
    """Refreshes SQLite's planner statistics at start and every hour."""

    name = "modelyard-statistics"
    failure = "could not refresh the database's planner statistics"

    def __init__(self, engine: Engine, interval_s: float = EVERY_S) -> None:
        super().__init__(interval_s)
        self.engine = engine

    def enabled(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def work(self) -> int:
        refresh_statistics(self.engine)
        return 1
