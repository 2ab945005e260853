"""one series store: run metrics and entity time series as packed blocks keyed by owner

Moves metric_key, metric_block and latest_metric into series_key, series_block and
series_latest (runs become owners of kind 1), moves timeseries_event values into blocks of
entity owners (kind 2, numbered in series_owner), and drops the old tables. Events without a
value (attributes only) have no place in a numeric series and are not kept.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN, ENTITY = 1, 2
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHUNK = 1000  # blocks copied per round trip
EVENT_BLOCK = 10_000  # points per block made from time-series events


def _create_series_tables() -> None:
    op.create_table(
        "series_key",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_key")),
        sa.UniqueConstraint("name", name=op.f("uq_series_key_name")),
    )
    op.create_table(
        "series_owner",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("urn", sa.String(length=2048), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_owner")),
        sa.UniqueConstraint("urn", name=op.f("uq_series_owner_urn")),
    )
    op.create_table(
        "series_block",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("owner_kind", sa.SmallInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("min_time", sa.BigInteger(), nullable=False),
        sa.Column("max_time", sa.BigInteger(), nullable=False),
        sa.Column("step_data", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp_data", sa.LargeBinary(), nullable=False),
        sa.Column("value_data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_block")),
    )
    op.create_index(
        "ix_series_block_owner_key", "series_block", ["owner_kind", "owner_id", "key_id", "id"]
    )
    op.create_table(
        "series_latest",
        sa.Column("owner_kind", sa.SmallInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("owner_kind", "owner_id", "key_id", name=op.f("pk_series_latest")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_series_latest_key_value",
        "series_latest",
        ["key_id", "owner_kind", "value", "owner_id"],
    )

    op.create_table(
        "series_batch",
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "batch_key", name=op.f("pk_series_batch")),
    )


def _create_metric_tables() -> None:
    """The tables of revision 0001 that this revision replaces."""
    op.create_table(
        "metric_key",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_key")),
        sa.UniqueConstraint("name", name=op.f("uq_metric_key_name")),
    )
    op.create_table(
        "metric_block",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("step_data", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp_data", sa.LargeBinary(), nullable=False),
        sa.Column("value_data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_block")),
    )
    op.create_index("ix_metric_block_run_key", "metric_block", ["run_pk", "key_id", "id"])
    op.create_table(
        "latest_metric",
        sa.Column("run_pk", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "key_id", name=op.f("pk_latest_metric")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_latest_metric_key_value", "latest_metric", ["key_id", "value", "run_pk"])
    op.create_table(
        "timeseries_event",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("urn", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_event")),
    )
    op.create_index(
        "ix_timeseries_event_urn_name_ts", "timeseries_event", ["urn", "name", "timestamp"]
    )


def _drop(*tables: str) -> None:
    for name in tables:
        op.drop_table(name)  # dropping a table drops its indexes


def _reset_sequence(conn: sa.Connection, table: str) -> None:
    """After rows were copied with their ids, PostgreSQL's sequence must continue past them."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )


def _chunks(conn: sa.Connection, query: str) -> Iterator[Sequence[sa.Row[Any]]]:
    """Rows of ``query`` (which selects id first and has a :after bound) in id order."""
    after = 0
    while rows := conn.execute(sa.text(query), {"after": after, "n": CHUNK}).all():
        yield rows
        after = rows[-1][0]


def _ints(data: bytes) -> Any:
    return np.frombuffer(data, dtype="<i8")


def _move_metrics(conn: sa.Connection) -> None:
    conn.execute(sa.text("INSERT INTO series_key (id, name) SELECT id, name FROM metric_key"))
    conn.execute(
        sa.text(
            'INSERT INTO series_latest (owner_kind, owner_id, key_id, step, "timestamp", '
            f'value, is_nan) SELECT {RUN}, run_pk, key_id, step, "timestamp", value, is_nan '
            "FROM latest_metric"
        )
    )
    insert = sa.text(
        'INSERT INTO series_block (id, owner_kind, owner_id, key_id, "count", min_step, max_step, '
        "min_time, max_time, step_data, timestamp_data, value_data) VALUES (:id, :owner_kind, "
        ":owner_id, :key_id, :count, :min_step, :max_step, :min_time, :max_time, :step_data, "
        ":timestamp_data, :value_data)"
    )
    query = (
        'SELECT id, run_pk, key_id, "count", min_step, max_step, step_data, timestamp_data, '
        "value_data FROM metric_block WHERE id > :after ORDER BY id LIMIT :n"
    )
    for rows in _chunks(conn, query):
        blocks = []
        for r in rows:
            stamps = _ints(r.timestamp_data)
            block = r._asdict()
            block.update(owner_kind=RUN, owner_id=block.pop("run_pk"))
            block.update(min_time=int(stamps.min()), max_time=int(stamps.max()))
            blocks.append(block)
        conn.execute(insert, blocks)


