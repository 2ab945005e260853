"""The series store: every numeric series (run metrics, entity telemetry) as packed blocks,
keyed by owner and key, with the same reads for every owner (full history, a step or time
range, the latest values) and one way to serialise a history (JSON or Arrow)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select

from modelyard.errors import NotFound
from modelyard.floats import encode_float
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, dialect_insert

Floats = np.ndarray[Any, np.dtype[np.float64]]
Ints = np.ndarray[Any, np.dtype[np.int64]]
Axis = Literal["step", "time"]
ARROW = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose series: a run (kind SERIES_RUN, id run.pk) or another entity (SERIES_ENTITY,
    id series_owner.id)."""

    kind: int
    id: int


def run_owner(run_pk: int) -> Owner:
    return Owner(t.SERIES_RUN, run_pk)


@dataclass(frozen=True)
class Points:
    """A validated batch of points as columns, any number of keys."""

    keys: list[str]  # one per point
    values: Floats
    steps: Ints
    timestamps: Ints

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class History:
    key: str
    steps: Ints
    timestamps: Ints
    values: Floats


@dataclass(frozen=True)
class Latest:
    step: int
    timestamp: int
    value: float


def key_ids(tx: Tx, store: Store, names: set[str]) -> dict[str, int]:
    """Intern key names; the mapping never changes once committed, so it is cached."""
    ids = {k: store.metric_keys[k] for k in names if k in store.metric_keys}
    missing = sorted(names - ids.keys())
    if missing:
        ins = dialect_insert(tx.conn, t.series_key).on_conflict_do_nothing()
        tx.conn.execute(ins, [{"name": k} for k in missing])
        found = tx.conn.execute(
            select(t.series_key.c.name, t.series_key.c.id).where(t.series_key.c.name.in_(missing))
        ).all()
        fresh = {name: int(key_id) for name, key_id in found}
        tx.new_metric_keys.update(fresh)
        ids.update(fresh)
    return ids


_SL = t.series_latest
_SB = t.series_block
_LATEST: dict[str, Any] = {}
_BLOCK_INSERT = insert(_SB)


def _latest_upsert(tx: Tx) -> Any:
    """Move a latest value forward only for a higher step, or the same step and a later time."""
    name = tx.conn.dialect.name
    if name not in _LATEST:
        ins = dialect_insert(tx.conn, _SL)
        newer = or_(
            ins.excluded.step > _SL.c.step,
            and_(ins.excluded.step == _SL.c.step, ins.excluded.timestamp >= _SL.c.timestamp),
        )
        _LATEST[name] = ins.on_conflict_do_update(
            index_elements=[_SL.c.owner_kind, _SL.c.owner_id, _SL.c.key_id],
            set_={c: ins.excluded[c] for c in ("step", "timestamp", "value", "is_nan")},
            where=newer,
        )
    return _LATEST[name]


def _block(owner: Owner, key_id: int, steps: Ints, stamps: Ints, values: Floats) -> dict[str, Any]:
    return {
        "owner_kind": owner.kind,
        "owner_id": owner.id,
        "key_id": key_id,
        "count": len(steps),
        "min_step": int(steps[0]),
        "max_step": int(steps[-1]),
        "min_time": int(stamps.min()),
        "max_time": int(stamps.max()),
        "step_data": steps.astype("<i8").tobytes(),
        "timestamp_data": stamps.astype("<i8").tobytes(),
        "value_data": values.astype("<f8").tobytes(),
    }


