"""Engine creation and schema migrations (Alembic)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Key of the PostgreSQL advisory lock that makes concurrent migrators take turns.
MIGRATION_LOCK_KEY = 0x6D6F64656C796172  # "modelyar"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own handling defers it).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=60000")
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _use_wal(cur: Any) -> None:
    """Switch a database to WAL once. Changing the journal mode needs the database to itself,
    and SQLite answers "database is locked" at once, without waiting, when another process is
    switching or writing; so look first (a database already in WAL needs nothing) and retry
    for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + 60
    delay = 0.005
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock up front so two writers never deadlock upgrading a read lock.
    if conn.get_execution_options().get("write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


# The services read ``rowcount`` of INSERT ... ON CONFLICT DO NOTHING to learn whether a row
# was new (entities, idempotency keys). SQLAlchemy only keeps the driver's count for UPDATE
# and DELETE unless asked, and psycopg's INSERTs then report -1, which reads as "new".
ENGINE_OPTIONS = {"preserve_rowcount": True}


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite, WAL mode, a busy timeout and immediate write locks."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=16,
            max_overflow=48,
            execution_options=ENGINE_OPTIONS,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        execution_options=ENGINE_OPTIONS,
    )


class SchemaError(RuntimeError):
    """The database's schema is not one this modelyard can run on."""


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the database's migration lock, so that processes starting at
    once on a new database take turns: the first migrates, the others then find it current.
    SQLite takes its write lock up front (BEGIN IMMEDIATE); PostgreSQL an advisory lock."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield conn


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config(conn.engine)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (``modelyard db upgrade``)."""
    with _migration_transaction(engine) as conn:
        _upgrade(conn, revision)


def _heads(conn: Connection) -> tuple[set[str], set[str]]:
    """The revisions the database is at, and the head revisions of this modelyard."""
    script = ScriptDirectory.from_config(alembic_config(conn.engine))
    current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads())


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        current, heads = _heads(conn)
    return current == heads


def ensure_schema(engine: Engine) -> None:
    """Migrate an empty database on first start; refuse to run on an outdated one."""
    if is_current(engine):
        return
    with _migration_transaction(engine) as conn:
        # Decided under the lock: another process may have migrated it meanwhile.
        current, heads = _heads(conn)
        if current == heads:
            return
        names = set(inspect(conn).get_table_names())
        if not current and names <= {"alembic_version"}:
            _upgrade(conn, "head")
            return
    problem = _schema_problem(engine, current, heads, names)
    # Close the connections opened to look: a caller that gives up on the engine (an app
    # that fails to start) would otherwise leave them to the garbage collector.
    engine.dispose()
    raise SchemaError(problem)


def _schema_problem(engine: Engine, current: set[str], heads: set[str], names: set[str]) -> str:
    where = engine.url.render_as_string(hide_password=True)
    head = ", ".join(sorted(heads))
    if not current:
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        return (
            f"the database {where} holds tables ({shown}) but no modelyard schema version: "
            "it is not a modelyard database; point modelyard at an empty database or its own"
        )
    script = ScriptDirectory.from_config(alembic_config(engine))
    unknown = []
    for rev in sorted(current):
        try:
            known = script.get_revision(rev) is not None
        except CommandError:
            known = False
        if not known:
            unknown.append(rev)
    at = ", ".join(sorted(current))
    if unknown:
        return (
            f"the database {where} is at schema revision {', '.join(unknown)}, which this "
            f"version of modelyard does not know (its newest is {head}); it was probably "
            "migrated by a newer modelyard: upgrade modelyard to use it"
        )
    return (
        f"the database schema of {where} is out of date (revision {at}, this modelyard needs "
        f"{head}): back it up, then run `modelyard db upgrade`"
    )
