"""Run metrics: validation of batches (rows, columns, Arrow), and a run's points written to
and read from the series store."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection

from modelyard.errors import InvalidInput, PayloadTooLarge
from modelyard.floats import SPECIAL_FLOATS, encode_float
from modelyard.limits import INT64_MAX
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx
from modelyard.schemas import MetricPointIn
from modelyard.services import series_store
from modelyard.services.series_store import Page, PageRequest, Points, run_owner

MetricColumns = Points


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


def columns_from_body(
    rows: Sequence[MetricPointIn], columns: dict[str, Any] | None, now: int, limit: int
) -> MetricColumns:
    """The points of a JSON batch, rows then columns, at most ``limit`` of them."""
    values = (columns or {}).get("value", [])  # a string here is refused below, not counted
    check_size(len(rows) + (len(values) if isinstance(values, list) else 0), limit)
    points = columns_from_rows(rows, now)
    if columns is None:
        return points
    cols = columns_from_dict(columns, now)
    if not len(points):
        return cols
    return build_columns(
        points.keys + cols.keys,
        [*points.values.tolist(), *cols.values.tolist()],
        [*points.steps.tolist(), *cols.steps.tolist()],
        [*points.timestamps.tolist(), *cols.timestamps.tolist()],
    )


def _check_keys(keys: Sequence[Any]) -> None:
    # Unique keys are checked once; a key may be any JSON value, even a dict, so types first.
    checked = set(keys) if set(map(type, keys)) <= {str} else keys
    for k in checked:
        if not isinstance(k, str) or not 1 <= len(k) <= t.MAX_KEY or "\x00" in k:
            i = next(n for n, other in enumerate(keys) if other is k)
            raise InvalidInput(
                f"metric key #{i} must be a string of 1 to {t.MAX_KEY} characters without NUL, "
                f"got {k!r:.80}"
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


def insert_points(tx: Tx, store: Store, run_pk: int, cols: MetricColumns) -> None:
    """Store a batch of a run's points; the caller holds the run's row lock."""
    series_store.append(tx, store, run_owner(run_pk), cols)


def encode_value(value: float, is_nan: bool) -> float | str:
    """A stored value (NaN kept as a flag) as JSON can carry it."""
    return encode_float(math.nan if is_nan else value)


def read_page(conn: Connection, run_pk: int, key: str, req: PageRequest) -> Page:
    """One page of a run's metric: points in history order within the asked range."""
    return series_store.read_page(conn, run_owner(run_pk), key, req)
