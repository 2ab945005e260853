"""Time-series events (telemetry and the like): bulk-inserted, read back by entity and name."""

from __future__ import annotations

import orjson
from sqlalchemy import insert, select

from modelyard.errors import NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, entity_exists
from modelyard.metadata.urn import parse_urn
from modelyard.schemas import TimeseriesEventIn


def record_events(store: Store, *, events: list[TimeseriesEventIn], actor: str) -> int:
    urns = sorted({e.urn for e in events})
    for u in urns:
        parse_urn(u)

    def work(tx: Tx) -> int:
        missing = set(urns) - entity_exists(tx.conn, urns)
        if missing:
            raise NotFound(f"{sorted(missing)[0]} does not exist")
        if events:
            tx.conn.execute(
                insert(t.timeseries_event),
                [
                    {
                        "urn": e.urn,
                        "name": e.name,
                        "timestamp": e.timestamp,
                        "value": e.value,
                        "attributes": None
                        if e.attributes is None
                        else orjson.dumps(e.attributes).decode(),
                    }
                    for e in events
                ],
            )
        return len(events)

    return store.transact(work, actor=actor)


def read_events(
    store: Store, *, urn: str, name: str, start: int | None, end: int | None, limit: int
) -> list[dict[str, object]]:
    ts = t.timeseries_event
    q = select(ts.c.timestamp, ts.c.value, ts.c.attributes).where(
        ts.c.urn == urn, ts.c.name == name
    )
    if start is not None:
        q = q.where(ts.c.timestamp >= start)
    if end is not None:
        q = q.where(ts.c.timestamp < end)
    with store.read() as conn:
        rows = conn.execute(q.order_by(ts.c.timestamp, ts.c.id).limit(limit)).all()
    return [
        {
            "timestamp": r.timestamp,
            "value": r.value,
            "attributes": None if r.attributes is None else orjson.loads(r.attributes),
        }
        for r in rows
    ]
