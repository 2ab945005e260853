"""Alembic migrations build exactly the schema of metadata/tables.py, and ensure_schema
migrates an empty database and refuses one it cannot run on."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text
from sqlalchemy.schema import CreateIndex

from modelyard.cli import main
from modelyard.metadata import engine as engine_module
from modelyard.metadata.engine import (
    SchemaError,
    alembic_config,
    ensure_schema,
    is_current,
    make_engine,
    upgrade,
)
from modelyard.metadata.store import Store
from modelyard.metadata.tables import metadata
from modelyard.services import metrics, series_store, timeseries
from modelyard.services.series_store import run_owner

EXPRESSION_INDEXES = {
    ix.name: ix
    for table in metadata.tables.values()
    for ix in table.indexes
    if any(not hasattr(e, "table") for e in ix.expressions)
}


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    eng = make_engine(empty_database_url)
    yield eng
    eng.dispose()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def version(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def schema_diff(engine: Engine) -> tuple[list[Any], list[str]]:
    """Alembic's autogenerate comparison of the database with the tables, and the warnings
    it gave (it warns about what it could not compare)."""
    with warnings.catch_warnings(record=True) as caught, engine.connect() as conn:
        warnings.simplefilter("always")
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(ctx, metadata)
    return diff, [str(w.message) for w in caught]


def test_the_tables_have_expression_indexes_to_check() -> None:
    assert set(EXPRESSION_INDEXES) == {"ix_run_param_key_value", "ix_run_tag_key_value"}


def test_migrations_build_exactly_the_tables(engine: Engine) -> None:
    upgrade(engine)
    assert table_names(engine) == set(metadata.tables) | {"alembic_version"}
    diff, warned = schema_diff(engine)
    assert diff == []
    if engine.dialect.name == "sqlite":
        # SQLite's reflection cannot read expression indexes, so autogenerate skips them
        # (and says so); they are checked below from the DDL SQLite stored instead.
        skipped = set()
        for message in warned:
            found = re.search(r"expression-based index '?(\w+)'?", message)
            assert found, f"unexpected warning: {message}"
            skipped.add(found.group(1))
        assert skipped == set(EXPRESSION_INDEXES)
    else:
        assert warned == []
    check_expression_indexes(engine)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            ddl = dict(conn.execute(text("SELECT name, sql FROM sqlite_master")).all())
        for table in metadata.tables.values():
            wanted = table.dialect_options["sqlite"]["with_rowid"] is False
            assert ("WITHOUT ROWID" in ddl[table.name]) == wanted, table.name


def check_expression_indexes(engine: Engine) -> None:
    """Each expression index exists with the expressions of its definition."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            stored = dict(
                conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
            )
        for name, ix in EXPRESSION_INDEXES.items():
            expected = str(CreateIndex(ix).compile(dialect=engine.dialect))
            assert " ".join(stored[name].split()) == " ".join(expected.split())
        return
    for name, ix in EXPRESSION_INDEXES.items():
        assert ix.table is not None
        found = {i["name"]: i for i in inspect(engine).get_indexes(ix.table.name)}[name]
        ddl = str(CreateIndex(ix).compile(dialect=engine.dialect))
        expected = ddl[ddl.index(f" ON {ix.table.name} (") + len(ix.table.name) + 6 : -1]
        assert squeeze(", ".join(found["expressions"])) == squeeze(expected)


def squeeze(sql: str) -> str:
    return re.sub(r"[\"\s]", "", sql)


def test_the_comparison_does_notice_a_difference(engine: Engine) -> None:
    """The check above is not vacuous: a missing index and a missing table show up."""
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_entity_type"))
        conn.execute(text("DROP TABLE dataset"))
    diff, _ = schema_diff(engine)
    kinds = {(d[0], getattr(d[1], "name", None)) for d in diff}
    assert kinds == {("add_index", "ix_entity_type"), ("add_table", "dataset")}


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    upgrade(engine)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert table_names(engine) <= {"alembic_version"}
    upgrade(engine)
    assert is_current(engine)
    assert schema_diff(engine)[0] == []


def test_ensure_schema_migrates_an_empty_database(engine: Engine) -> None:
    assert not is_current(engine)
    ensure_schema(engine)
    assert is_current(engine)
    assert set(metadata.tables) <= table_names(engine)
    before = version(engine)
    ensure_schema(engine)  # then a no-op
    assert version(engine) == before


