"""Projects: create, read, list."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Row, func, insert, select, true, update

from modelyard.errors import Conflict, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ProjectProperties
from modelyard.metadata.store import Store, Tx, dialect_insert
from modelyard.metadata.urn import project_urn
from modelyard.schemas import ProjectCreate, ProjectPublic, ProjectUpdate
from modelyard.schemas._common import name_key, typed_name
from modelyard.services.access.membership import grant_creator
from modelyard.services.headlines import project_headlines


def project_row(conn: Connection, ref: str | int) -> Row[tuple[object, ...]]:
    """A project by unique name first (a project may well be called "2024"), else by numeric
    id when ``ref`` is all digits."""
    row = None
    if isinstance(ref, str):
        ref = typed_name(ref)
        row = conn.execute(select(t.project).where(t.project.c.name == ref)).first()
    # The id is compared as an int (PostgreSQL has no integer = varchar) within its column.
    pk = ref if isinstance(ref, int) else int(ref) if ref.isascii() and ref.isdigit() else None
    if row is None and pk is not None and pk < 2**31:
        row = conn.execute(select(t.project).where(t.project.c.id == pk)).first()
    if row is None:
        raise NotFound(f"project {ref!r} does not exist")
    return row


def ensure_project(tx: Tx, name: str, description: str = "") -> int:
    """The id of project ``name``, created if missing (inside the caller's transaction)."""
    found = tx.conn.execute(select(t.project.c.id).where(t.project.c.name == name)).scalar()
    if found is not None:
        return int(found)
    holder = claim_name(tx.conn, "project", name)
    if holder == name:  # created by another writer since the look above
        return int(tx.conn.execute(select(t.project.c.id).where(t.project.c.name == name)).one()[0])
    refuse_look_alike("project", name, holder)
    project_id = int(
        tx.conn.execute(
            insert(t.project)
            .values(name=name, description=description, created_at=tx.now, created_by=tx.actor)
            .returning(t.project.c.id)
        ).scalar_one()
    )
    urn = project_urn(project_id)
    tx.ensure_entity(urn)
    tx.put_aspect(urn, ProjectProperties(project_id=project_id, name=name, description=description))
    grant_creator(tx, project_id)
    return project_id


def claim_name(conn: Connection, scope: str, name: str) -> str | None:
    """Claim ``name``'s look-alike key in ``scope`` (``"project"``, ``"model"``): ``None`` when
    this name now holds it, else the name that already does. The key is unique in the table, so
    of two writers creating look-alikes at once, the second finds the first's claim."""
    digest = hashlib.sha256(name_key(name).encode()).hexdigest()
    row = {"scope": scope, "key_digest": digest, "name": name}
    if conn.execute(dialect_insert(conn, t.name_claim).on_conflict_do_nothing(), row).rowcount:
        return None
    where = (t.name_claim.c.scope == scope) & (t.name_claim.c.key_digest == digest)
    return str(conn.execute(select(t.name_claim.c.name).where(where)).scalar_one())


def refuse_look_alike(kind: str, name: str, holder: str | None) -> None:
    """A new name that differs from an existing one only by case, width or compatibility
    forms would look identical on the pages: a 409 naming the existing one."""
    if holder is not None and holder != name:
        raise Conflict(
            f"{kind} {name!r} looks like the existing {kind} {holder!r}; use that name",
            details={"existing": holder},
        )


def _public(
    row: Row[tuple[object, ...]], run_count: int = 0, last_run_at: int | None = None
) -> ProjectPublic:
    m = row._mapping
    return ProjectPublic(
        id=m["id"],
        urn=project_urn(m["id"]),
        name=m["name"],
        description=m["description"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        run_count=run_count,
        last_run_at=last_run_at,
    )


def create_project(store: Store, *, body: ProjectCreate, actor: str) -> ProjectPublic:
    def work(tx: Tx) -> int:
        exists = tx.conn.execute(select(t.project.c.id).where(t.project.c.name == body.name))
        if exists.first() is not None:
            raise Conflict(f"project {body.name!r} already exists")
        return ensure_project(tx, body.name, body.description)

    project_id = store.transact(work, actor=actor)
    return get_project(store, ref=project_id)


def update_project(store: Store, *, ref: str, body: ProjectUpdate, actor: str) -> ProjectPublic:
    def work(tx: Tx) -> int:
        row = project_row(tx.conn, ref)
        if body.description is not None:
            tx.conn.execute(
                update(t.project)
                .where(t.project.c.id == row.id)
                .values(description=body.description)
            )
            tx.put_aspect(
                project_urn(row.id),
                ProjectProperties(project_id=row.id, name=row.name, description=body.description),
            )
        return int(row.id)

    return get_project(store, ref=store.transact(work, actor=actor))


def get_project(store: Store, *, ref: str | int) -> ProjectPublic:
    with store.read() as conn:
        row = project_row(conn, ref)
        count = conn.execute(
            select(func.count()).select_from(t.run).where(t.run.c.project_id == row.id)
        ).scalar_one()
    return _public(row, count)


def list_projects(
    store: Store, *, readable: frozenset[int] | None, headlines: bool = True
) -> list[ProjectPublic]:
    """Every project (of ``readable``, unless None) with its run count and latest run, and
    (unless ``headlines`` is false, for lists that do not show it) its best headline metric."""
    counts = (
        select(
            t.run.c.project_id,
            func.count().label("n"),
            func.max(t.run.c.start_time).label("last_run_at"),
        )
        .group_by(t.run.c.project_id)
        .subquery()
    )
    with store.read() as conn:
        rows = conn.execute(
            select(t.project, func.coalesce(counts.c.n, 0).label("run_count"), counts.c.last_run_at)
            .outerjoin(counts, counts.c.project_id == t.project.c.id)
            .where(true() if readable is None else t.project.c.id.in_(sorted(readable)))
            .order_by(t.project.c.name)
        ).all()
        best = project_headlines(conn) if headlines else {}
    return [
        _public(r, r.run_count, r.last_run_at).model_copy(update={"headline": best.get(r.id)})
        for r in rows
    ]


def project_keys(store: Store, *, project_id: int) -> dict[str, list[str]]:
    """The param, tag and metric keys the project's runs use, sorted, by kind."""
    pk = t.project_key
    keys: dict[str, list[str]] = {"metric": [], "param": [], "tag": []}
    with store.read() as conn:
        rows = conn.execute(
            select(pk.c.kind, pk.c.key).where(pk.c.project_id == project_id).order_by(pk.c.key)
        ).all()
    for kind, key in rows:
        keys.setdefault(kind, []).append(key)
    return keys
