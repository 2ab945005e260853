"""Series of any entity (a deployment's telemetry, a dataset's statistics over time), kept in
the series store and addressed by URN. A run's series are its metrics: they are read here
too, and logged through the run (which checks that it is still running)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, select

from modelyard.errors import InvalidInput, NotFound
from modelyard.floats import encode_float
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, dialect_insert, entity_exists
from modelyard.metadata.urn import canonical_urn, parse_urn
from modelyard.schemas import SeriesLatest
from modelyard.services import series_store
from modelyard.services.idempotency import first_use
from modelyard.services.runs import run_row
from modelyard.services.series import check_reduction, reduce_stream, series_chunks, x_axis
from modelyard.services.series_store import (
    Axis,
    Format,
    Owner,
    Page,
    Points,
    page_request,
    run_owner,
)

_SO = t.series_owner


def _entity_owner(tx: Tx, urn: str) -> Owner:
    """The entity's owner number, made on its first points; its row is locked until commit,
    so that writers of one entity queue up (compaction rewrites the latest blocks)."""
    query = select(_SO.c.id).where(_SO.c.urn == urn)
    if tx.is_postgres:
        query = query.with_for_update()
    owner_id = tx.conn.execute(query).scalar_one_or_none()
    if owner_id is None:
        tx.conn.execute(dialect_insert(tx.conn, _SO).on_conflict_do_nothing(), {"urn": urn})
        owner_id = tx.conn.execute(query).scalar_one()
    return Owner(t.SERIES_ENTITY, int(owner_id))


def _check_entity(conn: Connection, urn: str) -> str:
    """The entity's type; NotFound when it does not exist."""
    entity_type = canonical_urn(urn).type
    if not entity_exists(conn, [urn]):
        raise NotFound(f"{urn} does not exist")
    return entity_type


def record(
    store: Store,
    *,
    urn: str,
    points: Points,
    actor: str,
    batch_key: str | None = None,
    batch_digest: str | None = None,
) -> int:
    """Add points to an entity's series in one transaction; returns how many. A batch sent
    again with the same ``batch_key`` (an idempotency key) is a no-op and returns 0; another
    batch under that key (``batch_digest`` differs) is a 409."""
    if parse_urn(urn).type == "run":
        raise InvalidInput("a run's metrics are logged through POST /api/v1/runs/{run_id}/batch")

    def work(tx: Tx) -> int:
        _check_entity(tx.conn, urn)
        if not len(points):
            return 0
        owner = _entity_owner(tx, urn)
        if batch_key is not None:
            where = {"owner_id": owner.id}
            if not first_use(tx, t.series_batch, where, batch_key, batch_digest):
                return 0
        series_store.append(tx, store, owner, points)
        return len(points)

    return store.transact(work, actor=actor)


def _owner(conn: Connection, urn: str) -> Owner | None:
    """Whose series ``urn`` names; None for an entity that has none yet."""
    if _check_entity(conn, urn) == "run":
        return run_owner(run_row(conn, parse_urn(urn).id).pk)
    owner_id = conn.execute(select(_SO.c.id).where(_SO.c.urn == urn)).scalar_one_or_none()
    return None if owner_id is None else Owner(t.SERIES_ENTITY, int(owner_id))


def _owner_of(conn: Connection, urn: str, key: str) -> Owner:
    owner = _owner(conn, urn)
    if owner is None:
        raise NotFound(f"metric {key!r} was not logged in {urn}")
    return owner


def history(
    store: Store,
    *,
    urn: str,
    key: str,
    fmt: Format = "json",
    axis: Axis = "step",
    start: int | None = None,
    end: int | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> Page:
    """A page of a series: up to ``limit`` points (at most ``MAX_PAGE[fmt]``) whose step (or
    time) lies in [start, end], after the point ``page_token`` names; and the token of the next
    page when more remain."""
    req = page_request(fmt, axis=axis, start=start, end=end, limit=limit, page_token=page_token)
    with store.read() as conn:
        return series_store.read_page(conn, _owner_of(conn, urn, key), key, req, what=urn)


def reduced(
    store: Store,
    *,
    urn: str,
    key: str,
    x0: float | None = None,
    x1: float | None = None,
    points: int = 1500,
) -> bytes:
    """A series within [x0, x1] cut down to about ``points`` points for a chart, as JSON; the
    x axis is the step, or the time when every point was logged at one step."""
    x0, x1 = check_reduction(points, x0, x1)
    with store.read() as conn:
        owner = _owner_of(conn, urn, key)
        axis = x_axis([series_store.extent(conn, owner, key, what=urn)])
        r = reduce_stream(key, series_chunks(conn, owner, key, axis, urn), x0, x1, points)
    body: dict[str, Any] = {
        "key": key,
        "x_kind": axis,
        "x": r.x,
        "y": r.y,
        "total": r.total,
        "nan": r.nan,
        "pos_inf": r.pos_inf,
        "neg_inf": r.neg_inf,
        "reduced": r.reduced,
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def latest(store: Store, *, urn: str, keys: Sequence[str] | None = None) -> dict[str, SeriesLatest]:
    """The latest point of each series of an entity (or of the named ones)."""
    with store.read() as conn:
        owner = _owner(conn, urn)
        found = {} if owner is None else series_store.latest(conn, owner, keys or None)
    return {
        key: SeriesLatest(
            step=p.step,
            timestamp=p.timestamp,
            value=encode_float(p.value),
        )
        for key, p in found.items()
    }
