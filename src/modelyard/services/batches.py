"""Ingesting a batch of metric points, params and tags sent as JSON or as an Arrow stream."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from modelyard.metadata.store import Store, now_ms
from modelyard.schemas import BatchLog
from modelyard.services import metrics, runs
from modelyard.services.bodies import parse_body
from modelyard.services.metrics import MetricColumns

ARROW = "application/vnd.apache.arrow.stream"


def _points(body: BatchLog, now: int) -> MetricColumns:
    rows = metrics.columns_from_rows(body.metrics, now)
    if body.columns is None:
        return rows
    cols = metrics.columns_from_dict(body.columns, now)
    if not len(rows):
        return cols
    return metrics.build_columns(
        rows.keys + cols.keys,
        [*rows.values.tolist(), *cols.values.tolist()],
        [*rows.steps.tolist(), *cols.steps.tolist()],
        [*rows.timestamps.tolist(), *cols.timestamps.tolist()],
    )


def parse_batch(
    raw: bytes, content_type: str, *, max_points: int
) -> tuple[dict[str, str], dict[str, str], MetricColumns]:
    """The params, tags and metric points of a batch body; more than ``max_points`` points
    is refused before they are read."""
    if content_type.startswith(ARROW):
        return {}, {}, metrics.columns_from_arrow(raw, now_ms(), max_points)
    # Parsed with orjson rather than by the framework: batches are the hottest path of the
    # API and this parses them several times faster.
    body = parse_body(raw, BatchLog)
    values = (body.columns or {}).get("value", [])  # a string here is refused later, not counted
    metrics.check_size(
        len(body.metrics) + (len(values) if isinstance(values, list) else 0), max_points
    )
    return body.params, body.tags, _points(body, now_ms())


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
    transaction, off the event loop; a batch sent again with the same ``batch_key`` is a
    no-op (returns False)."""
    params, tags, points = parse_batch(raw, content_type, max_points=max_points)
    return await run_in_threadpool(
        runs.log_batch,
        store,
        run_id=run_id,
        params=params,
        tags=tags,
        points=points,
        actor=actor,
        batch_key=batch_key,
    )


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
