"""Metric points: validation of batches, bulk insert with latest values, history reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, bindparam, or_, select

from modelyard.errors import InvalidInput, NotFound, PayloadTooLarge
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, dialect_insert
from modelyard.schemas import MetricPointIn

SPECIAL = {
    "NaN": math.nan,
    "nan": math.nan,
    "Infinity": math.inf,
    "inf": math.inf,
    "-Infinity": -math.inf,
    "-inf": -math.inf,
}
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
        if v not in SPECIAL:
            raise InvalidInput(
                f"metric value #{i} must be a number or one of NaN, Infinity, -Infinity; got {v!r}"
            )
        return SPECIAL[v]
    try:
        return float(v)
    except OverflowError:  # an int beyond any float
        raise InvalidInput(f"metric value #{i} is out of the 64-bit float range") from None


def _ints(values: Sequence[object], what: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int) or not -INT64_MAX <= v <= INT64_MAX:
            raise InvalidInput(f"{what} #{i} must be a 64-bit integer, got {v!r}")
    return np.asarray(values, dtype=np.int64)


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


def build_columns(
    keys: Sequence[Any], values: Sequence[Any], steps: Sequence[Any], stamps: Sequence[Any]
) -> MetricColumns:
    n = len(values)
    for name, col in (("key", keys), ("step", steps), ("timestamp", stamps)):
        if not isinstance(col, list | tuple) or len(col) != n:
            raise InvalidInput(f"metric column {name!r} must be a list of {n} items, like 'value'")
    for i, k in enumerate(keys):  # not set(keys): a key may be any JSON value, even a dict
        if not isinstance(k, str) or not 1 <= len(k) <= t.MAX_KEY:
            raise InvalidInput(
                f"metric key #{i} must be a string of 1 to {t.MAX_KEY} characters, got {k!r:.80}"
            )
    ts = _ints(stamps, "timestamp")
    if n and ts.min() < 0:
        raise InvalidInput("metric timestamps are milliseconds since the epoch and must be >= 0")
    return MetricColumns(
        keys=list(keys),
        values=np.fromiter((_float(v, i) for i, v in enumerate(values)), np.float64, n),
        steps=_ints(steps, "step"),
        timestamps=ts,
    )


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


def insert_points(tx: Tx, store: Store, run_pk: int, cols: MetricColumns) -> None:
    """Insert points (an identical point is a no-op) and move latest values forward."""
    if not len(cols):
        return
    ids = metric_key_ids(tx, store, set(cols.keys))
    key_ids = np.fromiter((ids[k] for k in cols.keys), np.int64, len(cols))
    is_nan = np.isnan(cols.values)
    stored = np.where(is_nan, 0.0, cols.values)
    rows = list(
        zip(
            [run_pk] * len(cols),
            key_ids.tolist(),
            cols.steps.tolist(),
            cols.timestamps.tolist(),
            stored.tolist(),
            is_nan.tolist(),
            strict=True,
        )
    )
    mark = "%s" if tx.is_postgres else "?"
    tx.conn.exec_driver_sql(
        "INSERT INTO metric_point (run_pk, key_id, step, timestamp, value, is_nan) "
        f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT DO NOTHING",
        rows,
    )
    # The latest point of each key: the highest step, then the latest timestamp.
    order = np.lexsort((cols.timestamps, cols.steps, key_ids))
    last = order[np.r_[key_ids[order][1:] != key_ids[order][:-1], True]]
    lm = t.latest_metric
    ins = dialect_insert(tx.conn, lm)
    newer = or_(
        ins.excluded.step > lm.c.step,
        and_(ins.excluded.step == lm.c.step, ins.excluded.timestamp >= lm.c.timestamp),
    )
    upsert = ins.on_conflict_do_update(
        index_elements=[lm.c.run_pk, lm.c.key_id],
        set_={c: ins.excluded[c] for c in ("step", "timestamp", "value", "is_nan")},
        where=newer,
    )
    tx.conn.execute(
        upsert,
        [
            {
                "run_pk": run_pk,
                "key_id": int(key_ids[i]),
                "step": int(cols.steps[i]),
                "timestamp": int(cols.timestamps[i]),
                "value": float(stored[i]),
                "is_nan": bool(is_nan[i]),
            }
            for i in last
        ],
    )


def encode_value(value: float, is_nan: bool) -> float | str:
    """JSON has no NaN or infinities; they travel as strings, like MLflow's JSON API."""
    if is_nan:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


@dataclass(frozen=True)
class History:
    key: str
    steps: np.ndarray[Any, np.dtype[np.int64]]
    timestamps: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]


_HISTORY = (
    select(
        t.metric_point.c.step,
        t.metric_point.c.timestamp,
        t.metric_point.c.value,
        t.metric_point.c.is_nan,
    )
    .where(
        t.metric_point.c.run_pk == bindparam("run_pk"),
        t.metric_point.c.key_id == bindparam("key_id"),
    )
    .order_by(t.metric_point.c.step, t.metric_point.c.timestamp)
)


def read_history(conn: Connection, run_pk: int, key: str) -> History:
    key_id = conn.execute(
        select(t.metric_key.c.id).where(t.metric_key.c.name == key)
    ).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    result = conn.execute(_HISTORY, {"run_pk": run_pk, "key_id": key_id})
    rows = result.cursor.fetchall() if result.cursor is not None else []
    if not rows:
        raise NotFound(f"metric {key!r} was not logged in this run")
    arr = np.array(rows, dtype=np.float64)
    values = arr[:, 2]
    values[arr[:, 3] != 0] = np.nan
    # Steps and timestamps beyond 2**53 do not survive float64; read them exactly then.
    if np.abs(arr[:, :2]).max() >= 2**53:
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        stamps = np.array([r[1] for r in rows], dtype=np.int64)
    else:
        steps, stamps = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    return History(key, steps, stamps, values)
