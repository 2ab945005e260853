"""Metric points: validation of batches, bulk insert with latest values, history reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select

from modelyard.errors import InvalidInput, NotFound, PayloadTooLarge
from modelyard.floats import SPECIAL_FLOATS, encode_float
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, dialect_insert
from modelyard.schemas import MetricPointIn

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class MetricColumns:
    """A validated batch of points as columns."""

    keys: list[str]  # one per point
    values: np.ndarray[Any, np.dtype[np.float64]]
    steps: np.ndarray[Any, np.dtype[np.int64]]
    timestamps: np.ndarray[Any, np.dtype[np.int64]]

    def __len__(self) -> int:
        return len(self.keys)


def _float(v: object, i: int) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InvalidInput(f"metric value #{i} must be a number, got {v!r}")
    if isinstance(v, str):
        if v not in SPECIAL_FLOATS:
            raise InvalidInput(
                f"metric value #{i} must be a number or one of NaN, Infinity, -Infinity; got {v!r}"
            )
        return SPECIAL_FLOATS[v]
    try:
        return float(v)
    except OverflowError:  # an int beyond any float
        raise InvalidInput(f"metric value #{i} is out of the 64-bit float range") from None


def _ints(values: Sequence[object], what: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    if set(map(type, values)) <= {int}:  # the common case, checked without a Python loop
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int) or not -INT64_MAX <= v <= INT64_MAX:
            raise InvalidInput(f"{what} #{i} must be a 64-bit integer, got {v!r}")
    return np.asarray(values, dtype=np.int64)


def _floats(values: Sequence[object]) -> np.ndarray[Any, np.dtype[np.float64]]:
    if set(map(type, values)) <= {float, int}:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            pass
    return np.fromiter((_float(v, i) for i, v in enumerate(values)), np.float64, len(values))


def columns_from_rows(rows: Sequence[MetricPointIn], now: int) -> MetricColumns:
    return build_columns(
        [r.key for r in rows],
        [r.value for r in rows],
        [r.step for r in rows],
        [now if r.timestamp is None else r.timestamp for r in rows],
    )


def columns_from_dict(cols: dict[str, list[Any]] | dict[str, Any], now: int) -> MetricColumns:
    unknown = set(cols) - {"key", "value", "step", "timestamp"}
    if unknown:
        raise InvalidInput(f"unknown metric columns: {sorted(unknown)}")
    if "value" not in cols or "key" not in cols:
        raise InvalidInput("metric columns need at least 'key' and 'value'")
    values = cols["value"]
    if not isinstance(values, list):
        raise InvalidInput("metric column 'value' must be a list")
    n = len(values)
    keys = cols["key"]
    keys = [keys] * n if isinstance(keys, str) else keys
    steps = cols.get("step", [0] * n)
    stamps = cols.get("timestamp", [now] * n)
    return build_columns(keys, values, steps, stamps)


def _check_keys(keys: Sequence[Any]) -> None:
    # Unique keys are checked once; a key may be any JSON value, even a dict, so types first.
    checked = set(keys) if set(map(type, keys)) <= {str} else keys
    for k in checked:
        if not isinstance(k, str) or not 1 <= len(k) <= t.MAX_KEY:
            i = next(n for n, other in enumerate(keys) if other is k)
            raise InvalidInput(
                f"metric key #{i} must be a string of 1 to {t.MAX_KEY} characters, got {k!r:.80}"
            )


def build_columns(
    keys: Sequence[Any], values: Sequence[Any], steps: Sequence[Any], stamps: Sequence[Any]
) -> MetricColumns:
    n = len(values)
    for name, col in (("key", keys), ("step", steps), ("timestamp", stamps)):
        if not isinstance(col, list | tuple) or len(col) != n:
            raise InvalidInput(f"metric column {name!r} must be a list of {n} items, like 'value'")
    _check_keys(keys)
    ts = _ints(stamps, "timestamp")
    if n and ts.min() < 0:
        raise InvalidInput("metric timestamps are milliseconds since the epoch and must be >= 0")
    return MetricColumns(
        keys=list(keys),
        values=_floats(values),
        steps=_ints(steps, "step"),
        timestamps=ts,
    )


ARROW_COLUMNS = {"key", "value", "step", "timestamp"}


def columns_from_arrow(raw: bytes, now: int, limit: int) -> MetricColumns:
    """Points sent as an Arrow IPC stream with columns key (string), value (float or int),
    and optional step and timestamp (integers): the fastest way in, no text parsing at all."""
    try:
        table = pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"the body is not an Arrow IPC stream: {exc}") from None
    unknown = set(table.column_names) - ARROW_COLUMNS
    if unknown or not {"key", "value"} <= set(table.column_names):
        raise InvalidInput(
            "an Arrow batch has the columns key and value, and optionally step and timestamp; "
            f"got {table.column_names}"
        )
    check_size(table.num_rows, limit)
    for name in table.column_names:
        if table.column(name).null_count:
            raise InvalidInput(f"metric column {name!r} has null values")
    checks = {
        "key": pa.types.is_string,
        "value": _is_number,
        "step": pa.types.is_integer,
        "timestamp": pa.types.is_integer,
    }
    for name in table.column_names:
        kind = table.schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not checks[name](kind) and not (name == "key" and pa.types.is_large_string(kind)):
            raise InvalidInput(f"metric column {name!r} cannot be of Arrow type {kind}")
    n = table.num_rows

    def ints(name: str, default: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        if name not in table.column_names:
            return np.full(n, default, dtype=np.int64)
        try:
            column: np.ndarray[Any, np.dtype[np.int64]] = (
                table.column(name).cast(pa.int64()).to_numpy()
            )
        except pa.ArrowInvalid:
            raise InvalidInput(f"metric column {name!r} holds values beyond 64 bits") from None
        return column

    keys = table.column("key").cast(pa.string()).to_pylist()
    _check_keys(keys)
    stamps = ints("timestamp", now)
    if n and stamps.min() < 0:
        raise InvalidInput("metric timestamps are milliseconds since the epoch and must be >= 0")
    values = table.column("value").cast(pa.float64()).to_numpy()
    return MetricColumns(keys=keys, values=values, steps=ints("step", 0), timestamps=stamps)


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind))


def check_size(n: int, limit: int) -> None:
    if n > limit:
        raise PayloadTooLarge(f"{n} metric points in one request; the limit is {limit}")


def metric_key_ids(tx: Tx, store: Store, names: set[str]) -> dict[str, int]:
    """Intern metric key names; the mapping never changes once committed, so it is cached."""
    ids = {k: store.metric_keys[k] for k in names if k in store.metric_keys}
    missing = sorted(names - ids.keys())
    if missing:
        ins = dialect_insert(tx.conn, t.metric_key).on_conflict_do_nothing()
        tx.conn.execute(ins, [{"name": k} for k in missing])
        found = tx.conn.execute(
            select(t.metric_key.c.name, t.metric_key.c.id).where(t.metric_key.c.name.in_(missing))
        ).all()
        fresh = {name: int(key_id) for name, key_id in found}
        tx.new_metric_keys.update(fresh)
        ids.update(fresh)
    return ids


_LATEST: dict[str, Any] = {}


def _latest_upsert(tx: Tx) -> Any:
    """Move a latest value forward only for a higher step, or the same step and a later time."""
    name = tx.conn.dialect.name
    if name not in _LATEST:
        lm = t.latest_metric
        ins = dialect_insert(tx.conn, lm)
        newer = or_(
            ins.excluded.step > lm.c.step,
            and_(ins.excluded.step == lm.c.step, ins.excluded.timestamp >= lm.c.timestamp),
        )
        _LATEST[name] = ins.on_conflict_do_update(
            index_elements=[lm.c.run_pk, lm.c.key_id],
            set_={c: ins.excluded[c] for c in ("step", "timestamp", "value", "is_nan")},
            where=newer,
        )
    return _LATEST[name]


def insert_points(tx: Tx, store: Store, run_pk: int, cols: MetricColumns) -> None:
    """Store a batch as one block per key, in history order, and move latest values forward."""
    if not len(cols):
        return
    ids = metric_key_ids(tx, store, set(cols.keys))
    key_ids = np.fromiter((ids[k] for k in cols.keys), np.int64, len(cols))
    order = np.lexsort((cols.timestamps, cols.steps, key_ids))
    sorted_keys = key_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    blocks, latest = [], []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        idx = order[a:b]
        steps, stamps, values = cols.steps[idx], cols.timestamps[idx], cols.values[idx]
        key_id = int(sorted_keys[a])
        blocks.append(
            {
                "run_pk": run_pk,
                "key_id": key_id,
                "count": b - a,
                "min_step": int(steps[0]),
                "max_step": int(steps[-1]),
                "step_data": steps.astype("<i8").tobytes(),
                "timestamp_data": stamps.astype("<i8").tobytes(),
                "value_data": values.astype("<f8").tobytes(),
            }
        )
        last = float(values[-1])
        latest.append(
            {
                "run_pk": run_pk,
                "key_id": key_id,
                "step": int(steps[-1]),
                "timestamp": int(stamps[-1]),
                "value": 0.0 if math.isnan(last) else last,
                "is_nan": math.isnan(last),
            }
        )
    tx.conn.execute(_BLOCK_INSERT, blocks)
    tx.conn.execute(_latest_upsert(tx), latest)
    due = []
    for b in blocks:
        if b["count"] < SMALL_BLOCK:
            seen = store.small_blocks.get((run_pk, b["key_id"]), 0) + 1
            store.small_blocks[(run_pk, b["key_id"])] = seen % COMPACT_AFTER
            if seen >= COMPACT_AFTER:
                due.append(b["key_id"])
    if len(store.small_blocks) > 100_000:
        store.small_blocks.clear()
    if due:
        compact(tx, run_pk, due)


_BLOCK_INSERT = insert(t.metric_block)

# Many tiny batches (a loop logging a few points at a time) would leave a history as thousands
# of tiny blocks. Every COMPACT_AFTER small blocks a process writes for a key, it looks: when
# the key's latest blocks hold COMPACT_AFTER small ones in a row, they are merged into one, in
# the same transaction (the run row is locked, so no writer races it).
SMALL_BLOCK = 256
COMPACT_AFTER = 32
_MB = t.metric_block


def compact(tx: Tx, run_pk: int, key_ids: list[int]) -> None:
    """Merge each key's trailing run of small blocks (those after its last large block) into
    one block; merging only a trailing run keeps points with equal step and timestamp in the
    order they arrived."""
    large = _MB.alias("large")
    last_large = (
        select(func.coalesce(func.max(large.c.id), 0))
        .where(
            large.c.run_pk == _MB.c.run_pk,
            large.c.key_id == _MB.c.key_id,
            large.c.count >= SMALL_BLOCK,
        )
        .scalar_subquery()
    )
    trailing = _MB.c.id > last_large
    counts = tx.conn.execute(
        select(_MB.c.key_id, func.count())
        .where(_MB.c.run_pk == run_pk, _MB.c.key_id.in_(key_ids), trailing)
        .group_by(_MB.c.key_id)
    ).all()
    for key_id, count in counts:
        if count >= COMPACT_AFTER:
            rows = tx.conn.execute(
                select(_MB.c.id, _MB.c.step_data, _MB.c.timestamp_data, _MB.c.value_data)
                .where(_MB.c.run_pk == run_pk, _MB.c.key_id == key_id, trailing)
                .order_by(_MB.c.id)
            ).all()
            _merge(tx, run_pk, key_id, rows)


def _merge(tx: Tx, run_pk: int, key_id: int, rows: Sequence[Any]) -> None:
    steps = np.frombuffer(b"".join(r.step_data for r in rows), dtype="<i8")
    stamps = np.frombuffer(b"".join(r.timestamp_data for r in rows), dtype="<i8")
    values = np.frombuffer(b"".join(r.value_data for r in rows), dtype="<f8")
    order = np.lexsort((stamps, steps))  # stable: ties keep their arrival order
    steps, stamps, values = steps[order], stamps[order], values[order]
    tx.conn.execute(_MB.delete().where(_MB.c.id.in_([r.id for r in rows])))
    block = {
        "run_pk": run_pk,
        "key_id": key_id,
        "count": len(steps),
        "min_step": int(steps[0]),
        "max_step": int(steps[-1]),
        "step_data": steps.astype("<i8").tobytes(),
        "timestamp_data": stamps.astype("<i8").tobytes(),
        "value_data": values.astype("<f8").tobytes(),
    }
    tx.conn.execute(_BLOCK_INSERT, [block])


def encode_value(value: float, is_nan: bool) -> float | str:
    """A stored value (NaN kept as a flag) as JSON can carry it."""
    return encode_float(math.nan if is_nan else value)


@dataclass(frozen=True)
class History:
    key: str
    steps: np.ndarray[Any, np.dtype[np.int64]]
    timestamps: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]


_KEY_ID = select(t.metric_key.c.id).where(t.metric_key.c.name == bindparam("key"))
_BLOCKS = (
    select(t.metric_block.c.step_data, t.metric_block.c.timestamp_data, t.metric_block.c.value_data)
    .where(
        t.metric_block.c.run_pk == bindparam("run_pk"),
        t.metric_block.c.key_id == bindparam("key_id"),
    )
    .order_by(t.metric_block.c.id)
)


def read_history(conn: Connection, run_pk: int, key: str) -> History:
    """Every point of a metric, ordered by step then timestamp (then arrival)."""
    key_id = conn.execute(_KEY_ID, {"key": key}).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    rows = conn.execute(_BLOCKS, {"run_pk": run_pk, "key_id": key_id}).all()
    if not rows:
        raise NotFound(f"metric {key!r} was not logged in this run")
    steps = np.frombuffer(b"".join(r[0] for r in rows), dtype="<i8").astype(np.int64)
    stamps = np.frombuffer(b"".join(r[1] for r in rows), dtype="<i8").astype(np.int64)
    values = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f8").astype(np.float64)
    if len(rows) > 1 and not _in_order(steps, stamps):
        order = np.lexsort((stamps, steps))
        steps, stamps, values = steps[order], stamps[order], values[order]
    return History(key, steps, stamps, values)


def _in_order(steps: np.ndarray[Any, Any], stamps: np.ndarray[Any, Any]) -> bool:
    ds = np.diff(steps)
    return bool(np.all((ds > 0) | ((ds == 0) & (np.diff(stamps) >= 0))))
