"""A project's members and whether it is internal: the access tables and the audited
``project_access`` aspect, kept together."""

from __future__ import annotations

from sqlalchemy import Connection, select

from modelyard.metadata import tables as t
from modelyard.metadata.aspects import Member, ProjectAccess
from modelyard.metadata.store import Tx, dialect_insert
from modelyard.metadata.urn import project_urn


def members(conn: Connection, project_id: int) -> list[Member]:
    users = (
        select(t.project_member.c.kind, t.account.c.name, t.project_member.c.role)
        .join(t.account, t.account.c.id == t.project_member.c.principal_id)
        .where(t.project_member.c.project_id == project_id, t.project_member.c.kind == "user")
    )
    groups = (
        select(t.project_member.c.kind, t.account_group.c.name, t.project_member.c.role)
        .join(t.account_group, t.account_group.c.id == t.project_member.c.principal_id)
        .where(t.project_member.c.project_id == project_id, t.project_member.c.kind == "group")
    )
    rows = conn.execute(users.union_all(groups)).all()
    return sorted(
        (Member(kind=k, name=n, role=r) for k, n, r in rows), key=lambda m: (m.kind, m.name)
    )


def is_internal(conn: Connection, project_id: int) -> bool:
    found = conn.execute(
        select(t.internal_project.c.project_id).where(t.internal_project.c.project_id == project_id)
    ).first()
    return found is not None


def record_access(tx: Tx, project_id: int) -> None:
    tx.put_aspect(
        project_urn(project_id),
        ProjectAccess(
            internal=is_internal(tx.conn, project_id), members=members(tx.conn, project_id)
        ),
    )


def grant_creator(tx: Tx, project_id: int) -> None:
    """The user who creates a project owns it (the implicit local user is no account)."""
    account_id = tx.conn.execute(
        select(t.account.c.id).where(t.account.c.name == tx.actor)
    ).scalar()
    if account_id is None:
        return
    stmt = dialect_insert(tx.conn, t.project_member).values(
        project_id=project_id, kind="user", principal_id=account_id, role="owner"
    )
    tx.conn.execute(stmt.on_conflict_do_nothing())
    record_access(tx, project_id)