def _key_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(sa.text("SELECT id FROM series_key WHERE name = :n"), {"n": name})
    key_id = found.scalar_one_or_none()
    if key_id is None:
        conn.execute(sa.text("INSERT INTO series_key (name) VALUES (:n)"), {"n": name})
        return _key_id(conn, name)
    return int(key_id)


def _owner_id(conn: sa.Connection, urn: str) -> int:
    found = conn.execute(sa.text("SELECT id FROM series_owner WHERE urn = :u"), {"u": urn})
    owner_id = found.scalar_one_or_none()
    if owner_id is None:
        conn.execute(sa.text("INSERT INTO series_owner (urn) VALUES (:u)"), {"u": urn})
        return _owner_id(conn, urn)
    return int(owner_id)


def _event_block(owner_id: int, key_id: int, stamps: list[int], values: list[float]) -> Any:
    ts = np.asarray(stamps, dtype="<i8")
    return {
        "owner_kind": ENTITY,
        "owner_id": owner_id,
        "key_id": key_id,
        "count": len(ts),
        "min_step": 0,
        "max_step": 0,
        "min_time": int(ts[0]),
        "max_time": int(ts[-1]),
        "step_data": np.zeros(len(ts), dtype="<i8").tobytes(),
        "timestamp_data": ts.tobytes(),
        "value_data": np.asarray(values, dtype="<f8").tobytes(),
    }


def _move_events(conn: sa.Connection) -> None:
    """Each (entity, name) of timeseries_event becomes an entity's series at step 0."""
    block = sa.table("series_block", *(sa.column(c) for c in _event_block(0, 0, [0], [0.0])))
    latest = sa.table(
        "series_latest",
        *(sa.column(c) for c in ("owner_kind", "owner_id", "key_id", "step", "timestamp")),
        *(sa.column(c) for c in ("value", "is_nan")),
    )
    groups = conn.execute(
        sa.text(
            "SELECT DISTINCT urn, name FROM timeseries_event WHERE value IS NOT NULL "
            "ORDER BY urn, name"
        )
    ).all()
    for urn, name in groups:
        owner_id, key_id = _owner_id(conn, urn), _key_id(conn, name)
        rows = conn.execute(
            sa.text(
                'SELECT "timestamp", value FROM timeseries_event WHERE urn = :u AND name = :n '
                'AND value IS NOT NULL ORDER BY "timestamp", id'
            ),
            {"u": urn, "n": name},
        ).all()
        for at in range(0, len(rows), EVENT_BLOCK):
            part = rows[at : at + EVENT_BLOCK]
            stamps, values = [r[0] for r in part], [float(r[1]) for r in part]
            conn.execute(block.insert(), [_event_block(owner_id, key_id, stamps, values)])
        last = rows[-1]
        conn.execute(
            latest.insert(),
            [
                {
                    "owner_kind": ENTITY,
                    "owner_id": owner_id,
                    "key_id": key_id,
                    "step": 0,
                    "timestamp": last[0],
                    "value": float(last[1]),
                    "is_nan": False,
                }
            ],
        )


def upgrade() -> None:
    conn = op.get_bind()
    _create_series_tables()
    _move_metrics(conn)
    _reset_sequence(conn, "series_key")
    _reset_sequence(conn, "series_block")
    _move_events(conn)
    _drop("timeseries_event", "latest_metric", "metric_block", "metric_key")


def downgrade() -> None:
    """Run metrics go back to the old tables; entity series have no place there and are lost."""
    conn = op.get_bind()
    _create_metric_tables()
    conn.execute(sa.text("INSERT INTO metric_key (id, name) SELECT id, name FROM series_key"))
    conn.execute(
        sa.text(
            'INSERT INTO latest_metric (run_pk, key_id, step, "timestamp", value, is_nan) '
            f'SELECT owner_id, key_id, step, "timestamp", value, is_nan FROM series_latest '
            f"WHERE owner_kind = {RUN}"
        )
    )
    conn.execute(
        sa.text(
            'INSERT INTO metric_block (id, run_pk, key_id, "count", min_step, max_step, '
            'step_data, timestamp_data, value_data) SELECT id, owner_id, key_id, "count", '
            "min_step, max_step, "
            f"step_data, timestamp_data, value_data FROM series_block WHERE owner_kind = {RUN}"
        )
    )
    _reset_sequence(conn, "metric_key")
    _reset_sequence(conn, "metric_block")
    _drop("series_batch", "series_latest", "series_block", "series_owner", "series_key")
