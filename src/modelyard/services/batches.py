"""Ingesting a batch of metric points, params and tags sent as JSON or as an Arrow stream."""

from __future__ import annotations

from typing import TypeVar

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


def _validate_batch(data: object, model: type[B]) -> B:
    """A parsed batch validated, its rows (when there are many) a slice at a time."""
    rows = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(rows, list) or len(rows) <= SLICE:
        return validate(data, model)
    body = validate({**data, "metrics": []}, model)
    checked: list[MetricPointIn] = []
    for start in range(0, len(rows), SLICE):
        try:
            checked += ROWS.validate_python(rows[start : start + SLICE])
        except ValidationError as exc:
            errors = [
                {**e, "loc": ("metrics", start + int(e["loc"][0]), *e["loc"][1:])}
                for e in exc.errors(include_url=False)
            ]
            raise InvalidFields.from_errors(errors) from None
    body.metrics = checked
    return body


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
    body = _validate_batch(data, model)
    return body, metrics.columns_from_body(body.metrics, body.columns, now, max_points)


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
