"""The change log: every committed change, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, select, tuple_

from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, change_log_page
from modelyard.metadata.urn import parse_urn, run_urn
from modelyard.schemas import ChangePublic
from modelyard.services.access.scopes import may_see, projects_of_urns
from modelyard.services.entities import labels_of


@dataclass(frozen=True, slots=True)
class LabelledChanges:
    """A page of the change log and a short label for each entity it names."""

    changes: list[ChangePublic]
    labels: dict[str, str]
    # (urn, aspect, version) -> that version's value, for each change and the one before it
    values: dict[tuple[str, str, int], Any] = field(default_factory=dict)


# Pages of the change log read looking for changes a caller may see, at most.
MAX_SCANS = 20


def visible_page(
    conn: Connection, *, readable: frozenset[int] | None, limit: int, **filters: Any
) -> list[dict[str, Any]]:
    """A page of the change log as ``change_log_page`` reads it, keeping only changes to
    entities the caller may see (``readable``: their projects, None for all). Pages further
    back are read until the page is full, for at most ``MAX_SCANS`` reads."""
    if readable is None:
        return change_log_page(conn, limit=limit, **filters)
    found: list[dict[str, Any]] = []
    for _ in range(MAX_SCANS):
        rows = change_log_page(conn, limit=limit * 2, **filters)
        owners = projects_of_urns(conn, [r["urn"] for r in rows])
        found += [r for r in rows if may_see(owners.get(r["urn"]), readable)]
        if len(found) >= limit or len(rows) < limit * 2:
            break
        filters["before_id"] = rows[-1]["id"]
    return found[:limit]


def list_changes(
    store: Store,
    *,
    urn: str | None,
    actor: str | None,
    since: int | None,
    before_id: int | None,
    limit: int,
    readable: frozenset[int] | None,
    until: int | None = None,
) -> list[ChangePublic]:
    """The change log, newest first; ``since`` and ``until`` bound it in time (inclusive)."""
    with store.read() as conn:
        rows = visible_page(
            conn, readable=readable, urn=urn, actor=actor, since=since, until=until,
            before_id=before_id, limit=limit,
        )  # fmt: skip
    return [ChangePublic(**r) for r in rows]


def labelled_changes(
    store: Store,
    *,
    limit: int,
    readable: frozenset[int] | None,
    urn: str | None = None,
    actor: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before_id: int | None = None,
    values: bool = False,
) -> LabelledChanges:
    """A page of the change log (as ``list_changes``) with its entities' labels, and with
    ``values`` the aspect's value before and after each change, read at once."""
    with store.read() as conn:
        rows = visible_page(
            conn, readable=readable, urn=urn, actor=actor, since=since, until=until,
            before_id=before_id, limit=limit,
        )  # fmt: skip
        changes = [ChangePublic(**r) for r in rows]
        labels = labels_of(conn, [c.urn for c in changes] + step_runs(changes))
        found = versions_of(conn, changes) if values else {}
    return LabelledChanges(changes, labels, found)


def step_runs(changes: list[ChangePublic]) -> list[str]:
    """The runs whose steps the changes are to (a run's step changes fold under its name)."""
    return [
        run_urn(parse_urn(c.urn).parts[0])
        for c in changes
        if c.urn.startswith("urn:modelyard:step:")
    ]


def versions_of(conn: Connection, changes: list[ChangePublic]) -> dict[tuple[str, str, int], Any]:
    """The values of the versions the changes wrote and replaced, in one query. Version N of
    an aspect is stored as N while it is history and as 0 while it is the latest."""
    wanted = {(c.urn, c.aspect, c.version) for c in changes}
    wanted |= {(c.urn, c.aspect, c.previous_version) for c in changes if c.previous_version}
    if not wanted:
        return {}
    keys = wanted | {(urn, aspect, 0) for urn, aspect, _ in wanted}
    a = t.aspect
    rows = conn.execute(
        select(a.c.urn, a.c.aspect, a.c.version, a.c.payload).where(
            tuple_(a.c.urn, a.c.aspect, a.c.version).in_(sorted(keys))
        )
    ).all()
    stored = {(r.urn, r.aspect, r.version): r.payload for r in rows}
    out: dict[tuple[str, str, int], Any] = {}
    for urn, aspect, version in wanted:
        payload = stored.get((urn, aspect, version)) or stored.get((urn, aspect, 0))
        if payload is not None:
            out[(urn, aspect, version)] = orjson.loads(payload)
    return out
