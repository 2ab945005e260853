"""Ingesting a batch of metric points, params and tags sent as JSON or as an Arrow stream."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from pydantic import TypeAdapter, ValidationError

from modelyard.errors import InvalidFields
from modelyard.metadata.store import Store, now_ms
from modelyard.schemas import BatchLog, PointsBatch, SeriesBatch
from modelyard.schemas.metrics import MetricPointIn
from modelyard.services import metrics, runs, timeseries
from modelyard.services.bodies import load_json, validate
from modelyard.services.idempotency import batch_digest
from modelyard.services.metrics import MetricColumns
from modelyard.services.series_store import ARROW
from modelyard.services.threads import off_loop

B = TypeVar("B", bound=PointsBatch)
ROWS = TypeAdapter(list[MetricPointIn])
# Rows validated in one call. Validation holds the interpreter lock until it returns, so a
# batch of many rows is validated a slice at a time: between slices other requests run.
SLICE = 2_000


def _points_in(data: object) -> int:
    """How many points a parsed JSON batch holds, counted before it is validated (0 when its
    shape is wrong: validation then says what is wrong)."""
    if not isinstance(data, dict):
        return 0
    rows, columns = data.get("metrics"), data.get("columns")
    values = columns.get("value") if isinstance(columns, dict) else None
    return (len(rows) if isinstance(rows, list) else 0) + (
        len(values) if isinstance(values, list) else 0
    )


def _validate_batch(data: object, model: type[B], now: int) -> tuple[B, MetricColumns | None]:
    """A parsed batch validated. Many rows are validated a slice at a time and kept as
    columns (returned beside the body, whose ``metrics`` is then empty): a batch's worth of
    row models alive at once would also have the garbage collector scan them all, more than
    once, and hold up every other request while it does."""
    rows = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(rows, list) or len(rows) <= SLICE:
        return validate(data, model), None
    body = validate({**data, "metrics": []}, model)
    keys: list[str] = []
    values: list[float | str] = []
    steps: list[int] = []
    stamps: list[int] = []
    for start in range(0, len(rows), SLICE):
        try:
            part = ROWS.validate_python(rows[start : start + SLICE])
        except ValidationError as exc:
            errors = [
                {**e, "loc": ("metrics", start + int(e["loc"][0]), *e["loc"][1:])}
                for e in exc.errors(include_url=False)
            ]
            raise InvalidFields.from_errors(errors) from None
        keys += [r.key for r in part]
        values += [r.value for r in part]
        steps += [r.step for r in part]
        stamps += [now if r.timestamp is None else r.timestamp for r in part]
    return body, metrics.build_columns(keys, values, steps, stamps)


def parse_points(
    raw: bytes, content_type: str, model: type[B], *, max_points: int, now: int
) -> tuple[B | None, MetricColumns]:
    """The points of a batch body (JSON ``model`` or an Arrow IPC stream, which has no body
    model), more than ``max_points`` refused before they are validated; ``now`` for the
    points without a timestamp."""
    if content_type.startswith(ARROW):
        return None, metrics.columns_from_arrow(raw, now, max_points)
    # Parsed with orjson rather than by the framework: batches are the hottest path of the
    # API and this parses them several times faster.
    data = load_json(raw)
    metrics.check_size(_points_in(data), max_points)
    body, rows = _validate_batch(data, model, now)
    points = metrics.columns_from_body(body.metrics, body.columns, now, max_points)
    if rows is None or not len(points):
        return body, rows if rows is not None else points
    return body, MetricColumns(
        rows.keys + points.keys,
        np.concatenate([rows.values, points.values]),
        np.concatenate([rows.steps, points.steps]),
        np.concatenate([rows.timestamps, points.timestamps]),
    )


def parse_batch(
    raw: bytes, content_type: str, *, max_points: int, keyed: bool
) -> tuple[dict[str, str], dict[str, str], MetricColumns, str | None]:
    """The params, tags and metric points of a run's batch body, and their digest when the
    batch came with an idempotency key (``keyed``; nothing else needs it)."""
    now = now_ms()
    body, points = parse_points(raw, content_type, BatchLog, max_points=max_points, now=now)
    params, tags = (body.params, body.tags) if body else ({}, {})
    return params, tags, points, batch_digest(params, tags, points, now) if keyed else None


def _record_series_batch(
    store: Store, *, urn: str, raw: bytes, content_type: str, max_points: int, actor: str,
    batch_key: str | None,
) -> int:  # fmt: skip
    now = now_ms()
    _, points = parse_points(raw, content_type, SeriesBatch, max_points=max_points, now=now)
    return timeseries.record(
        store, urn=urn, points=points, actor=actor, batch_key=batch_key,
        batch_digest=batch_digest({}, {}, points, now) if batch_key else None,
    )  # fmt: skip


async def ingest_series_batch(
    store: Store,
    *,
    urn: str,
    raw: bytes,
    content_type: str,
    max_points: int,
    actor: str,
    batch_key: str | None = None,
) -> int:
    """Parse an entity's series batch (as a run's, without params and tags) and record it in
    one transaction, both in a worker thread, off the event loop; returns the points recorded
    (0 for a batch sent again with the same ``batch_key``)."""
    return await off_loop(
        _record_series_batch, store, urn=urn, raw=raw, content_type=content_type,
        max_points=max_points, actor=actor, batch_key=batch_key,
    )  # fmt: skip


def _log_batch(
    store: Store, *, run_id: str, raw: bytes, content_type: str, max_points: int, actor: str,
    batch_key: str | None,
) -> bool:  # fmt: skip
    params, tags, points, digest = parse_batch(
        raw, content_type, max_points=max_points, keyed=batch_key is not None
    )
    return runs.log_batch(
        store, run_id=run_id, params=params, tags=tags, points=points, actor=actor,
        batch_key=batch_key, batch_digest=digest,
    )  # fmt: skip


async def ingest_batch(
    store: Store,
    *,
    run_id: str,
    raw: bytes,
    content_type: str,
    max_points: int,
    actor: str,
    batch_key: str | None = None,
) -> bool:
    """Parse a batch body (JSON or an Arrow IPC stream of points) and write it in one
    transaction, both in a worker thread, off the event loop (a large body's parse would
    hold up every other request); a batch sent again with the same ``batch_key`` is a no-op
    (returns False)."""
    return await off_loop(
        _log_batch, store, run_id=run_id, raw=raw, content_type=content_type,
        max_points=max_points, actor=actor, batch_key=batch_key,
    )  # fmt: skip


def log_params(store: Store, *, run_id: str, params: dict[str, str], actor: str) -> None:
    """Params alone: immutable, so the same value again is a no-op and another value a 409."""
    runs.log_batch(
        store,
        run_id=run_id,
        params=params,
        tags={},
        points=metrics.build_columns([], [], [], []),
        actor=actor,
    )
