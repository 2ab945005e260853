"""The event outbox: rows written beside the change log, claimed and settled by dispatchers.

An event is claimable when it is pending, due, not leased by a live dispatcher, and no earlier
event of the same entity is still pending: so events of one entity go out in order, and a
dispatcher that claims an entity's first pending event owns the entity's queue until it
settles it. The claim itself is one short write transaction; on PostgreSQL it takes rows with
``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers never claim the same event, and on SQLite
the write lock (``BEGIN IMMEDIATE``) serialises them.

Settled events (delivered, or given up) are removed a retention period after they were
settled, a bounded batch per transaction (``prune``). Only pending events hold back an entity's
later ones, and those are never removed, so pruning cannot change the order of delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, update

from modelyard.events import DomainEvent, EventKind
from modelyard.metadata import tables as t

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# Counts in /healthz stop here, so a large backlog never makes the probe slow.
COUNT_CAP = 10_000

_E = t.event
_EARLIER = _E.alias("earlier")


def outbox_row(
    *,
    urn: str,
    entity_type: str,
    aspect: str,
    kind: EventKind,
    actor: str,
    created_at: int,
    version: int,
) -> dict[str, Any]:
    """The row of a new, pending event."""
    return {
        "urn": urn,
        "entity_type": entity_type,
        "aspect": aspect,
        "kind": kind,
        "actor": actor,
        "created_at": created_at,
        "version": version,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": 0,
        "delivered_at": None,
        "last_error": None,
        "lease_owner": None,
        "lease_until": None,
        "settled_at": None,
    }


def _claimable(now: int) -> Any:
    no_earlier_pending = ~exists().where(
        _EARLIER.c.urn == _E.c.urn, _EARLIER.c.status == PENDING, _EARLIER.c.id < _E.c.id
    )
    return and_(
        _E.c.status == PENDING,
        _E.c.next_attempt_at <= now,
        or_(_E.c.lease_until.is_(None), _E.c.lease_until < now),
        no_earlier_pending,
    )


def any_claimable(conn: Connection, now: int) -> bool:
    """A cheap read that spares an idle dispatcher the write lock."""
    return conn.execute(select(_E.c.id).where(_claimable(now)).limit(1)).first() is not None


def claim(
    conn: Connection, *, owner: str, now: int, lease_ms: int, entities: int, limit: int
) -> list[DomainEvent]:
    """Lease the first pending events of up to ``entities`` entities (at most ``limit`` in all)
    to ``owner``; returns them in delivery order. Call inside a write transaction."""
    heads = select(_E.c.id, _E.c.urn).where(_claimable(now)).order_by(_E.c.id).limit(entities)
    if conn.dialect.name == "postgresql":
        heads = heads.with_for_update(skip_locked=True)
    claimed = conn.execute(heads).all()
    if not claimed:
        return []
    urns = [urn for _, urn in claimed]
    first = min(event_id for event_id, _ in claimed)
    # Later events of a claimed entity cannot be claimed by anyone else while its first
    # pending one is leased here, so leasing them too lets one claim carry a burst of changes.
    rows = conn.execute(
        select(_E)
        .where(_E.c.urn.in_(urns), _E.c.status == PENDING, _E.c.id >= first)
        .order_by(_E.c.id)
        .limit(limit)
    ).all()
    ids = [r.id for r in rows]
    conn.execute(
        update(_E).where(_E.c.id.in_(ids)).values(lease_owner=owner, lease_until=now + lease_ms)
    )
    return [_event(r) for r in rows]


def _event(row: Any) -> DomainEvent:
    return DomainEvent(
        id=row.id,
        urn=row.urn,
        entity_type=row.entity_type,
        aspect=row.aspect,
        kind=row.kind,
        actor=row.actor,
        created_at=row.created_at,
        version=row.version,
    )


def mark_delivered(
    conn: Connection, event_ids: list[int], *, owner: str, now: int, lease_ms: int
) -> None:
    """Settle delivered events and extend the lease on the rest of ``owner``'s claim."""
    conn.execute(
        update(_E)
        .where(_E.c.id.in_(event_ids))
        .values(
            status=DELIVERED, delivered_at=now, settled_at=now, lease_owner=None, lease_until=None
        )
    )
    conn.execute(
        update(_E)
        .where(_E.c.lease_owner == owner, _E.c.status == PENDING)
        .values(lease_until=now + lease_ms)
    )


@dataclass(frozen=True)
class Failure:
    attempts: int
    gave_up: bool


def mark_failed(
    conn: Connection,
    event: DomainEvent,
    *,
    owner: str,
    error: str,
    now: int,
    max_attempts: int,
    backoff: Callable[[int], int],
) -> Failure:
    """Record a failed attempt: retry ``backoff(attempts)`` ms later, or give up after
    ``max_attempts``.
    The entity's later events leased by ``owner`` are released: they wait for this one."""
    attempts = conn.execute(select(_E.c.attempts).where(_E.c.id == event.id)).scalar_one() + 1
    gave_up = attempts >= max_attempts
    conn.execute(
        update(_E)
        .where(_E.c.id == event.id)
        .values(
            status=FAILED if gave_up else PENDING,
            attempts=attempts,
            last_error=error[:4000],
            next_attempt_at=now + backoff(attempts),
            settled_at=now if gave_up else None,
            lease_owner=None,
            lease_until=None,
        )
    )
    release(conn, owner=owner, urn=event.urn)
    return Failure(attempts, gave_up)


def release(conn: Connection, *, owner: str, urn: str | None = None) -> None:
    """Give back ``owner``'s leases (of one entity, or all)."""
    where = [_E.c.lease_owner == owner, _E.c.status == PENDING]
    if urn is not None:
        where.append(_E.c.urn == urn)
    conn.execute(update(_E).where(*where).values(lease_owner=None, lease_until=None))


def release_owners(conn: Connection, owners: list[str]) -> None:
    """Give back every lease held by ``owners`` (dispatchers known to be dead)."""
    if owners:
        conn.execute(
            update(_E)
            .where(_E.c.lease_owner.in_(owners), _E.c.status == PENDING)
            .values(lease_owner=None, lease_until=None)
        )


def lease_owners(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            select(_E.c.lease_owner)
            .where(_E.c.status == PENDING, _E.c.lease_owner.is_not(None))
            .distinct()
        ).scalars()
    )


def prune(conn: Connection, *, settled_before: int, limit: int) -> int:
    """Remove up to ``limit`` delivered or given-up events settled before ``settled_before``
    (oldest first); returns how many. Call inside a write transaction. On PostgreSQL rows
    another pruner holds are skipped, so concurrent pruners neither wait nor collide."""
    # Only settled events have a settled_at; "!= pending" (no index can serve it) keeps SQLite
    # on the settled_at index too, so a batch reads about the rows it removes.
    doomed = (
        select(_E.c.id)
        .where(_E.c.settled_at < settled_before, _E.c.status != PENDING)
        .order_by(_E.c.settled_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        doomed = doomed.with_for_update(skip_locked=True)
    return int(conn.execute(delete(_E).where(_E.c.id.in_(doomed))).rowcount)


def counts(conn: Connection) -> dict[str, int]:
    """Pending (of which retrying) and failed events, each counted up to ``COUNT_CAP``."""

    def capped(*where: Any) -> int:
        inner = select(_E.c.id).where(*where).limit(COUNT_CAP).subquery()
        return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())

    return {
        "pending": capped(_E.c.status == PENDING),
        "retrying": capped(_E.c.status == PENDING, _E.c.attempts > 0),
        "failed": capped(_E.c.status == FAILED),
    }