def test_ensure_schema_takes_an_empty_version_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
    ensure_schema(engine)
    assert is_current(engine)


@pytest.fixture
def newer_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This modelyard's migrations plus one more revision, as a newer modelyard would ship."""
    scripts = tmp_path / "migrations"
    shutil.copytree(engine_module.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    heads = ScriptDirectory(str(engine_module.MIGRATIONS)).get_heads()
    assert len(heads) == 1
    (scripts / "versions" / "9999_future.py").write_text(
        f'''"""a later change"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{heads[0]}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("future_thing", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("future_thing")
'''
    )
    monkeypatch.setattr(engine_module, "MIGRATIONS", scripts)
    return heads[0]


def test_ensure_schema_refuses_an_older_revision(engine: Engine, newer_migrations: str) -> None:
    current = newer_migrations
    upgrade(engine, current)  # the database as this modelyard left it
    with pytest.raises(SchemaError) as err:
        ensure_schema(engine)
    message = str(err.value)
    assert "out of date" in message
    assert current in message
    assert "9999" in message
    assert "modelyard db upgrade" in message
    assert version(engine) == [current]  # nothing was changed
    assert "future_thing" not in table_names(engine)

    # As the message says: `modelyard db upgrade`, then it runs.
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert version(engine) == ["9999"]
    ensure_schema(engine)
    assert is_current(engine)


def test_ensure_schema_refuses_an_unknown_revision(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(SchemaError) as err:
        ensure_schema(engine)
    message = str(err.value)
    assert "f00dfeed" in message
    assert "does not know" in message
    assert "newer modelyard" in message
    assert "modelyard db upgrade" not in message  # that could not help
    assert version(engine) == ["f00dfeed"]

    result = CliRunner().invoke(
        main, ["db", "upgrade", "--database-url", engine.url.render_as_string(False)]
    )
    assert result.exit_code == 1
    assert "Error: cannot upgrade the database" in result.output
    assert "f00dfeed" in result.output


def test_ensure_schema_refuses_a_database_that_is_not_modelyard(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaError, match=r"invoices.*not a modelyard database"):
        ensure_schema(engine)
    assert table_names(engine) == {"invoices"}


def test_create_app_refuses_an_outdated_database_with_the_message(
    engine: Engine, newer_migrations: str, tmp_path: Path
) -> None:
    from modelyard.app import create_app
    from modelyard.settings import Settings

    upgrade(engine, newer_migrations)
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(SchemaError, match="out of date"):
        create_app(Settings(data_dir=tmp_path / "d", database_url=url))


@pytest.mark.slow
def test_processes_starting_at_once_on_an_empty_database_migrate_it_once(
    engine: Engine, tmp_path: Path
) -> None:
    """Several processes (servers, training scripts) opening a new database at the same
    moment: one migrates it, the others wait for it and then find it current."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from modelyard.metadata.engine import ensure_schema, make_engine\n"
        "go = Path(sys.argv[2])\n"
        "Path(sys.argv[3]).touch()\n"
        "deadline = time.monotonic() + 60\n"
        "while not go.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.002)\n"
        "e = make_engine(sys.argv[1])\n"
        "ensure_schema(e)\n"
        "e.dispose()\n"
    )
    url = engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(6)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(go), str(flag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outcomes = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [rc for rc, _ in outcomes] == [0] * len(procs), "\n".join(e for _, e in outcomes)
    assert is_current(engine)
    assert schema_diff(engine)[0] == []
    assert len(version(engine)) == 1


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    first = version(engine)
    upgrade(engine)
    assert version(engine) == first
    assert is_current(engine)


def _packed(steps: list[int], stamps: list[int], values: list[float]) -> dict[str, Any]:
    """A metric block as revision 0004 wrote it."""
    return {
        "count": len(steps),
        "min_step": steps[0],
        "max_step": steps[-1],
        "step_data": np.asarray(steps, dtype="<i8").tobytes(),
        "timestamp_data": np.asarray(stamps, dtype="<i8").tobytes(),
        "value_data": np.asarray(values, dtype="<f8").tobytes(),
    }


def test_upgrade_moves_metrics_and_time_series_made_at_0004(engine: Engine) -> None:
    upgrade(engine, "0004")
    loss = ([0, 1, 2], [10, 11, 12], [0.9, math.nan, 0.5])
    later = ([1, 3], [20, 21], [math.inf, 0.25])  # a later block whose steps interleave
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO metric_key (id, name) VALUES (1, 'loss'), (2, 'acc')"))
        blocks = [(7, 1, loss), (8, 2, ([5], [30], [0.75])), (7, 1, later)]
        for n, (run_pk, key_id, points) in enumerate(blocks, start=1):
            conn.execute(
                text(
                    'INSERT INTO metric_block (id, run_pk, key_id, "count", min_step, max_step, '
                    "step_data, timestamp_data, value_data) VALUES (:id, :run_pk, :key_id, "
                    ":count, :min_step, :max_step, :step_data, :timestamp_data, :value_data)"
                ),
                {"id": n, "run_pk": run_pk, "key_id": key_id, **_packed(*points)},
            )
        conn.execute(
            text(
                'INSERT INTO latest_metric (run_pk, key_id, step, "timestamp", value, is_nan) '
                "VALUES (7, 1, 3, 21, 0.25, false), (8, 2, 5, 30, 0, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO entity (urn, type, created_at, created_by) "
                "VALUES ('urn:modelyard:dataset:d', 'dataset', 0, 'me')"
            )
        )
        conn.execute(
            text(
                'INSERT INTO timeseries_event (urn, name, "timestamp", value, attributes) VALUES '
                "('urn:modelyard:dataset:d', 'rows', 300, 3.0, NULL), "
                "('urn:modelyard:dataset:d', 'rows', 100, 1.0, '{\"a\": 1}'), "
                "('urn:modelyard:dataset:d', 'rows', 200, NULL, '{\"b\": 2}')"
            )
        )
    upgrade(engine)
    assert schema_diff(engine)[0] == []
    store = Store(engine)
    with engine.connect() as conn:
        hist = series_store.read_history(conn, run_owner(7), "loss")
        assert hist.steps.tolist() == [0, 1, 1, 2, 3]
        assert hist.timestamps.tolist() == [10, 11, 20, 12, 21]
        expected = [0.9, math.nan, math.inf, 0.5, 0.25]
        assert np.array_equal(hist.values, expected, equal_nan=True)
        assert series_store.read_history(conn, run_owner(8), "acc").values.tolist() == [0.75]
        latest = series_store.latest(conn, run_owner(8))
        assert latest["acc"].step == 5
        assert math.isnan(latest["acc"].value)
        assert series_store.latest(conn, run_owner(7))["loss"].value == 0.25
    page = timeseries.history(store, urn="urn:modelyard:dataset:d", key="rows")
    assert orjson.loads(series_store.page_json(page)) == {
        "key": "rows",
        "steps": [0, 0],
        "timestamps": [100, 300],
        "values": [1.0, 3.0],
        "next_page_token": None,
    }
    # new keys and blocks are numbered after the moved ones
    batch = metrics.build_columns(["f1", "loss"], [1.0, 2.0], [9, 9], [50, 50])
    store.transact(lambda tx: metrics.insert_points(tx, store, 7, batch), actor="me")
    with engine.connect() as conn:
        assert series_store.read_history(conn, run_owner(7), "f1").values.tolist() == [1.0]
        assert series_store.read_history(conn, run_owner(7), "loss").steps.tolist()[-1] == 9


def test_upgrade_dates_the_events_settled_before_0007(engine: Engine) -> None:
    upgrade(engine, "0006")
    with engine.begin() as conn:
        for status, delivered_at, next_attempt_at in [
            ("delivered", 500, 0),
            ("failed", None, 700),  # given up: its next attempt was never made
            ("pending", None, 900),
        ]:
            conn.execute(
                text(
                    "INSERT INTO event (urn, entity_type, aspect, kind, actor, created_at, "
                    "version, status, attempts, next_attempt_at, delivered_at) VALUES "
                    "('urn:modelyard:project:1', 'project', 'tags', 'updated', 'me', 100, 1, "
                    ":status, 1, :next_attempt_at, :delivered_at)"
                ),
                {
                    "status": status,
                    "delivered_at": delivered_at,
                    "next_attempt_at": next_attempt_at,
                },
            )
    upgrade(engine)
    assert schema_diff(engine)[0] == []
    with engine.connect() as conn:
        found = conn.execute(text("SELECT status, settled_at FROM event ORDER BY id")).all()
    assert [tuple(r) for r in found] == [("delivered", 500), ("failed", 700), ("pending", None)]
