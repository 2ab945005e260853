"""The metadata store: versioned aspects, change log, derived edges and lineage walks.

Every user action is one transaction opened by :meth:`Store.transact`; inside it a
:class:`Tx` writes aspects (copying the old latest to history), the change log and the
edges each aspect implies, so a crash never leaves half an action behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from modelyard.errors import InvalidInput
from modelyard.events import EventKind
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import (
    ASPECTS,
    EDGE_DERIVERS,
    ENTITY_ASPECTS,
    SOURCE_IS_DOWNSTREAM,
    Aspect,
    Status,
)
from modelyard.metadata.outbox import outbox_row
from modelyard.metadata.urn import parse_urn

T = TypeVar("T")
A = TypeVar("A", bound=Aspect)
RETRIES = 8
# Key space of the advisory locks that order an entity's events on PostgreSQL ("evnt").
EVENT_LOCK_SPACE = 0x65766E74


class Acting(str):
    """An actor's name that also says how they acted (``via``: a token, a proxy), for the
    change log. It is a ``str``, so every service passes it on as the actor unchanged."""

    via: str | None

    def __new__(cls, name: str, via: str | None = None) -> Acting:
        acting = super().__new__(cls, name)
        acting.via = via
        return acting


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass
class Tx:
    """One open write transaction on behalf of ``actor``."""

    conn: Connection
    actor: str
    now: int
    via: str | None = None  # how the actor acted, when not in person (a token, a proxy)
    new_metric_keys: dict[str, int] = field(default_factory=dict)
    # (project, kind, key) rows recorded in project_key by this transaction
    noted_keys: set[tuple[int, str, str]] = field(default_factory=set)
    # Outbox rows of this transaction's changes, written in one statement before commit.
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def lock(self, table: Table, *where: ColumnElement[bool]) -> None:
        """Hold the matching rows until commit, so writers that read-modify-write them queue.

        Only PostgreSQL needs it: SQLite writers already hold the database (BEGIN IMMEDIATE).
        """
        if self.is_postgres:
            self.conn.execute(select(*table.primary_key.columns).where(*where).with_for_update())

    def ensure_entity(self, urn: str) -> bool:
        """Register the entity if new; True when it was created by this call."""
        stmt = dialect_insert(self.conn, t.entity).values(
            urn=urn, type=parse_urn(urn).type, created_at=self.now, created_by=self.actor
        )
        return bool(self.conn.execute(stmt.on_conflict_do_nothing()).rowcount)

    def put_aspect(self, urn: str, value: Aspect, *, created_for: str | None = None) -> int | None:
        """Write ``value`` as the latest version; returns its version, or None if unchanged."""
        name = aspect_name(value)
        entity_type = parse_urn(urn).type
        if name not in ENTITY_ASPECTS.get(entity_type, ()):
            raise InvalidInput(f"a {entity_type} cannot carry the aspect {name!r}")
        # Canonical JSON (sorted keys), so a value equal up to dict order is an identical write.
        payload = orjson.dumps(value.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS).decode()
        key = {"urn": urn, "aspect": name}
        latest = _LATEST_FOR_UPDATE if self.is_postgres else _LATEST
        current = self.conn.execute(latest, key).scalar_one_or_none()
        if current == payload:
            return None
        row = {
            **key,
            "payload": payload,
            "created_at": self.now,
            "created_by": self.actor,
            "created_for": created_for,
        }
        if current is None:
            self.conn.execute(_INSERT_ASPECT, {**row, "version": 0})
            version, previous = 1, None
        else:
            history = self.conn.execute(_HISTORY_SIZE, key).scalar_one()
            self.conn.execute(_COPY_LATEST, {**key, "shift": history + 1})
            self.conn.execute(
                _UPDATE_LATEST,
                {
                    "b_urn": urn,
                    "b_aspect": name,
                    "new_payload": payload,
                    "new_at": self.now,
                    "new_by": self.actor,
                    "new_for": created_for,
                },
            )
            version, previous = history + 2, history + 1
        self.conn.execute(
            _INSERT_CHANGE,
            {
                **key,
                "version": version,
                "previous_version": previous,
                "actor": self.actor,
                "created_at": self.now,
                "via": self.via,
            },
        )
        self.events.append(
            outbox_row(
                urn=urn,
                entity_type=entity_type,
                aspect=name,
                kind=_event_kind(value, first=previous is None),
                actor=self.actor,
                created_at=self.now,
                version=version,
            )
        )
        self._derive_edges(urn, name, value)
        return version

    def flush_events(self) -> None:
        """Write the outbox rows of this transaction (called by :meth:`Store.transact`).

        On PostgreSQL, transactions that change the same entity first queue on a lock per
        entity held to commit, so its events' ids follow commit order (the dispatcher delivers
        an entity's events by id, and must never see a later one before an earlier one
        commits). SQLite writers hold the whole database already."""
        if not self.events:
            return
        if self.is_postgres:
            urns = sorted({e["urn"] for e in self.events})
            self.conn.execute(_LOCK_ENTITIES, {"urns": urns})
        self.conn.execute(_INSERT_EVENT, self.events)
        self.events.clear()

    def _derive_edges(self, urn: str, name: str, value: Aspect) -> None:
        derive = EDGE_DERIVERS.get(name)
        if derive is None:
            return
        rel = t.relationship
        self.conn.execute(_DELETE_EDGES, {"urn": urn, "aspect": name})
        edges = {(s, k, d): lineage for s, k, d, lineage in derive(urn, value)}
        if edges:
            self.conn.execute(
                insert(rel),
                [
                    {
                        "source": s,
                        "type": k,
                        "destination": d,
                        "is_lineage": lineage,
                        "owner_urn": urn,
                        "owner_aspect": name,
                    }
                    for (s, k, d), lineage in edges.items()
                ],
            )


# Statements of the write path, built once so SQLAlchemy reuses their compiled form.
_A = t.aspect
_OF = (_A.c.urn == bindparam("urn"), _A.c.aspect == bindparam("aspect"))
_LATEST = select(_A.c.payload).where(*_OF, _A.c.version == 0)
_LATEST_FOR_UPDATE = _LATEST.with_for_update()
_HISTORY_SIZE = select(func.coalesce(func.max(_A.c.version), 0)).where(*_OF)
_INSERT_ASPECT = insert(_A)
_OLD = _A.alias("old")
_COPY_LATEST = insert(_A).from_select(
    list(_A.c.keys()),
    select(
        _OLD.c.urn,
        _OLD.c.aspect,
        _OLD.c.version + bindparam("shift"),
        _OLD.c.payload,
        _OLD.c.created_at,
        _OLD.c.created_by,
        _OLD.c.created_for,
    ).where(
        _OLD.c.urn == bindparam("urn"), _OLD.c.aspect == bindparam("aspect"), _OLD.c.version == 0
    ),
)
_UPDATE_LATEST = (
    update(_A)
    .where(_A.c.urn == bindparam("b_urn"), _A.c.aspect == bindparam("b_aspect"), _A.c.version == 0)
    .values(
        payload=bindparam("new_payload"),
        created_at=bindparam("new_at"),
        created_by=bindparam("new_by"),
        created_for=bindparam("new_for"),
    )
)
_INSERT_CHANGE = insert(t.change_log)
_DELETE_EDGES = t.relationship.delete().where(
    t.relationship.c.owner_urn == bindparam("urn"),
    t.relationship.c.owner_aspect == bindparam("aspect"),
)


_INSERT_EVENT = insert(t.event)
# Locks taken in one order (by key) by every writer, so two writers never wait on each other.
_LOCK_ENTITIES = text(
    "SELECT pg_advisory_xact_lock(:space, k) FROM "
    "(SELECT DISTINCT hashtext(u) AS k FROM unnest(CAST(:urns AS text[])) AS u ORDER BY k) AS keys"
).bindparams(space=EVENT_LOCK_SPACE)


def _event_kind(value: Aspect, *, first: bool) -> EventKind:
    if isinstance(value, Status):
        return "removed" if value.removed else "restored"
    return "created" if first else "updated"


def aspect_name(value: Aspect) -> str:
    for name, cls in ASPECTS.items():
        if type(value) is cls:
            return name
    raise TypeError(f"{type(value).__name__} is not a registered aspect")


class Store:
    """Entry point to the backbone for services: transactions and reads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metric_keys: dict[str, int] = {}
        # Project keys known to be recorded (committed), so a batch need not record them again.
        self.noted_keys: set[tuple[int, str, str]] = set()
        # Small series blocks written per (owner kind, owner, key) since this process last
        # looked at compacting them: a counter, not a fact, so it may be lost or off without harm.
        self.small_blocks: dict[tuple[int, int, int], int] = {}

    def transact(self, work: Callable[[Tx], T], *, actor: str) -> T:
        """Run ``work`` in one write transaction; retried when a concurrent writer won a race."""
        for attempt in range(RETRIES):
            tx: Tx | None = None
            try:
                with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                    tx = Tx(conn=conn, actor=actor, now=now_ms(), via=getattr(actor, "via", None))
                    result = work(tx)
                    tx.flush_events()
                self.metric_keys.update(tx.new_metric_keys)
                if len(self.noted_keys) > 1_000_000:
                    self.noted_keys.clear()
                self.noted_keys.update(tx.noted_keys)
                return result
            except (IntegrityError, OperationalError) as exc:
                if attempt == RETRIES - 1 or not _is_race(exc):
                    raise
                time.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: every query inside sees one snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn


def _is_race(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in ("unique", "duplicate key", "locked", "busy", "deadlock", "could not serialize")
    )


def get_aspect(conn: Connection, urn: str, cls: type[A]) -> A | None:
    payload = conn.execute(
        select(t.aspect.c.payload).where(
            t.aspect.c.urn == urn,
            t.aspect.c.aspect == aspect_name_of(cls),
            t.aspect.c.version == 0,
        )
    ).scalar_one_or_none()
    return None if payload is None else cls.model_validate_json(payload)


def aspect_name_of(cls: type[Aspect]) -> str:
    for name, registered in ASPECTS.items():
        if registered is cls:
            return name
    raise TypeError(f"{cls.__name__} is not a registered aspect")


def aspect_history(conn: Connection, urn: str, name: str) -> list[dict[str, Any]]:
    """Every version of an aspect, oldest first, numbered 1..N (N is the latest)."""
    rows = conn.execute(
        select(t.aspect).where(t.aspect.c.urn == urn, t.aspect.c.aspect == name)
    ).all()
    if not rows:
        return []
    latest = max(r.version for r in rows) + 1
    out = [
        {
            "version": r.version or latest,
            "payload": r.payload,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "created_for": r.created_for,
        }
        for r in rows
    ]
    return sorted(out, key=lambda v: v["version"])