def append(tx: Tx, store: Store, owner: Owner, cols: Points) -> None:
    """Store a batch as one block per key, in history order, and move latest values forward.
    The caller holds the owner's lock (a run's row), so no writer races the compaction."""
    if not len(cols):
        return
    ids = key_ids(tx, store, set(cols.keys))
    keys = np.fromiter((ids[k] for k in cols.keys), np.int64, len(cols))
    order = np.lexsort((cols.timestamps, cols.steps, keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    blocks, latest = [], []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        idx = order[a:b]
        steps, stamps, values = cols.steps[idx], cols.timestamps[idx], cols.values[idx]
        key_id = int(sorted_keys[a])
        blocks.append(_block(owner, key_id, steps, stamps, values))
        last = float(values[-1])
        latest.append(
            {
                "owner_kind": owner.kind,
                "owner_id": owner.id,
                "key_id": key_id,
                "step": int(steps[-1]),
                "timestamp": int(stamps[-1]),
                "value": 0.0 if math.isnan(last) else last,
                "is_nan": math.isnan(last),
            }
        )
    tx.conn.execute(_BLOCK_INSERT, blocks)
    tx.conn.execute(_latest_upsert(tx), latest)
    due = _due_for_compaction(store, owner, blocks)
    if due:
        compact(tx, owner, due)


# Many tiny batches (a loop logging a few points at a time) would leave a history as thousands
# of tiny blocks. Every COMPACT_AFTER small blocks a process writes for a key, it looks: when
# the key's latest blocks hold COMPACT_AFTER small ones in a row, they are merged into one, in
# the same transaction.
SMALL_BLOCK = 256
COMPACT_AFTER = 32


def _due_for_compaction(store: Store, owner: Owner, blocks: list[dict[str, Any]]) -> list[int]:
    due = []
    for b in blocks:
        if b["count"] < SMALL_BLOCK:
            counter = (owner.kind, owner.id, b["key_id"])
            seen = store.small_blocks.get(counter, 0) + 1
            store.small_blocks[counter] = seen % COMPACT_AFTER
            if seen >= COMPACT_AFTER:
                due.append(b["key_id"])
    if len(store.small_blocks) > 100_000:
        store.small_blocks.clear()
    return due


def _owned(owner: Owner) -> Any:
    return and_(_SB.c.owner_kind == owner.kind, _SB.c.owner_id == owner.id)


def compact(tx: Tx, owner: Owner, keys: list[int]) -> None:
    """Merge each key's trailing run of small blocks (those after its last large block) into
    one block; merging only a trailing run keeps points with equal step and timestamp in the
    order they arrived."""
    large = _SB.alias("large")
    last_large = (
        select(func.coalesce(func.max(large.c.id), 0))
        .where(
            large.c.owner_kind == _SB.c.owner_kind,
            large.c.owner_id == _SB.c.owner_id,
            large.c.key_id == _SB.c.key_id,
            large.c.count >= SMALL_BLOCK,
        )
        .scalar_subquery()
    )
    trailing = and_(_owned(owner), _SB.c.id > last_large)
    counts = tx.conn.execute(
        select(_SB.c.key_id, func.count())
        .where(trailing, _SB.c.key_id.in_(keys))
        .group_by(_SB.c.key_id)
    ).all()
    for key_id, count in counts:
        if count >= COMPACT_AFTER:
            rows = tx.conn.execute(
                select(_SB.c.id, _SB.c.step_data, _SB.c.timestamp_data, _SB.c.value_data)
                .where(trailing, _SB.c.key_id == key_id)
                .order_by(_SB.c.id)
            ).all()
            steps, stamps, values = _decode(rows, 1)
            order = np.lexsort((stamps, steps))  # stable: ties keep their arrival order
            tx.conn.execute(_SB.delete().where(_SB.c.id.in_([r.id for r in rows])))
            block = _block(owner, key_id, steps[order], stamps[order], values[order])
            tx.conn.execute(_BLOCK_INSERT, [block])


def _decode(rows: Sequence[Any], first: int = 0) -> tuple[Ints, Ints, Floats]:
    """The concatenated columns of block rows whose data columns start at ``first``."""
    steps = np.frombuffer(b"".join(r[first] for r in rows), dtype="<i8").astype(np.int64)
    stamps = np.frombuffer(b"".join(r[first + 1] for r in rows), dtype="<i8").astype(np.int64)
    values = np.frombuffer(b"".join(r[first + 2] for r in rows), dtype="<f8").astype(np.float64)
    return steps, stamps, values


_KEY_ID = select(t.series_key.c.id).where(t.series_key.c.name == bindparam("key"))
_BLOCKS = (
    select(_SB.c.step_data, _SB.c.timestamp_data, _SB.c.value_data)
    .where(
        _SB.c.owner_kind == bindparam("kind"),
        _SB.c.owner_id == bindparam("owner"),
        _SB.c.key_id == bindparam("key_id"),
    )
    .order_by(_SB.c.id)
)
_BOUNDS: dict[Axis, tuple[Any, Any]] = {
    "step": (_SB.c.min_step, _SB.c.max_step),
    "time": (_SB.c.min_time, _SB.c.max_time),
}


def read_history(
    conn: Connection,
    owner: Owner,
    key: str,
    *,
    axis: Axis = "step",
    lo: int | None = None,
    hi: int | None = None,
    what: str = "this run",
) -> History:
    """Every point of a series, ordered by step then timestamp (then arrival); with ``lo``
    or ``hi``, only those whose step (or time) lies in [lo, hi], read from the blocks that
    can hold them."""
    key_id = conn.execute(_KEY_ID, {"key": key}).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    query, bind = _BLOCKS, {"kind": owner.kind, "owner": owner.id, "key_id": key_id}
    low, high = _BOUNDS[axis]
    if lo is not None:
        query = query.where(high >= lo)
    if hi is not None:
        query = query.where(low <= hi)
    rows = conn.execute(query, bind).all()
    if not rows and (query is _BLOCKS or not conn.execute(_BLOCKS.limit(1), bind).first()):
        raise NotFound(f"metric {key!r} was not logged in {what}")
    steps, stamps, values = _decode(rows)
    if len(rows) > 1 and not _in_order(steps, stamps):
        order = np.lexsort((stamps, steps))
        steps, stamps, values = steps[order], stamps[order], values[order]
    if lo is not None or hi is not None:
        xs = steps if axis == "step" else stamps
        keep = np.ones(len(xs), dtype=bool)
        if lo is not None:
            keep &= xs >= lo
        if hi is not None:
            keep &= xs <= hi
        steps, stamps, values = steps[keep], stamps[keep], values[keep]
    return History(key, steps, stamps, values)


def _in_order(steps: Ints, stamps: Ints) -> bool:
    ds = np.diff(steps)
    return bool(np.all((ds > 0) | ((ds == 0) & (np.diff(stamps) >= 0))))


def latest(conn: Connection, owner: Owner, keys: Iterable[str] | None = None) -> dict[str, Latest]:
    """The latest point of each key of an owner (highest step, then latest time)."""
    query = (
        select(t.series_key.c.name, _SL.c.step, _SL.c.timestamp, _SL.c.value, _SL.c.is_nan)
        .join(t.series_key, t.series_key.c.id == _SL.c.key_id)
        .where(_SL.c.owner_kind == owner.kind, _SL.c.owner_id == owner.id)
        .order_by(t.series_key.c.name)
    )
    if keys is not None:
        query = query.where(t.series_key.c.name.in_(list(keys)))
    return {
        name: Latest(step, stamp, math.nan if is_nan else value)
        for name, step, stamp, value, is_nan in conn.execute(query).all()
    }


def encode_history(hist: History, fmt: Literal["json", "arrow"]) -> tuple[bytes, str]:
    """A history as a response body and its media type: JSON (NaN and infinities as the
    strings "NaN", "Infinity", "-Infinity") or an Arrow IPC stream of step, timestamp, value."""
    if fmt == "arrow":
        table = pa.table({"step": hist.steps, "timestamp": hist.timestamps, "value": hist.values})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes(), ARROW
    values: list[float | str] = hist.values.tolist()
    for i in np.flatnonzero(~np.isfinite(hist.values)).tolist():
        values[i] = encode_float(values[i])  # type: ignore[arg-type]
    body = {"key": hist.key, "steps": hist.steps, "timestamps": hist.timestamps, "values": values}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), "application/json"