@dataclass(frozen=True)
class LineageGraph:
    root: str
    nodes: dict[str, int]  # urn -> signed hop distance (negative: upstream)
    edges: list[tuple[str, str, str]]  # (upstream, type, downstream)


def lineage(conn: Connection, urn: str, *, upstream: int, downstream: int) -> LineageGraph:
    """Walk lineage edges ``upstream`` hops up and ``downstream`` hops down from ``urn``."""
    nodes: dict[str, int] = {urn: 0}
    edges: set[tuple[str, str, str]] = set()
    for direction, hops in ((-1, upstream), (1, downstream)):
        frontier = {urn}
        for hop in range(1, hops + 1):
            found = _neighbours(conn, frontier, up=direction < 0)
            frontier = set()
            for up_node, kind, down_node in found:
                edges.add((up_node, kind, down_node))
                other = up_node if direction < 0 else down_node
                if other not in nodes:
                    nodes[other] = direction * hop
                    frontier.add(other)
            if not frontier:
                break
    return LineageGraph(urn, nodes, sorted(edges))


def _neighbours(
    conn: Connection, frontier: Iterable[str], *, up: bool
) -> list[tuple[str, str, str]]:
    """Lineage edges touching ``frontier`` on the wanted side, as (upstream, type, downstream)."""
    rel = t.relationship
    found: list[tuple[str, str, str]] = []
    members = list(frontier)
    for chunk_start in range(0, len(members), 500):
        chunk = set(members[chunk_start : chunk_start + 500])
        rows = conn.execute(
            select(rel.c.source, rel.c.type, rel.c.destination)
            .where(rel.c.is_lineage.is_(True))
            .where(rel.c.source.in_(list(chunk)) | rel.c.destination.in_(list(chunk)))
            .distinct()
        ).all()
        for source, kind, dest in rows:
            upstream, downstream = (
                (dest, source) if kind in SOURCE_IS_DOWNSTREAM else (source, dest)
            )
            if (downstream in chunk) if up else (upstream in chunk):
                found.append((upstream, kind, downstream))
    return found


def entity_exists(conn: Connection, urns: Sequence[str]) -> set[str]:
    if not urns:
        return set()
    return set(conn.execute(select(t.entity.c.urn).where(t.entity.c.urn.in_(list(urns)))).scalars())


def change_log_page(
    conn: Connection,
    *,
    urn: str | None = None,
    actor: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    cl = t.change_log
    q = select(cl).order_by(cl.c.id.desc()).limit(limit)
    conds = []
    if urn:
        conds.append(cl.c.urn == urn)
    if actor:
        conds.append(cl.c.actor == actor)
    if since is not None:
        conds.append(cl.c.created_at >= since)
    if until is not None:
        conds.append(cl.c.created_at <= until)
    if before_id is not None:
        conds.append(cl.c.id < before_id)
    if conds:
        q = q.where(and_(*conds))
    return [dict(r._mapping) for r in conn.execute(q)]
